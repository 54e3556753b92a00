"""BattleService with a real SQLite file, the real BotCore for ratings, a recording announcer
and a hand-moved clock: whole rounds, bad input and restarts in each phase."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.battles.models import Answer, AuthorKind, ButtonKind, Phase, RefusalReason
from bot.battles.pool import PoolSetup, SetupPool
from bot.battles.service import BattleService
from bot.clock import ManualClock
from bot.core.service import BotCore
from bot.payloads import decode
from bot.storage import Storage
from bot.types import ChatKind, ChatRef, Platform, UserRef
from config.settings import Settings, load_settings
from model.types import WorkerBusy
from tests.fakes.announcer import FakeAnnouncer
from tests.fakes.generator import FakeGenerator, VersionedGenerator
from tests.helpers import db

GROUP = ChatRef(Platform.TELEGRAM, "-1001", ChatKind.GROUP, "Jokers")
OTHER_GROUP = ChatRef(Platform.TELEGRAM, "-1002", ChatKind.GROUP, "Others")
ALICE = UserRef(Platform.TELEGRAM, "1", "Alice")
BOB = UserRef(Platform.TELEGRAM, "2", "Bob")
CAROL = UserRef(Platform.TELEGRAM, "3", "Carol")
DAVE = UserRef(Platform.TELEGRAM, "4", "Dave")
ADMIN = UserRef(Platform.TELEGRAM, "42", "Admin")
SETUP = "Why did the scarecrow win an award?"
BOT_LINE = "Because he was outstanding in his field."


@dataclass
class World:
    path: Path
    settings: Settings
    clock: ManualClock
    storage: Storage
    generator: FakeGenerator
    announcer: FakeAnnouncer
    service: BattleService
    core: BotCore

    async def restart(self, generator: FakeGenerator | None = None) -> None:
        """Stop everything (as a crash or a deploy would) and start again on the same file."""
        await self.service.close()
        await self.storage.close()
        self.storage = await Storage.open(self.path)
        self.generator = generator or self.generator
        self.announcer = FakeAnnouncer()
        self.core = BotCore(self.settings, self.storage, self.generator, self.clock)
        self.service = make_service(self)

    async def vote(
        self, battle_id: int, position: int, voter: UserRef, chat: ChatRef = GROUP, at: datetime | None = None
    ) -> Answer:
        """Press vote button `position` on the round's ballot (its announcement before voting),
        as seen in `chat`, at the platform time `at`."""
        battle = await self.storage.battles.get(battle_id)
        message_id = (battle.vote_message_id or battle.entry_message_id) if battle else None
        return await self.service.vote(chat, message_id or "0", position, voter, at=at)

    def ballot_position(self, text: str) -> int:
        ballot = self.announcer.find("vote for the funniest")[-1]
        line = next(l for l in ballot.view.text.splitlines() if l.endswith(text))
        return int(line.split(".")[0])


def make_service(w: World, pool: SetupPool | None = None) -> BattleService:
    service = BattleService(
        w.settings, w.storage, w.generator, w.clock, w.core.access, pool=pool, rng=random.Random(3)
    )
    service.attach(Platform.TELEGRAM, w.announcer)
    return service


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    settings = load_settings(
        battles={"entry_seconds": 60, "vote_seconds": 30, "max_entry_chars": 80, "resume_grace_s": 0.2},
        telegram={"admin_ids": [42]},
    )
    clock = ManualClock()
    storage = await Storage.open(tmp_path / "bot.db")
    generator = FakeGenerator([BOT_LINE], version="v1")
    announcer = FakeAnnouncer()
    core = BotCore(settings, storage, generator, clock)
    w = World(tmp_path / "bot.db", settings, clock, storage, generator, announcer, None, core)  # type: ignore[arg-type]
    w.service = make_service(w)
    yield w
    await w.service.close()
    await w.storage.close()


async def start(w: World, setup: str | None = SETUP, user: UserRef = ALICE) -> int:
    answer = await w.service.start(GROUP, user, setup)
    assert answer.ok, answer.text
    await w.service.settle()
    battle = await w.service.storage.battles.open_in_chat(GROUP.platform, GROUP.chat_id)
    assert battle is not None
    return battle.id


async def to_voting(w: World) -> None:
    w.clock.advance(w.settings.battles.entry_seconds)
    await w.service.advance_due()


# -- starting ----------------------------------------------------------------------------------


async def test_battles_are_for_groups_only(world: World) -> None:
    private = ChatRef(Platform.TELEGRAM, "1", ChatKind.PRIVATE)
    answer = await world.service.start(private, ALICE, SETUP)
    assert not answer.ok and answer.reason is RefusalReason.NOT_A_GROUP
    assert "group" in answer.text
    assert world.announcer.posts == []


async def test_start_announces_the_setup_with_an_entry_button_and_the_bot_plays(world: World) -> None:
    battle_id = await start(world)
    announcement = world.announcer.posts[0]
    assert SETUP in announcement.view.text and f"#{battle_id}" in announcement.view.text
    assert [b.kind for b in announcement.buttons] == [ButtonKind.ENTER]
    assert world.generator.calls[0].setup == SETUP
    entries = await world.service.storage.battle_entries.entries(battle_id)
    assert [(e.kind, e.text, e.version) for e in entries] == [(AuthorKind.BOT, BOT_LINE, "v1")]
    # the bot joining shows in the announcement, its text does not
    assert "the bot" in announcement.text and BOT_LINE not in announcement.text
    # its entry is a core reply (with the setup), so votes can rate it
    reply = await db.get_reply(world.storage, entries[0].reply_id)  # type: ignore[arg-type]
    assert reply is not None and reply.text == BOT_LINE and reply.version == "v1"
    battle = await world.service.storage.battles.get(battle_id)
    assert battle is not None and battle.entry_message_id == announcement.message_id


async def test_a_second_battle_names_the_running_one(world: World) -> None:
    battle_id = await start(world)
    answer = await world.service.start(GROUP, BOB, "Another setup?")
    assert not answer.ok and answer.reason is RefusalReason.ALREADY_RUNNING
    assert f"#{battle_id}" in answer.text and SETUP in answer.text and "1 min" in answer.text
    # another chat may battle at the same time
    assert (await world.service.start(OTHER_GROUP, BOB, "Another setup?")).ok


async def test_without_a_setup_or_pool_the_answer_says_how_to_give_one(world: World) -> None:
    answer = await world.service.start(GROUP, ALICE, None)
    assert not answer.ok and answer.reason is RefusalReason.NO_SETUP
    assert "/battle " in answer.text and "PUNCHLINE_BATTLES__SETUPS" in answer.text


async def test_overlong_setup_is_refused(world: World) -> None:
    answer = await world.service.start(GROUP, ALICE, "why " * 200)
    assert not answer.ok and answer.reason is RefusalReason.BAD_SETUP


async def test_pool_setups_skip_recent_ones_and_bring_the_classic(world: World) -> None:
    pool = SetupPool(
        None, setups=[PoolSetup("Setup one?", "Classic one."), PoolSetup("Setup two?", "Classic two.")]
    )
    world.service = make_service(world, pool)
    seen = []
    for _ in range(2):
        battle_id = await start(world, None)
        battle = await world.service.storage.battles.get(battle_id)
        assert battle is not None
        seen.append(battle.setup)
        entries = await world.service.storage.battle_entries.entries(battle_id)
        classic = [e for e in entries if e.kind is AuthorKind.CLASSIC]
        assert [c.text for c in classic] == [battle.setup.replace("Setup", "Classic").replace("?", ".")]
        assert (await world.service.cancel(GROUP, ALICE)).ok
    assert sorted(seen) == ["Setup one?", "Setup two?"]  # the second round avoided the first's
    # a typed setup that is in the corpus brings its classic too
    battle_id = await start(world, "setup   ONE?")
    kinds = {e.kind for e in await world.service.storage.battle_entries.entries(battle_id)}
    assert AuthorKind.CLASSIC in kinds


async def test_the_classic_stays_out_when_the_setting_is_off(world: World) -> None:
    world.settings.battles.classic = False
    pool = SetupPool(None, setups=[PoolSetup("Setup one?", "Classic one.")])
    world.service = make_service(world, pool)
    battle_id = await start(world, None)
    assert all(
        e.kind is not AuthorKind.CLASSIC
        for e in await world.service.storage.battle_entries.entries(battle_id)
    )


# -- a whole round -----------------------------------------------------------------------------


async def test_a_whole_round(world: World) -> None:
    battle_id = await start(world)
    rounds, store = world.storage.battles, world.storage.battle_entries
    assert (await world.service.entries.submit(battle_id, ALICE, "He was a born winner")).ok
    assert (await world.service.entries.submit(battle_id, BOB, "Straw poll")).ok
    replaced = await world.service.entries.submit(battle_id, BOB, "He had great straw-tegy")
    assert replaced.ok and "Replaced" in replaced.text
    assert (await world.service.entries.submit(battle_id, CAROL, "Corn-gratulations were in order")).ok
    entries = await store.entries(battle_id)
    assert len(entries) == 4 and {e.text for e in entries} >= {"He had great straw-tegy"}
    announcement = world.announcer.posts[0]
    assert all(name in announcement.text for name in ("Alice", "Bob", "Carol"))
    assert "straw" not in announcement.text  # entries stay hidden

    await to_voting(world)
    battle = await rounds.get(battle_id)
    assert battle is not None and battle.phase is Phase.VOTING
    assert announcement.buttons == ()  # the entry button is gone
    ballot = world.announcer.find("vote for the funniest")[-1]
    assert battle.vote_message_id == ballot.message_id
    assert "Alice" not in ballot.view.text and "Bob" not in ballot.view.text  # unnamed
    assert len(ballot.buttons) == 4
    payloads = [decode(b.payload) for b in ballot.buttons]
    assert [p.position for p in payloads] == [1, 2, 3, 4]  # type: ignore[union-attr]

    alice_pos = world.ballot_position("He was a born winner")
    bot_pos = world.ballot_position(BOT_LINE)
    bob_pos = world.ballot_position("He had great straw-tegy")
    own = await world.vote(battle_id, alice_pos, ALICE)
    assert not own.ok and own.reason is RefusalReason.OWN_ENTRY
    assert (await world.vote(battle_id, alice_pos, BOB)).ok
    assert (await world.vote(battle_id, alice_pos, CAROL)).ok
    # Dave, an onlooker, votes for the bot, then changes his mind: the funny rating follows
    assert (await world.vote(battle_id, bot_pos, DAVE)).ok
    bot_entry = next(e for e in await store.entries(battle_id) if e.kind is AuthorKind.BOT)
    ratings = await db.reactions_for(world.storage, bot_entry.reply_id)  # type: ignore[arg-type]
    assert [(r.source, r.rating, r.funniness) for r in ratings] == [("battle", "funny", 1)]
    changed = await world.vote(battle_id, bob_pos, DAVE)
    assert changed.ok and "changed" in changed.text
    assert await db.reactions_for(world.storage, bot_entry.reply_id) == []  # type: ignore[arg-type]
    assert (await world.vote(battle_id, bot_pos, ALICE)).ok
    again = await world.vote(battle_id, bot_pos, ALICE)
    assert again.ok and "already" in again.text

    world.clock.advance(world.settings.battles.vote_seconds)
    assert await world.service.advance_due() == [battle_id]
    battle = await rounds.get(battle_id)
    assert battle is not None and battle.phase is Phase.FINISHED
    results = world.announcer.find("results")[-1]
    text = results.view.text
    # 4 votes: Alice 2 = 500 + win bonus; Bob 1 = 250; the bot 1 = 250
    assert "“He was a born winner” by Alice: 2 votes, 600 points 🏆" in text
    assert "by Bob: 1 vote, 250 points" in text
    assert "by the bot (v1): 1 vote, 250 points" in text
    assert "by Carol: 0 votes, 0 points" in text
    assert "People beat the bot" in text
    assert ballot.buttons == ()  # voting buttons gone

    late = await world.vote(battle_id, alice_pos, DAVE)
    assert not late.ok and late.reason is RefusalReason.VOTING_OVER
    board = await world.service.leaderboard_text(GROUP)
    lines = board.splitlines()
    assert lines[1].startswith("1. Alice: 600 points, 1 win in 1 round")
    assert any("🤖 the bot: 250 points" in line for line in lines)
    assert "people won 1, the bot won 0, 0 tied" in board
    # every vote is stored
    votes = await store.votes(battle_id)
    assert {(v.voter.name, v.entry_id) for v in votes} == {
        ("Bob", next(e.id for e in await store.entries(battle_id) if e.position == alice_pos)),
        ("Carol", next(e.id for e in await store.entries(battle_id) if e.position == alice_pos)),
        ("Dave", next(e.id for e in await store.entries(battle_id) if e.position == bob_pos)),
        ("Alice", bot_entry.id),
    }


async def test_too_few_players_end_the_round_with_a_message(world: World) -> None:
    battle_id = await start(world)
    await to_voting(world)
    battle = await world.service.storage.battles.get(battle_id)
    assert battle is not None and battle.phase is Phase.TOO_FEW
    message = world.announcer.find("is off")[-1].view.text
    assert "1 player entered" in message and "takes 2" in message
    assert world.announcer.find("vote for the funniest") == []
    # the chat is free for a new round
    assert (await world.service.start(GROUP, BOB, "Next?")).ok


async def test_late_entries_and_early_votes_are_refused(world: World) -> None:
    battle_id = await start(world)
    early = await world.vote(battle_id, 1, BOB)
    assert not early.ok and early.reason is RefusalReason.NOT_VOTING
    await world.service.entries.submit(battle_id, BOB, "On time")
    world.clock.advance(60)  # the deadline passed; the timer has not fired yet
    late = await world.service.entries.submit(battle_id, CAROL, "Too late")
    assert not late.ok and late.reason is RefusalReason.ENTRIES_CLOSED
    await world.service.advance_due()
    texts = {e.text for e in await world.service.storage.battle_entries.entries(battle_id)}
    assert "Too late" not in texts and "On time" in texts


async def test_bad_entries_are_refused_and_keep_the_earlier_one(world: World) -> None:
    battle_id = await start(world)
    assert (await world.service.entries.submit(battle_id, BOB, "Good one")).ok
    empty = await world.service.entries.submit(battle_id, BOB, "   ")
    assert not empty.ok and empty.reason is RefusalReason.EMPTY_ENTRY
    long = await world.service.entries.submit(battle_id, BOB, "x" * 81)
    assert not long.ok and long.reason is RefusalReason.LONG_ENTRY and "80" in long.text
    robot = UserRef(Platform.TELEGRAM, "77", "Robo", is_bot=True)
    assert not (await world.service.entries.submit(battle_id, robot, "beep")).ok
    unknown = await world.service.entries.submit(9999, BOB, "Hello")
    assert not unknown.ok and unknown.reason is RefusalReason.UNKNOWN_BATTLE
    people = [
        e.text
        for e in await world.service.storage.battle_entries.entries(battle_id)
        if e.kind is AuthorKind.PERSON
    ]
    assert people == ["Good one"]


async def test_forged_votes_are_refused(world: World) -> None:
    battle_id = await start(world)
    await world.service.entries.submit(battle_id, BOB, "Entry")
    await to_voting(world)
    other = await world.vote(battle_id, 1, CAROL, OTHER_GROUP)  # a payload from elsewhere
    assert not other.ok and other.reason is RefusalReason.UNKNOWN_BATTLE
    assert not (await world.vote(battle_id, 9, CAROL)).ok
    assert not (await world.vote(12345, 1, CAROL)).ok
    assert await world.service.storage.battle_entries.votes(battle_id) == []


async def test_cancel_by_starter_or_admin_only(world: World) -> None:
    battle_id = await start(world)
    refused = await world.service.cancel(GROUP, BOB)
    assert not refused.ok and refused.reason is RefusalReason.NOT_ALLOWED
    assert (await world.service.cancel(GROUP, ADMIN)).ok  # a bot admin (telegram.admin_ids)
    battle = await world.service.storage.battles.get(battle_id)
    assert battle is not None and battle.phase is Phase.CANCELLED
    assert world.announcer.find("was cancelled by Admin")
    assert world.announcer.posts[0].buttons == ()
    nothing = await world.service.cancel(GROUP, ALICE)
    assert not nothing.ok and nothing.reason is RefusalReason.NOTHING_RUNNING
    # a chat admin (the front-end's verdict) may cancel too, also while voting
    battle_id = await start(world, "Second?", user=BOB)
    await world.service.entries.submit(battle_id, CAROL, "Entry")
    await to_voting(world)
    assert (await world.service.cancel(GROUP, DAVE, chat_admin=True)).ok
    world.clock.advance(60)
    assert await world.service.advance_due() == []


async def test_platform_errors_never_break_a_round(world: World) -> None:
    world.announcer.fail = True  # the announcement, its updates and the results all fail
    battle_id = await start(world)
    await world.service.entries.submit(battle_id, BOB, "Still counts")
    world.announcer.fail = False  # the ballot gets through: votes need its buttons
    await to_voting(world)
    world.announcer.fail = True
    assert (await world.vote(battle_id, 1, CAROL)).ok
    world.clock.advance(30)
    await world.service.advance_due()
    battle = await world.service.storage.battles.get(battle_id)
    assert battle is not None and battle.phase is Phase.FINISHED


async def test_a_generator_failure_leaves_the_bot_out(world: World) -> None:
    world.generator.fail_next(WorkerBusy("queue full"))
    battle_id = await start(world)
    assert await world.service.storage.battle_entries.entries(battle_id) == []
    await world.service.entries.submit(battle_id, BOB, "One")
    await world.service.entries.submit(battle_id, CAROL, "Two")
    await to_voting(world)
    battle = await world.service.storage.battles.get(battle_id)
    assert battle is not None and battle.phase is Phase.VOTING


async def member(chat: ChatRef, user: UserRef) -> bool:
    return True


async def outsider(chat: ChatRef, user: UserRef) -> bool:
    return False


async def test_secret_entries_by_private_message(world: World) -> None:
    battle_id = await start(world)
    battle = await world.service.storage.battles.get(battle_id)
    assert battle is not None and battle.entry_token and len(battle.entry_token) >= 16
    token = battle.entry_token
    assert await world.service.entries.submit_secret(Platform.TELEGRAM, BOB, "Not for a battle") is None
    opened = await world.service.entries.begin_secret_entry(Platform.TELEGRAM, token, BOB, member)
    assert opened.ok and SETUP in opened.text
    empty = await world.service.entries.submit_secret(Platform.TELEGRAM, BOB, "  ")
    assert empty is not None and not empty.ok  # refused, and the slot stays open
    taken = await world.service.entries.submit_secret(Platform.TELEGRAM, BOB, "Secret punchline")
    assert taken is not None and taken.ok
    assert await world.service.entries.submit_secret(Platform.TELEGRAM, BOB, "a normal setup?") is None
    texts = [e.text for e in await world.service.storage.battle_entries.entries(battle_id)]
    assert "Secret punchline" in texts
    # a link to an unknown round, or another platform's, is refused
    assert not (await world.service.entries.begin_secret_entry(Platform.TELEGRAM, "x" * 16, BOB, member)).ok
    assert not (await world.service.entries.begin_secret_entry(Platform.DISCORD, token, BOB, member)).ok
    # someone outside the group learns nothing about it: the same answer as for no round at all
    stranger = await world.service.entries.begin_secret_entry(Platform.TELEGRAM, token, DAVE, outsider)
    nothing = await world.service.entries.begin_secret_entry(Platform.TELEGRAM, "y" * 16, DAVE, outsider)
    assert not stranger.ok and stranger.text == nothing.text
    assert SETUP not in stranger.text and GROUP.title not in stranger.text
    # a pending slot ends with the entry phase
    await world.service.entries.begin_secret_entry(Platform.TELEGRAM, token, CAROL, member)
    await to_voting(world)
    assert await world.service.entries.submit_secret(Platform.TELEGRAM, CAROL, "too late") is None


async def test_two_versions_both_play_and_feed_the_elo_table(world: World) -> None:
    await world.restart(VersionedGenerator(("v2", "v1")))
    battle_id = await start(world)
    bots = [
        e for e in await world.service.storage.battle_entries.entries(battle_id) if e.kind is AuthorKind.BOT
    ]
    assert sorted(e.version for e in bots) == ["v1", "v2"]
    await world.service.entries.submit(battle_id, BOB, "Human line")
    await to_voting(world)
    await world.vote(battle_id, world.ballot_position("v2 says: because reasons"), CAROL)
    await world.vote(battle_id, world.ballot_position("v2 says: because reasons"), DAVE)
    await world.vote(battle_id, world.ballot_position("v1 says: because reasons"), BOB)
    world.clock.advance(30)
    await world.service.advance_due()
    table = await world.service.storage.battle_results.elo_table()
    assert [(r.version, r.wins, r.losses) for r in table] == [("v2", 1, 0), ("v1", 0, 1)]
    assert table[0].rating > 1000 > table[1].rating
    text = await world.service.stats_text(GROUP)
    assert text.index("v2") < text.index("v1")
    assert "The bot won" in world.announcer.find("results")[-1].view.text


# -- restarts ----------------------------------------------------------------------------------


async def test_restart_during_entry_keeps_entries_and_the_deadline(world: World) -> None:
    battle_id = await start(world)
    await world.service.entries.submit(battle_id, BOB, "Before the restart")
    world.clock.advance(20)
    await world.restart()
    assert await world.service.resume() == [battle_id]
    assert (await world.service.entries.submit(battle_id, CAROL, "After the restart")).ok
    world.clock.advance(39)
    assert await world.service.advance_due() == []  # the original deadline still holds
    world.clock.advance(1)
    assert await world.service.advance_due() == [battle_id]
    ballot = world.announcer.find("vote for the funniest")[-1].view.text
    assert "Before the restart" in ballot and "After the restart" in ballot and BOT_LINE in ballot
    assert len(world.generator.calls) == 1  # the bot had entered already: no second entry


async def test_restart_during_entry_gives_the_bot_its_entry_if_it_had_none(world: World) -> None:
    world.generator.block()
    assert (await world.service.start(GROUP, ALICE, SETUP)).ok
    await world.restart(FakeGenerator(["After restart line"], version="v1"))
    [battle_id] = await world.service.resume()
    await world.service.settle()
    texts = [e.text for e in await world.service.storage.battle_entries.entries(battle_id)]
    assert texts == ["After restart line"]


async def test_restart_during_voting_keeps_votes(world: World) -> None:
    battle_id = await start(world)
    await world.service.entries.submit(battle_id, BOB, "Bob's line")
    await to_voting(world)
    bob = world.ballot_position("Bob's line")
    await world.vote(battle_id, bob, CAROL)
    await world.restart()
    await world.service.resume()
    assert (await world.vote(battle_id, bob, DAVE)).ok
    world.clock.advance(30)
    await world.service.advance_due()
    assert "“Bob's line” by Bob: 2 votes, 1200 points 🏆 unanimous!" in (
        world.announcer.find("results")[-1].view.text
    )


async def test_a_deadline_passed_while_down_closes_right_after_the_resume_grace(world: World) -> None:
    battle_id = await start(world)
    await world.service.entries.submit(battle_id, BOB, "Bob's line")
    await world.restart()
    world.clock.advance(600)  # down for ten minutes: past the entry deadline
    await world.service.resume()
    ballot = await world.announcer.wait_for("vote for the funniest")
    assert "Bob's line" in ballot.view.text
    battle = await world.service.storage.battles.get(battle_id)
    assert battle is not None and battle.phase is Phase.VOTING
    await world.vote(battle_id, world.ballot_position("Bob's line"), CAROL)
    await world.restart()
    world.clock.advance(600)
    await world.service.resume()
    results = await world.announcer.wait_for("results")
    assert "“Bob's line” by Bob: 1 vote, 1100 points 🏆" in results.view.text


async def test_entries_and_votes_sent_before_the_deadline_count_when_read_after_a_restart(
    world: World,
) -> None:
    """The bot was down across the deadline; the platform kept what people sent meanwhile.
    Before the resume grace the round closed at once on resume, so those updates, read a
    moment later, were refused "too late"."""
    battle_id = await start(world)
    battle = await world.storage.battles.get(battle_id)
    assert battle is not None
    await world.service.entries.submit(battle_id, BOB, "Bob's line")
    await world.restart()
    world.clock.advance(600)
    await world.service.resume()
    sent = battle.entry_deadline - timedelta(seconds=1)  # stamped by the platform while down
    assert (await world.service.entries.submit(battle_id, CAROL, "Carol's line", at=sent)).ok
    late = await world.service.entries.submit(battle_id, DAVE, "Dave's line", at=battle.entry_deadline)
    assert late.reason is RefusalReason.ENTRIES_CLOSED
    ballot = await world.announcer.wait_for("vote for the funniest")
    assert "Carol's line" in ballot.view.text and "Dave's line" not in ballot.view.text
    voting = await world.storage.battles.get(battle_id)
    assert voting is not None and voting.vote_deadline is not None
    carol = world.ballot_position("Carol's line")
    await world.restart()
    world.clock.advance(600)
    await world.service.resume()
    before = voting.vote_deadline - timedelta(seconds=1)
    assert (await world.vote(battle_id, carol, DAVE, at=before)).ok
    results = await world.announcer.wait_for("results")
    assert "“Carol's line” by Carol: 1 vote" in results.view.text


async def test_resume_skips_platforms_that_are_not_running(world: World) -> None:
    await start(world)
    await world.restart()
    service = BattleService(world.settings, world.storage, world.generator, world.clock, world.core.access)
    assert await service.resume() == []  # no announcer attached: nothing to show rounds on
    await service.close()


async def test_the_bot_sits_out_with_an_unplayable_punchline(world: World) -> None:
    world.generator.answer_with("x" * 81)  # over the entry limit of 80
    battle_id = await start(world)
    assert await world.service.storage.battle_entries.entries(battle_id) == []
    deadline = world.generator.calls[0].deadline
    assert deadline is not None and deadline == pytest.approx(world.clock.monotonic() + 60)


async def test_the_bot_can_be_kept_out(world: World) -> None:
    world.settings.battles.bot_versions = 0
    world.service = make_service(world)
    battle_id = await start(world)
    assert world.generator.calls == [] and await world.service.storage.battle_entries.entries(battle_id) == []


async def test_a_timer_survives_a_locked_database(tmp_path: Path) -> None:
    """The phase change fails twice (another process holds the database past its busy timeout);
    the timer tries again and the round moves on as soon as the database is writable."""
    import sqlite3

    from bot.clock import SystemClock

    settings = load_settings(battles={"entry_seconds": 0.3, "vote_seconds": 30, "min_players": 2})
    storage = await Storage.open(tmp_path / "bot.db")
    generator = FakeGenerator([BOT_LINE], version="v1")
    core = BotCore(settings, storage, generator, SystemClock())
    service = BattleService(settings, storage, generator, SystemClock(), core.access, retry_s=0.05)
    service.attach(Platform.TELEGRAM, FakeAnnouncer())
    real_open_voting = storage.battles.open_voting
    failures = []

    async def locked_twice(*args, **kwargs):  # type: ignore[no-untyped-def]
        if len(failures) < 2:
            failures.append(1)
            raise sqlite3.OperationalError("database is locked")
        return await real_open_voting(*args, **kwargs)

    storage.battles.open_voting = locked_twice  # type: ignore[method-assign]
    try:
        assert (await service.start(GROUP, ALICE, SETUP)).ok
        battle = await storage.battles.open_in_chat(GROUP.platform, GROUP.chat_id)
        assert battle is not None
        await service.entries.submit(battle.id, BOB, "Straw poll")
        deadline = asyncio.get_running_loop().time() + 20
        while (now := await storage.battles.get(battle.id)) is not None and now.phase is Phase.ENTRY:
            assert asyncio.get_running_loop().time() < deadline, "the round never moved on"
            await asyncio.sleep(0.05)
        assert now is not None and now.phase is Phase.VOTING and len(failures) == 2
    finally:
        await service.close()
        await storage.close()


async def test_a_round_takes_no_more_entries_than_its_ballot_shows(world: World) -> None:
    """Discord takes 2000 characters a message: with entries of up to 200 characters, a ballot
    shows 8, two of them kept for the bot's versions and one for the classic, so the sixth
    person is told the round is full, and the ballot shows every entry in full."""
    from bot.battles import views

    discord = ChatRef(Platform.DISCORD, "555", ChatKind.GROUP, "Server")
    announcer = FakeAnnouncer()
    world.service.attach(Platform.DISCORD, announcer)
    settings = world.settings.battles.model_copy(update={"max_entry_chars": 200})
    world.service.settings = settings
    world.service.entries.settings = settings
    world.service.rounds.settings = settings
    assert (await world.service.start(discord, ALICE, SETUP)).ok
    battle = await world.storage.battles.open_in_chat(Platform.DISCORD, "555")
    assert battle is not None
    capacity = views.ballot_capacity(battle, settings)
    room = capacity - views.machine_slots(battle, settings)
    people = [UserRef(Platform.DISCORD, str(100 + i), f"P{i}") for i in range(room + 2)]
    answers = [
        await world.service.entries.submit(battle.id, p, f"{i} " + "x" * 196) for i, p in enumerate(people)
    ]
    assert [a.ok for a in answers] == [True] * room + [False, False]
    assert answers[-1].reason is RefusalReason.ROUND_FULL and "full" in answers[-1].text
    assert (await world.service.entries.submit(battle.id, people[0], "A replacement still fits")).ok
    world.clock.advance(settings.entry_seconds)
    await world.service.advance_due()
    ballot = announcer.find("vote for the funniest")[-1]
    assert len(ballot.view.text) <= views.MESSAGE_LIMITS[Platform.DISCORD]
    assert len(ballot.view.buttons) == len(await world.storage.battle_entries.entries(battle.id))
