"""Battles on Telegram end to end: the real python-telegram-bot stack (long polling, httpx,
AIORateLimiter) against the fake Bot API server on loopback, a real BotCore and BattleService
over a real SQLite file.

The service reads the time from a `ManualClock`: a test ends a phase by moving the clock past
its deadline and calling `advance_due()` (or by starting the bot again after the deadline, as
after a restart), so no step races a deadline on the real clock, however slow the machine."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.battles.models import Phase
from bot.battles.service import BattleService
from bot.battles.views import MSG_ENTRY_WITHHELD, MSG_PROMOTE_REFUSED
from bot.clock import ManualClock
from bot.core.service import BotCore
from bot.storage import Storage
from bot.telegram.app import build_application, run_telegram
from config.settings import Settings, load_settings
from tests.fakes.generator import FakeGenerator
from tests.fakes.telegram_api import WAIT_TIMEOUT_S, ApiCall, FakeBotAPI
from tests.helpers import db

SETUP = "Why did the scarecrow win an award?"
BOT_LINE = "Because he was outstanding in his field."
PHASE_S = 2.0


def make_settings(api: FakeBotAPI, db: Path, entry_s: float = PHASE_S, vote_s: float = PHASE_S) -> Settings:
    return load_settings(
        telegram={
            "token": api.token,
            "base_url": api.base_url,
            "base_file_url": api.base_file_url,
            "poll_timeout": 1,
            "send_retry_delay": 0.05,
        },
        storage={"path": str(db)},
        battles={"entry_seconds": entry_s, "vote_seconds": vote_s},
        limits={"burst": 100, "per_minute": 6000},
    )


@dataclass
class Running:
    api: FakeBotAPI
    storage: Storage
    service: BattleService
    clock: ManualClock

    async def pass_time(self, seconds: float) -> None:
        """Move the clock on and close every phase now due, as the round's timer would."""
        self.clock.advance(seconds)
        await self.service.advance_due()


@contextlib.asynccontextmanager
async def running_bot(
    api: FakeBotAPI, settings: Settings, clock: ManualClock, *, retry_s: float = 0.05
) -> AsyncIterator[Running]:
    """The whole Telegram bot with battles, as `punchline serve` wires it, until exit."""
    storage = await Storage.open(settings.storage.path)
    generator = FakeGenerator([BOT_LINE], version="v1")
    core = BotCore(settings, storage, generator, clock)
    service = BattleService(settings, storage, generator, clock, core.access, retry_s=retry_s)
    application = build_application(settings, core, service)
    await service.resume()
    stop = asyncio.Event()
    task = asyncio.create_task(run_telegram(application, stop))
    try:
        yield Running(api, storage, service, clock)
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_TIMEOUT_S)
        await service.close()
        await storage.close()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


def sent_with(text: str) -> Any:
    return lambda c: not c.failed and text in str(c.params.get("text", ""))


def position_of(ballot: ApiCall, entry: str) -> int:
    line = next(l for l in ballot.params["text"].splitlines() if l.endswith(entry))
    return int(line.split(".")[0])


async def answer_to(api: FakeBotAPI, query_id: str) -> str:
    call = await api.wait_for("answerCallbackQuery", lambda c: c.params["callback_query_id"] == query_id)
    return str(call.params.get("text", ""))


