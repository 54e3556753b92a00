"""Reactions and buttons as ratings: net state per (message, user), two axes, nothing twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot.clock import ManualClock
from bot.core import ratings
from bot.core.service import BotCore
from bot.core.texts import MSG_CLEARED, MSG_STALE
from bot.storage.records import ReplyTally
from bot.types import ChatKind, ChatRef, IncomingSetup, MessageRef, Platform, Rating, UserRef
from config.settings import RatingSettings, Settings
from tests.fakes.generator import FakeGenerator
from tests.helpers import db

GROUP = ChatRef(Platform.TELEGRAM, "-100", ChatKind.GROUP)
CHANNEL = ChatRef(Platform.TELEGRAM, "-200", ChatKind.CHANNEL)
ANN = UserRef(Platform.TELEGRAM, "1", "Ann")
BOB = UserRef(Platform.TELEGRAM, "2", "Bob")
EMOJI = ratings.EmojiMap.from_settings(RatingSettings())


@pytest.fixture
def core(storage) -> BotCore:
    return BotCore(Settings(), storage, FakeGenerator(["Because."]), ManualClock())


async def sent_reply(core: BotCore, chat: ChatRef = GROUP, message_id: str = "500") -> tuple[int, MessageRef]:
    """A punchline the bot made and sent as `message_id`."""
    reply = await core.handle_setup(IncomingSetup(chat, ANN, "Why?", True, "499"))
    ref = MessageRef(chat, message_id)
    await core.reply_sent(reply.reply_id, ref)
    return reply.reply_id, ref


async def tally(core: BotCore, reply_id: int) -> ReplyTally:
    (t,) = await core.storage.ratings.tallies(reply_id=reply_id)
    return t


# -- the emoji map ---------------------------------------------------------------------------------


def test_emoji_fold_on_two_axes() -> None:
    assert EMOJI.fold(["🤣"]) == ratings.Verdict(1, 0)
    assert EMOJI.fold(["👎"]) == ratings.Verdict(-1, 0)
    assert EMOJI.fold(["🤮"]) == ratings.Verdict(0, -1)
    assert EMOJI.fold(["🤣", "👎"]) == ratings.Verdict(0, 0)  # they cancel out
    assert EMOJI.fold(["🤣", "🔥", "👎"]) == ratings.Verdict(1, 0)
    assert EMOJI.fold(["🤣", "💩"]) == ratings.Verdict(1, -1)
    assert EMOJI.fold(["🎉", "🐳"]) == ratings.Verdict(0, 0)  # not in the map
    assert EMOJI.fold([]) == ratings.Verdict(0, 0)


def test_variation_selectors_do_not_matter() -> None:
    assert EMOJI.verdict("❤") == EMOJI.verdict("❤️") == ratings.Verdict(1, 0)
    assert ratings.normalise_emoji_set(["❤️", "❤", " 🤣 ", ""]) == tuple(sorted(["❤", "🤣"]))


def test_the_map_is_configurable() -> None:
    custom = ratings.EmojiMap.from_settings(
        RatingSettings(funny="🍌", not_funny=["🍋"], inappropriate="🌶️,🧨")
    )
    assert custom.fold(["🍌"]) == ratings.Verdict(1, 0)
    assert custom.fold(["🤣"]) == ratings.Verdict(0, 0)
    assert custom.fold(["🌶"]) == ratings.Verdict(0, -1)
    assert custom.example("funny") == "🍌"


def _tally(**kw) -> ReplyTally:
    base = dict(
        reply_id=1,
        setup="s",
        punchline="p",
        version="v",
        platform=Platform.TELEGRAM,
        chat_id="1",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        funny=0,
        not_funny=0,
        flagged=0,
        raters=0,
    )
    return ReplyTally(**(base | kw))


def test_scores() -> None:
    s = ratings.score(_tally(funny=3, not_funny=1, flagged=1, raters=5))
    assert s.funniness == pytest.approx(0.5) and s.appropriateness == pytest.approx(0.8) and s.raters == 5
    only_flag = ratings.score(_tally(flagged=1, raters=1))
    assert only_flag.funniness is None and only_flag.appropriateness == 0.0
    nobody = ratings.score(_tally())
    assert nobody.funniness is None and nobody.appropriateness is None and nobody.raters == 0
    anon = ratings.score(
        _tally(funny=1, raters=1, anon_funny=2, anon_not_funny=1, anon_inappropriate=1, anon_total=4)
    )
    assert anon.funniness == pytest.approx((3 - 1) / 4) and anon.appropriateness == pytest.approx(1 - 1 / 5)


def test_best_rated_skips_flagged_and_breaks_ties_by_raters() -> None:
    top = ratings.best_rated(
        [
            _tally(reply_id=1, funny=1, raters=1),
            _tally(reply_id=2, funny=3, raters=3),
            _tally(reply_id=3, funny=5, flagged=4, raters=5),  # funny but mostly flagged
            _tally(reply_id=4, funny=1, not_funny=1, raters=2),
            _tally(reply_id=5),  # unrated
        ]
    )
    assert [t.reply_id for t, _ in top] == [2, 1, 4]


# -- reactions through the core --------------------------------------------------------------------


async def test_telegram_lists_keep_the_net_state(core) -> None:
    reply_id, ref = await sent_reply(core)
    assert await core.ratings.set_reactions(ref, ANN, ["🤣"]) is True
    t = await tally(core, reply_id)
    assert (t.funny, t.not_funny, t.raters) == (1, 0, 1)
    # Telegram sends the whole new list again: the same reaction twice counts once.
    assert await core.ratings.set_reactions(ref, ANN, ["🤣"]) is True
    assert (await tally(core, reply_id)).funny == 1
    # A changed reaction updates.
    await core.ratings.set_reactions(ref, ANN, ["👎"])
    t = await tally(core, reply_id)
    assert (t.funny, t.not_funny, t.raters) == (0, 1, 1)
    await core.ratings.set_reactions(ref, BOB, ["🤣", "🤮"])
    t = await tally(core, reply_id)
    assert (t.funny, t.not_funny, t.flagged, t.raters) == (1, 1, 1, 2)
    # An empty list removes.
    await core.ratings.set_reactions(ref, ANN, [])
    await core.ratings.set_reactions(ref, BOB, [])
    t = await tally(core, reply_id)
    assert (t.funny, t.not_funny, t.flagged, t.raters) == (0, 0, 0, 0) and not t.rated
    assert await db.reactions_for(core.storage, reply_id) == []
    # ...but every event was logged when it happened.
    assert await db.count_events(core.storage, reply_id) == 6


async def test_discord_add_and_remove_fold_into_the_same_state(core) -> None:
    chat = ChatRef(Platform.DISCORD, "900", ChatKind.GROUP)
    user = UserRef(Platform.DISCORD, "77", "Cy")
    reply_id, ref = await sent_reply(core, chat, "123456789012345678")
    assert await core.ratings.add_reaction(ref, user, "😂") is True
    assert await core.ratings.add_reaction(ref, user, "😂") is True  # a duplicate event counts once
    assert await core.ratings.add_reaction(ref, user, "🔥") is True
    t = await tally(core, reply_id)
    assert (t.funny, t.raters) == (1, 1)
    record = await core.storage.ratings.get_reaction(reply_id, user, "reaction")
    assert record.emojis == tuple(sorted(["😂", "🔥"]))
    await core.ratings.remove_reaction(ref, user, "😂")
    assert (await tally(core, reply_id)).funny == 1  # 🔥 still there
    await core.ratings.add_reaction(ref, user, "💩")
    assert (await tally(core, reply_id)).flagged == 1
    await core.ratings.remove_reaction(ref, user, "🔥")
    await core.ratings.remove_reaction(ref, user, "💩")
    await core.ratings.remove_reaction(ref, user, "💩")  # removing what is not there is harmless
    assert not (await tally(core, reply_id)).rated


async def test_reactions_on_other_messages_are_ignored(core) -> None:
    reply_id, ref = await sent_reply(core)
    assert await core.ratings.set_reactions(MessageRef(GROUP, "12345"), ANN, ["🤣"]) is False
    assert await core.ratings.add_reaction(MessageRef(GROUP, "12345"), ANN, "🤣") is False
    assert await core.ratings.remove_reaction(MessageRef(GROUP, "12345"), ANN, "🤣") is False
    other_chat = MessageRef(ChatRef(Platform.TELEGRAM, "-999", ChatKind.GROUP), ref.message_id)
    assert await core.ratings.set_reactions(other_chat, ANN, ["🤣"]) is False
    robot = UserRef(Platform.TELEGRAM, "3", "bot", is_bot=True)
    assert await core.ratings.set_reactions(ref, robot, ["🤣"]) is False
    assert await db.count_events(core.storage, reply_id) == 0


async def test_buttons_and_reactions_from_one_person_count_once(core) -> None:
    reply_id, ref = await sent_reply(core)
    await core.ratings.set_reactions(ref, ANN, ["🤣"])
    assert await core.ratings.rate(ref, ANN, Rating.FUNNY) == "Noted: funny 🤣"
    t = await tally(core, reply_id)
    assert (t.funny, t.raters) == (1, 1)
    # Opposite signals from one person cancel out; a flag sticks.
    await core.ratings.rate(ref, ANN, Rating.MEH)
    t = await tally(core, reply_id)
    assert (t.funny, t.not_funny, t.raters) == (0, 0, 0)
    await core.ratings.rate(ref, ANN, Rating.INAPPROPRIATE)
    t = await tally(core, reply_id)
    assert (t.funny, t.flagged, t.raters) == (1, 1, 1)


async def test_button_presses_update_and_clear(core) -> None:
    reply_id, ref = await sent_reply(core)
    await core.ratings.rate(ref, BOB, Rating.FUNNY)
    await core.ratings.rate(ref, BOB, Rating.MEH)
    t = await tally(core, reply_id)
    assert (t.funny, t.not_funny) == (0, 1)
    assert await core.ratings.rate(ref, BOB, None) == MSG_CLEARED
    assert not (await tally(core, reply_id)).rated
    # A battle vote is its own source.
    await core.ratings.rate(ref, BOB, Rating.FUNNY, source="battle")
    assert (await core.storage.ratings.get_reaction(reply_id, BOB, "battle")).rating == "funny"


async def test_stale_and_forged_button_presses(core) -> None:
    assert await core.ratings.rate(MessageRef(GROUP, "424242"), ANN, Rating.FUNNY) == MSG_STALE
    reply_id, ref = await sent_reply(core)
    # rate() must not clobber a reaction set.
    assert "Couldn't" in await core.ratings.rate(ref, ANN, Rating.FUNNY, source="reaction")
    # A button on the right message id in another chat rates nothing.
    elsewhere = MessageRef(ChatRef(Platform.TELEGRAM, "-999", ChatKind.GROUP), ref.message_id)
    assert await core.ratings.rate(elsewhere, ANN, Rating.FUNNY) == MSG_STALE
    assert await db.count_events(core.storage, reply_id) == 0


async def test_anonymous_counts_replace_not_add(core) -> None:
    reply = await core.handle_setup(IncomingSetup(CHANNEL, ANN, "Why?", True))
    ref = MessageRef(CHANNEL, "77")
    await core.reply_sent(reply.reply_id, ref)
    assert await core.ratings.set_reaction_counts(ref, {"🤣": 3, "👎": 1}) is True
    assert await core.ratings.set_reaction_counts(ref, {"🤣": 4, "💩": 1, "🎉": 2, "❤️": 1, "❤": 1}) is True
    assert await db.reaction_counts(core.storage, reply.reply_id) == {"🤣": 4, "💩": 1, "🎉": 2, "❤": 2}
    t = await tally(core, reply.reply_id)
    assert (t.anon_funny, t.anon_not_funny, t.anon_inappropriate, t.anon_total) == (6, 0, 1, 7)
    assert await core.ratings.set_reaction_counts(MessageRef(CHANNEL, "78"), {"🤣": 1}) is False
    await core.ratings.set_reaction_counts(ref, {})
    assert not (await tally(core, reply.reply_id)).rated


async def test_concurrent_discord_events_lose_nothing(core) -> None:
    """Discord dispatches raw events as separate tasks; none of them may overwrite another."""
    chat = ChatRef(Platform.DISCORD, "900", ChatKind.GROUP)
    user = UserRef(Platform.DISCORD, "77")
    reply_id, ref = await sent_reply(core, chat, "1")
    emojis = ["😂", "🔥", "💯", "👍", "🎉", "💩"]
    assert all(await asyncio.gather(*(core.ratings.add_reaction(ref, user, e) for e in emojis)))
    record = await core.storage.ratings.get_reaction(reply_id, user, "reaction")
    assert set(record.emojis) == set(emojis)
    assert await db.count_events(core.storage, reply_id) == len(emojis)


async def test_an_older_press_still_on_its_way_never_overwrites_a_newer_one(core, monkeypatch) -> None:
    """Handlers run concurrently: a press whose lookup is slow must not land after a later
    press by the same person and undo it (the last press is the rating)."""
    reply_id, ref = await sent_reply(core)
    find = core.storage.requests.find_reply
    first = asyncio.Event()

    async def slow_first(ref: MessageRef):  # type: ignore[no-untyped-def]
        if not first.is_set():
            first.set()
            await asyncio.sleep(0.1)
        return await find(ref)

    monkeypatch.setattr(core.storage.requests, "find_reply", slow_first)
    older = asyncio.create_task(core.ratings.rate(ref, ANN, Rating.FUNNY))
    await first.wait()
    assert await core.ratings.rate(ref, ANN, Rating.MEH) == "Noted: meh 😐"
    assert await older == "Noted: funny 🤣"  # answered, but a newer press decided
    [record] = await db.reactions_for(core.storage, reply_id)
    assert record.rating == "meh"
