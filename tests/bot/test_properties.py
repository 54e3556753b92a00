"""Property-based tests: arbitrary text at the core, arbitrary reaction streams at the ratings."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import ManualClock
from bot.core import ratings
from bot.core.service import BotCore
from bot.storage import Storage
from bot.types import ChatKind, ChatRef, IncomingSetup, MessageRef, Platform, ReplyKind, UserRef
from config.settings import RatingSettings, Settings
from tests.fakes.generator import FakeGenerator

PRIVATE = ChatRef(Platform.TELEGRAM, "1", ChatKind.PRIVATE)
GROUP = ChatRef(Platform.DISCORD, "2", ChatKind.GROUP)

_rtl = st.text(alphabet=st.characters(min_codepoint=0x0590, max_codepoint=0x06FF), max_size=40)
_controls = st.text(alphabet=st.characters(categories=("Cc", "Cf", "Zs", "Zl", "Zp")), max_size=40)
_emoji = st.text(
    alphabet=st.sampled_from(list("🤣😂🔥💯👍😐🥱👎🤮💩😡❤\ufe0f\u200d🏳🌈")), min_size=1, max_size=30
)
_huge = st.builds(lambda s, n: (s or "a") * n, st.text(min_size=1, max_size=5), st.integers(1, 12_000))
TEXTS = st.one_of(
    st.text(max_size=400),
    _rtl,
    _controls,
    _emoji,
    _huge,
    st.builds(lambda a, b, c: a + b + c, _rtl, _controls, _emoji),
)


def test_arbitrary_text_always_gets_a_reply_or_none_and_storage_stays_consistent(tmp_path: Path) -> None:
    with asyncio.Runner() as runner:
        storage = runner.run(Storage.open(tmp_path / "prop.db"))
        gen = FakeGenerator(["A punchline."])
        core = BotCore(
            Settings(
                limits={"burst": 10**9, "per_minute": 10**9, "chat_burst": 10**9, "chat_per_minute": 10**9}
            ),
            storage,
            gen,
            ManualClock(),
        )

        async def counts() -> tuple[int, int]:
            async with storage.db.execute(
                "SELECT (SELECT COUNT(*) FROM requests), (SELECT COUNT(*) FROM replies)"
            ) as cur:
                return tuple(await cur.fetchone())  # type: ignore[return-value]

        @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(text=TEXTS, group=st.booleans(), addressed=st.booleans(), is_bot=st.booleans())
        def check(text: str, group: bool, addressed: bool, is_bot: bool) -> None:
            chat = GROUP if group else PRIVATE
            user = UserRef(chat.platform, "7", "Ann", is_bot=is_bot)
            before = runner.run(counts())
            calls = len(gen.calls)
            reply = runner.run(core.handle_setup(IncomingSetup(chat, user, text, addressed, "9")))
            requests, replies = runner.run(counts())
            if is_bot or (group and not addressed):
                assert reply is None and (requests, replies) == before
                return
            assert reply is not None and reply.text.strip()
            assert requests == before[0] + 1  # every addressed message is stored
            if reply.kind is ReplyKind.PUNCHLINE:
                assert replies == before[1] + 1 and reply.reply_id is not None
                setup = gen.calls[-1].setup
                assert setup == setup.strip() and 0 < len(setup) <= core.max_setup_chars
                assert not any(ch in setup for ch in "\x00\n\r\t\x1b")
            else:
                assert reply.kind is ReplyKind.REFUSAL and replies == before[1]
                assert len(gen.calls) == calls  # refused text never reaches the model

        check()
        assert runner.run(storage.integrity_problems()) == []
        runner.run(storage.close())


EMOJI = ["🤣", "😂", "👎", "😐", "🤮", "🎉", "❤", "❤\ufe0f"]
USERS = [UserRef(Platform.DISCORD, str(i)) for i in range(3)]
EVENT = st.tuples(
    st.sampled_from(["add", "remove", "set"]),
    st.integers(0, len(USERS) - 1),
    st.lists(st.sampled_from(EMOJI), max_size=3),
)


def test_reaction_streams_fold_to_the_net_state(tmp_path: Path) -> None:
    """Whatever order adds, removes and whole-list updates come in, the tally equals the one
    computed from each user's final emoji set: nothing counts twice, removals remove."""
    emoji_map = ratings.EmojiMap.from_settings(RatingSettings())
    with asyncio.Runner() as runner:
        storage = runner.run(Storage.open(tmp_path / "react.db"))
        unlimited = {"burst": 10**9, "chat_burst": 10**9}
        core = BotCore(Settings(limits=unlimited), storage, FakeGenerator(), ManualClock())
        counter = iter(range(10**6))

        @settings(max_examples=60, deadline=None)
        @given(events=st.lists(EVENT, max_size=25))
        def check(events) -> None:
            reply = runner.run(core.handle_setup(IncomingSetup(GROUP, USERS[0], "Why?", True)))
            ref = MessageRef(GROUP, f"msg{next(counter)}")
            runner.run(core.reply_sent(reply.reply_id, ref))
            model: dict[int, set[str]] = {i: set() for i in range(len(USERS))}
            for action, who, emojis in events:
                user = USERS[who]
                if action == "set":
                    runner.run(core.ratings.set_reactions(ref, user, emojis))
                    model[who] = {ratings.emoji_key(e) for e in emojis}
                elif emojis:
                    e = emojis[0]
                    if action == "add":
                        runner.run(core.ratings.add_reaction(ref, user, e))
                        model[who].add(ratings.emoji_key(e))
                    else:
                        runner.run(core.ratings.remove_reaction(ref, user, e))
                        model[who].discard(ratings.emoji_key(e))
            verdicts = [emoji_map.fold(s) for s in model.values()]
            (tally,) = runner.run(storage.ratings.tallies(reply_id=reply.reply_id))
            assert tally.funny == sum(v.funniness == 1 for v in verdicts)
            assert tally.not_funny == sum(v.funniness == -1 for v in verdicts)
            assert tally.flagged == sum(v.appropriateness == -1 for v in verdicts)
            assert tally.raters == sum(v.counts for v in verdicts)

        check()
        runner.run(storage.close())