async def test_a_whole_round_in_a_group(api: FakeBotAPI, tmp_path: Path) -> None:
    group = api.group_chat(-100777, "Jokers")
    alice, bob, carol, dave = (
        api.user(i, n) for i, n in [(11, "Alice"), (12, "Bob"), (13, "Carol"), (14, "Dave")]
    )
    api.set_bot_admin(group["id"])
    async with running_bot(api, make_settings(api, tmp_path / "bot.db"), ManualClock()) as bot:
        # bad input first: a battle in a private chat is refused
        private = api.private_chat(alice)
        asked = api.push_command(private, alice, "battle", SETUP)
        refusal = await api.wait_for("sendMessage", lambda c: c.replies_to(asked))
        assert "groups" in refusal.params["text"]

        started = api.push_command(group, alice, "battle", SETUP)
        announcement = await api.wait_for("sendMessage", sent_with("Joke battle #1"))
        assert SETUP in announcement.params["text"]
        [[button]] = announcement.params["reply_markup"]["inline_keyboard"]
        battle = await bot.service.storage.battles.get(1)
        assert battle is not None and battle.entry_token
        assert button["url"] == f"https://t.me/punchline_test_bot?start=b_{battle.entry_token}"
        again = api.push_command(group, bob, "battle", "Something else?")
        running = await api.wait_for("sendMessage", lambda c: c.replies_to(again))
        assert "Battle #1 is already running" in running.params["text"]
        assert not api.calls_of("sendMessage", lambda c: c.replies_to(started))  # no extra answer

        # two players reply to the announcement; the bot removes the replies. Telegram refuses
        # one deletion and one edit of the announcement: the round goes on regardless.
        api.inject_error(
            "deleteMessage", status=400, retry_after=None, description="Bad Request: message can't be deleted"
        )
        api.inject_error(
            "editMessageText",
            status=400,
            retry_after=None,
            description="Bad Request: message to edit not found",
        )
        msg = announcement.result
        b1 = api.push_message(group, bob, "Straw poll", reply_to=msg)
        c1 = api.push_message(group, carol, "Corn-gratulations", reply_to=msg)
        for entry in (b1, c1):
            await api.wait_for("deleteMessage", lambda c, e=entry: c.params["message_id"] == e["message_id"])
        # Alice enters in secret through the deep link
        link = api.push_command(private, alice, "start", f"b_{battle.entry_token}")
        opened = await api.wait_for("sendMessage", lambda c: c.replies_to(link))
        assert SETUP in opened.params["text"]
        secret = api.push_message(private, alice, "He was a born winner")
        taken = await api.wait_for("sendMessage", lambda c: c.replies_to(secret))
        assert "is in" in taken.params["text"]
        # the announcement names the players, never their texts
        await api.wait_for(
            "editMessageText", lambda c: "Carol" in c.params["text"] and "Alice" in c.params["text"]
        )
        assert not api.calls_of("editMessageText", lambda c: "Straw" in c.params["text"])

        await bot.pass_time(PHASE_S)  # the entry phase ends
        ballot = await api.wait_for("sendMessage", sent_with("vote for the funniest"))
        text = ballot.params["text"]
        assert all(e in text for e in ("Straw poll", "Corn-gratulations", "He was a born winner", BOT_LINE))
        assert "Bob" not in text and "Alice" not in text
        assert sorted(ballot.callback_data) == [f"1:vote:{i}" for i in range(1, 5)]
        assert api.calls_of("deleteMessage", lambda c: c.failed)  # the refusals really happened
        assert api.calls_of("editMessageText", lambda c: c.failed)
        vote_msg = ballot.result

        own = api.push_callback(vote_msg, bob, f"1:vote:{position_of(ballot, 'Straw poll')}")
        assert "own" in await answer_to(api, own)
        forged = api.push_callback(vote_msg, bob, "1:vote:77")
        assert "valid" in await answer_to(api, forged)
        votes = [
            (alice, "Straw poll"),
            (bob, "He was a born winner"),
            (carol, "Straw poll"),
            (dave, BOT_LINE),
        ]
        for user, entry in votes:
            query = api.push_callback(vote_msg, user, f"1:vote:{position_of(ballot, entry)}")
            assert "counted" in await answer_to(api, query)

        await bot.pass_time(PHASE_S)  # the voting phase ends
        results = await api.wait_for("sendMessage", sent_with("Battle #1 results"))
        text = results.params["text"]
        assert "“Straw poll” by Bob: 2 votes, 600 points 🏆" in text
        assert "“He was a born winner” by Alice: 1 vote, 250 points" in text
        assert f"“{BOT_LINE}” by the bot (v1): 1 vote, 250 points" in text
        assert "People beat the bot" in text
        # the ballot's buttons are gone (editMessageText without reply_markup removes them)
        closed = await api.wait_for(
            "editMessageText", lambda c: c.params["message_id"] == vote_msg["message_id"]
        )
        assert "reply_markup" not in closed.params and "voting is closed" in closed.params["text"]

        late = api.push_callback(vote_msg, dave, f"1:vote:{position_of(ballot, 'Straw poll')}")
        assert "over" in await answer_to(api, late)
        board = api.push_command(group, carol, "leaderboard")
        standings = await api.wait_for("sendMessage", lambda c: c.replies_to(board))
        lines = standings.params["text"].splitlines()
        assert lines[1] == "1. Bob: 600 points, 1 win in 1 round"
        assert "people won 1" in standings.params["text"]
        # Dave's vote for the bot rated its punchline funny
        battle = await bot.service.storage.battles.get(1)
        assert battle is not None and battle.phase is Phase.FINISHED
        bot_entry = next(e for e in await bot.service.storage.battle_entries.entries(1) if e.version == "v1")
        [rating] = await db.reactions_for(bot.storage, bot_entry.reply_id)  # type: ignore[arg-type]
        assert (rating.source, rating.rating) == ("battle", "funny")


async def test_a_restart_mid_round_loses_nothing(api: FakeBotAPI, tmp_path: Path) -> None:
    group = api.group_chat(-100888, "Restarters")
    alice, bob, carol = api.user(21, "Alice"), api.user(22, "Bob"), api.user(23, "Carol")
    db = tmp_path / "bot.db"
    clock = ManualClock()  # the time of the world, running on while the bot is down
    settings = make_settings(api, db, entry_s=3.0, vote_s=1.5)
    async with running_bot(api, settings, clock):
        api.push_command(group, alice, "battle", SETUP)
        announcement = await api.wait_for("sendMessage", sent_with("Joke battle #1"))
        api.push_message(group, bob, "Before the restart", reply_to=announcement.result)
        await api.wait_for("editMessageText", lambda c: "Bob" in c.params["text"])
    # down for a moment during the entry phase; the deadline still lies ahead
    clock.advance(1.0)
    async with running_bot(api, settings, clock) as bot:
        api.push_message(group, carol, "After the restart", reply_to=announcement.result)
        await api.wait_for("editMessageText", lambda c: "Carol" in c.params["text"])
        await bot.pass_time(2.5)  # the entry deadline passes while the bot runs
        ballot = await api.wait_for("sendMessage", sent_with("vote for the funniest"))
        assert "Before the restart" in ballot.params["text"]
        assert "After the restart" in ballot.params["text"]
        query = api.push_callback(ballot.result, alice, f"1:vote:{position_of(ballot, 'After the restart')}")
        assert "counted" in await answer_to(api, query)
        battle = await bot.service.storage.battles.get(1)
        assert battle is not None and battle.vote_deadline is not None
    # down during voting until past its deadline: the results come at once on start-up
    clock.advance(1.6)
    async with running_bot(api, settings, clock):
        results = await api.wait_for("sendMessage", sent_with("Battle #1 results"))
        assert "“After the restart” by Carol: 1 vote, 1100 points 🏆" in results.params["text"]


async def test_a_ballot_post_that_fails_is_posted_again_and_never_twice(
    api: FakeBotAPI, tmp_path: Path
) -> None:
    group = api.group_chat(-100555, "Flaky")
    alice, bob = api.user(41, "Alice"), api.user(42, "Bob")
    async with running_bot(api, make_settings(api, tmp_path / "bot.db"), ManualClock()) as bot:
        api.push_command(group, alice, "battle", SETUP)
        announcement = await api.wait_for("sendMessage", sent_with("Joke battle #1"))
        api.push_message(group, bob, "Straw poll", reply_to=announcement.result)
        await api.wait_for("editMessageText", lambda c: "Bob" in c.params["text"])
        # Telegram fails the ballot post more often than the sender retries (1 + 2 resends).
        api.inject_error("sendMessage", status=502, retry_after=None, times=3)
        await bot.pass_time(60)
        ballot = await api.wait_for("sendMessage", sent_with("vote for the funniest"))  # posted again
        query = api.push_callback(ballot.result, alice, f"1:vote:{position_of(ballot, 'Straw poll')}")
        assert "counted" in await answer_to(api, query)
        battle = await bot.service.storage.battles.get(1)
        assert battle is not None and battle.vote_message_id == str(ballot.result["message_id"])
    assert len(api.calls_of("sendMessage", sent_with("vote for the funniest"))) == 1


async def test_results_never_posted_before_a_crash_are_posted_after_the_restart(
    api: FakeBotAPI, tmp_path: Path
) -> None:
    group = api.group_chat(-100556, "Crashy")
    alice, bob = api.user(43, "Alice"), api.user(44, "Bob")
    clock = ManualClock()
    settings = make_settings(api, tmp_path / "bot.db")
    async with running_bot(api, settings, clock) as bot:
        api.push_command(group, alice, "battle", SETUP)
        announcement = await api.wait_for("sendMessage", sent_with("Joke battle #1"))
        api.push_message(group, bob, "Straw poll", reply_to=announcement.result)
        await api.wait_for("editMessageText", lambda c: "Bob" in c.params["text"])
        await bot.pass_time(60)
        await api.wait_for("sendMessage", sent_with("vote for the funniest"))
        # Every post fails from now on, as if the process died right after finishing the round.
        api.inject_error("sendMessage", status=403, retry_after=None, times=1000, description="Forbidden")
        await bot.pass_time(30)
        battle = await bot.service.storage.battles.get(1)
        assert battle is not None and battle.phase is Phase.FINISHED and battle.result_message_id is None
    api.clear_errors()  # Telegram works again
    async with running_bot(api, settings, clock) as bot:
        results = await api.wait_for("sendMessage", sent_with("Battle #1 results"))
        assert "“Straw poll” by Bob" in results.params["text"]
        battle = await bot.service.storage.battles.get(1)
        assert battle is not None and battle.result_message_id == str(results.result["message_id"])
    async with running_bot(api, settings, clock):  # a third start posts nothing again
        await asyncio.sleep(0.3)
    assert len(api.calls_of("sendMessage", sent_with("Battle #1 results"))) == 1


async def test_deep_links_are_for_members_and_anonymous_admins_cannot_play(
    api: FakeBotAPI, tmp_path: Path
) -> None:
    group = api.group_chat(-100444, "Secret Club")
    alice, bob, eve = api.user(51, "Alice"), api.user(52, "Bob"), api.user(59, "Eve")
    api.set_member_status(group["id"], eve["id"], "left")  # Eve is not in the group
    async with running_bot(api, make_settings(api, tmp_path / "bot.db"), ManualClock()) as bot:
        api.push_command(group, alice, "battle", SETUP)
        announcement = await api.wait_for("sendMessage", sent_with("Joke battle #1"))
        battle = await bot.service.storage.battles.get(1)
        assert battle is not None and battle.entry_token
        # Eve got hold of the link: she learns nothing about the group or its round.
        link = api.push_command(api.private_chat(eve), eve, "start", f"b_{battle.entry_token}")
        refused = (await api.wait_for("sendMessage", lambda c: c.replies_to(link))).params["text"]
        assert "Secret Club" not in refused and SETUP not in refused and "doesn't work" in refused
        # Guessing a round by its number leads nowhere (an old-style link is an ordinary /start).
        guess = api.push_command(api.private_chat(eve), eve, "start", "battle_1")
        answer = (await api.wait_for("sendMessage", lambda c: c.replies_to(guess))).params["text"]
        assert "Secret Club" not in answer and SETUP not in answer
        # An anonymous admin posts as the group itself: nobody to credit, so no entry.
        anon = api.push_message(
            group,
            api.user(1087968824, "Group"),
            "Anonymous line",
            reply_to=announcement.result,
            sender_chat=group,
        )
        said = (await api.wait_for("sendMessage", lambda c: c.replies_to(anon))).params["text"]
        assert "Anonymous admins can't play" in said
        api.push_message(group, bob, "Bob's line", reply_to=announcement.result)
        await api.wait_for("editMessageText", lambda c: "Bob" in c.params["text"])
        people = [e.author for e in await bot.service.storage.battle_entries.entries(1) if e.author]
        assert [p.user_id for p in people] == [str(bob["id"])]  # not the group's id


async def test_cancel_leaderboard_and_commands_left_to_the_core(api: FakeBotAPI, tmp_path: Path) -> None:
    group = api.group_chat(-100999, "Cancellers")
    alice, bob, carol = api.user(31, "Alice"), api.user(32, "Bob"), api.user(33, "Carol")
    api.set_member_status(group["id"], carol["id"], "administrator")
    async with running_bot(api, make_settings(api, tmp_path / "bot.db", entry_s=30), ManualClock()) as bot:
        api.push_command(group, alice, "battle", SETUP)
        await api.wait_for("sendMessage", sent_with("Joke battle #1"))
        refused = api.push_command(group, bob, "cancel")
        answer = await api.wait_for("sendMessage", lambda c: c.replies_to(refused))
        assert "Only Alice or a chat admin" in answer.params["text"]
        by_admin = api.push_command(group, carol, "cancel")  # a group admin, per getChatMember
        answer = await api.wait_for("sendMessage", lambda c: c.replies_to(by_admin))
        assert "cancelled" in answer.params["text"]
        await api.wait_for("sendMessage", sent_with("was cancelled by Carol"))
        battle = await bot.service.storage.battles.get(1)
        assert battle is not None
        assert battle is not None and battle.phase is Phase.CANCELLED

        private = api.private_chat(bob)
        board = api.push_command(private, bob, "leaderboard")
        answer = await api.wait_for("sendMessage", lambda c: c.replies_to(board))
        assert "per group" in answer.params["text"]
        # /start without a battle link, /cancel with no entry pending and plain private text
        # are not the battles' business: the core answers them as usual
        for text in ("/start", "/cancel", "Why did the chicken cross the road?"):
            sent = api.push_message(private, bob, text)
            answer = await api.wait_for("sendMessage", lambda c, m=sent: c.replies_to(m))
            assert "battle" not in answer.params["text"].lower()
        # an expired deep link gets a clear answer
        link = api.push_command(private, bob, "start", f"b_{battle.entry_token}")
        answer = await api.wait_for("sendMessage", lambda c: c.replies_to(link))
        assert "Too late" in answer.params["text"]


async def test_promote_is_for_the_bots_admins_over_the_real_stack(api: FakeBotAPI, tmp_path: Path) -> None:
    group = api.group_chat(-100777, "Promoters")
    alice, owner = api.user(31, "Alice"), api.user(77, "Owner")
    settings = make_settings(api, tmp_path / "bot.db")
    settings = settings.model_copy(
        update={"telegram": settings.telegram.model_copy(update={"admin_ids": [owner["id"]]})}
    )
    async with running_bot(api, settings, ManualClock()):
        refused = api.push_command(group, alice, "promote", "v2")
        answer = await api.wait_for("sendMessage", lambda c: c.replies_to(refused))
        assert answer.params["text"] == MSG_PROMOTE_REFUSED
        listing = api.push_command(group, owner, "promote")
        answer = await api.wait_for("sendMessage", lambda c: c.replies_to(listing))
        assert answer.params["text"].startswith("No challenger is being judged.")
        unknown = api.push_command(group, owner, "promote", "v9")
        answer = await api.wait_for("sendMessage", lambda c: c.replies_to(unknown))
        assert answer.params["text"].startswith("v9 is not being served (served: ")


async def test_a_flagged_group_reply_entry_is_removed_and_its_author_told_privately(
    api: FakeBotAPI, tmp_path: Path
) -> None:
    group = api.group_chat(-100778, "School")  # a group: family mode is on by default
    alice, bob = api.user(41, "Alice"), api.user(42, "Bob")
    async with running_bot(api, make_settings(api, tmp_path / "bot.db"), ManualClock()) as bot:
        api.push_command(group, alice, "battle", SETUP)
        announcement = await api.wait_for("sendMessage", sent_with("Joke battle #1"))
        rude = api.push_message(group, bob, "Because he was a sh1thead.", reply_to=announcement.result)
        await api.wait_for("deleteMessage", lambda c: c.params["message_id"] == rude["message_id"])
        told = await api.wait_for("sendMessage", lambda c: c.chat_id == bob["id"])
        assert told.params["text"] == MSG_ENTRY_WITHHELD
        assert not api.calls_of("sendMessage", lambda c: c.chat_id == group["id"] and c.replies_to(rude))
        entries = await bot.service.storage.battle_entries.entries(1)
        assert "Because he was a sh1thead." not in [e.text for e in entries]
