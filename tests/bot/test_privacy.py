"""People's data under their control, on a real SQLite file: /forget leaves no row of the person
in any table (the map of personal columns is checked against the live schema), opt-outs never
reach the export, and retention purges exactly what is due."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.battles.service import BattleService
from bot.cli import main
from bot.clock import ManualClock
from bot.core.service import BotCore
from bot.export.collect import collect_rows
from bot.export.consent import Consent
from bot.serve import run_serve
from bot.storage import Storage
from bot.storage.personal import COLUMNS, FORGOTTEN_PREFIX, PERSON, WORDS, columns_holding
from bot.types import ChatKind, ChatRef, IncomingSetup, MessageRef, Platform, Rating, UserRef
from config.settings import PrivacySettings, Settings, load_settings
from tests.fakes.announcer import FakeAnnouncer
from tests.fakes.front_end import FakeFrontEnd
from tests.fakes.generator import FakeGenerator

GROUP = ChatRef(Platform.TELEGRAM, "-100", ChatKind.GROUP, "Jokers")
ANN = UserRef(Platform.TELEGRAM, "4242", "Annabel Q")
BOB = UserRef(Platform.TELEGRAM, "4343", "Bob")
CAROL = UserRef(Platform.TELEGRAM, "4444", "Carol")
ANN_PRIVATE = ChatRef(Platform.TELEGRAM, ANN.user_id, ChatKind.PRIVATE, ANN.name)
ANN_WORDS = ("Why does Annabel's cat sulk?", "Because Annabel rhymes with unbearable", "Annabel's open entry")


@dataclass
class World:
    path: Path
    settings: Settings
    clock: ManualClock
    storage: Storage
    core: BotCore
    battles: BattleService

    async def ask(self, chat: ChatRef, user: UserRef, text: str, message_id: str) -> int:
        reply = await self.core.handle_setup(IncomingSetup(chat, user, text, True, f"in-{message_id}"))
        assert reply is not None and reply.reply_id is not None, reply
        await self.core.reply_sent(reply.reply_id, MessageRef(chat, message_id))
        self.clock.advance(61)  # past everyone's rate limit
        return reply.reply_id


async def open_world(path: Path, **settings: object) -> World:
    s = load_settings(battles={"entry_seconds": 60, "vote_seconds": 30}, **settings)
    clock = ManualClock()
    storage = await Storage.open(path)
    generator = FakeGenerator(["A punchline."], version="v1")
    core = BotCore(s, storage, generator, clock)
    battles = BattleService(s, storage, generator, clock, core.access, rng=random.Random(1))
    battles.attach(Platform.TELEGRAM, FakeAnnouncer())
    return World(path, s, clock, storage, core, battles)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = await open_world(tmp_path / "bot.db")
    yield w
    await w.battles.close()
    await w.storage.close()


async def fill(w: World) -> dict[str, int]:
    """Ann everywhere: private chat, group, ratings, a finished round she started and won a
    vote in, an open round with her entry, a vote and a waiting secret entry; Bob and Carol too."""
    ids = {
        "ann_private": await w.ask(ANN_PRIVATE, ANN, ANN_WORDS[0], "p1"),
        "ann_group": await w.ask(GROUP, ANN, "Why is the group chat so loud?", "g1"),
        "bob_group": await w.ask(GROUP, BOB, "Why do bees hum?", "g2"),
    }
    await w.core.ratings.rate(MessageRef(GROUP, "g2"), ANN, Rating.FUNNY)
    await w.core.ratings.set_reactions(MessageRef(GROUP, "g2"), ANN, ["🤣"])
    await w.core.ratings.rate(MessageRef(GROUP, "g1"), BOB, Rating.MEH)
    await w.core.ratings.rate(MessageRef(ANN_PRIVATE, "p1"), ANN, Rating.FUNNY)
    # A finished round Ann started with her own setup, in which she and Bob played.
    assert (await w.battles.start(GROUP, ANN, ANN_WORDS[0])).ok
    await w.battles.settle()
    battle = await w.storage.battles.open_in_chat(GROUP.platform, GROUP.chat_id)
    assert battle is not None
    ids["finished"] = battle.id
    assert (await w.battles.entries.submit(battle.id, ANN, ANN_WORDS[1])).ok
    assert (await w.battles.entries.submit(battle.id, BOB, "Because bees")).ok
    w.clock.advance(60)
    await w.battles.advance_due()
    battle = await w.storage.battles.get(battle.id)
    assert battle is not None and battle.vote_message_id is not None
    entries = {e.text: e for e in await w.storage.battle_entries.entries(battle.id)}
    for voter, text in ((CAROL, ANN_WORDS[1]), (ANN, "Because bees"), (BOB, ANN_WORDS[1])):
        vote = await w.battles.vote(GROUP, battle.vote_message_id, entries[text].position, voter)
        assert vote.ok, vote.text
    w.clock.advance(30)
    await w.battles.advance_due()
    # An open round (Bob's) with Ann's entry, and Ann's secret entry waiting for its text.
    assert (await w.battles.start(GROUP, BOB, "Why do owls stay up?")).ok
    await w.battles.settle()
    open_round = await w.storage.battles.open_in_chat(GROUP.platform, GROUP.chat_id)
    assert open_round is not None and open_round.entry_token
    ids["open"] = open_round.id
    assert (await w.battles.entries.submit(open_round.id, ANN, ANN_WORDS[2])).ok

    async def member(chat: ChatRef, person: UserRef) -> bool:
        return True

    other = ChatRef(Platform.TELEGRAM, "-200", ChatKind.GROUP, "Others")
    assert (await w.battles.start(other, CAROL, "Why is the sky up?")).ok
    await w.battles.settle()
    third = await w.storage.battles.open_in_chat(other.platform, other.chat_id)
    assert third is not None and third.entry_token
    assert (await w.battles.entries.begin_secret_entry(Platform.TELEGRAM, third.entry_token, ANN, member)).ok
    return ids


async def all_rows(storage: Storage) -> dict[str, list[dict[str, object]]]:
    out = {}
    for table in COLUMNS:
        async with storage.db.execute(f"SELECT * FROM {table}") as cur:  # our own table names
            out[table] = [dict(row) for row in await cur.fetchall()]
    return out


async def test_the_map_of_personal_columns_covers_the_whole_schema(storage: Storage) -> None:
    """A table or column added by a migration must be placed in `bot.storage.personal`."""
    async with storage.db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ) as cur:
        tables = {row[0] for row in await cur.fetchall()}
    assert tables == set(COLUMNS), "tables missing from (or gone from) bot.storage.personal.COLUMNS"
    for table in tables:
        async with storage.db.execute(f"PRAGMA table_info({table})") as cur:
            columns = {row["name"] for row in await cur.fetchall()}
        assert columns == set(COLUMNS[table]), f"{table}: columns and the map differ"


async def test_forget_leaves_no_row_of_the_person_in_any_table(world: World) -> None:
    ids = await fill(world)
    async with world.storage.db.execute("SELECT id FROM users WHERE user_id = ?", (ANN.user_id,)) as cur:
        ann_pk = (await cur.fetchone())["id"]
    bob_before = await world.storage.battle_results.leaderboard(GROUP.platform, GROUP.chat_id)

    removed = await world.core.privacy.forget(ANN)

    assert "Done" in removed and "setups" in removed and "battle entries made anonymous" in removed
    rows = await all_rows(world.storage)
    ann_marks = {ANN.user_id, ANN.name, ann_pk}
    for table, columns in columns_holding(PERSON).items():
        for row in rows[table]:
            for column in columns:
                assert row[column] not in ann_marks, f"{table}.{column} still names Ann"
    kept = {
        ANN_WORDS[0]: {("battles", "setup"), ("battles", "setup_key")},
        ANN_WORDS[1]: {("battle_entries", "text")},
    }
    for table, columns in columns_holding(WORDS).items():
        for row in rows[table]:
            for column in columns:
                for words in ANN_WORDS:
                    if words.lower() in str(row[column]).lower():
                        assert (table, column) in kept.get(words, set()), f"{table}.{column} holds {words!r}"
    # The finished round keeps Ann's entry, anonymous, with its points: the others' stay true.
    [ann_entry] = [e for e in rows["battle_entries"] if e["text"] == ANN_WORDS[1]]
    assert str(ann_entry["user_id"]).startswith(FORGOTTEN_PREFIX) and ann_entry["user_name"] == ""
    assert ann_entry["points"] > 0 and ann_entry["battle_id"] == ids["finished"]
    after = await world.storage.battle_results.leaderboard(GROUP.platform, GROUP.chat_id)
    assert [r for r in bob_before if r.user_id != ANN.user_id] == after
    # Bob's setup, reply and his rating of Ann's (gone) reply: his setup and reply stay.
    assert any(r["text"] == "Why do bees hum?" for r in rows["requests"])
    assert not any(e["text"] == ANN_WORDS[2] for e in rows["battle_entries"])  # the open round's entry
    assert await world.core.privacy.forget(ANN) == "I held nothing about you — there was nothing to erase."


async def test_a_forget_survives_a_restart(world: World, tmp_path: Path) -> None:
    await fill(world)
    await world.core.privacy.forget(ANN)
    await world.battles.close()
    await world.storage.close()
    again = await open_world(world.path)
    try:
        async with again.storage.db.execute(
            "SELECT COUNT(*) FROM users WHERE user_id = ?", (ANN.user_id,)
        ) as cur:
            assert (await cur.fetchone())[0] == 0
        assert await again.storage.privacy.forget(ANN.platform, ANN.user_id) == {}
    finally:
        await again.battles.close()
        await again.storage.close()
        world.storage = await Storage.open(world.path)  # the fixture closes one


async def exported(w: World, privacy: PrivacySettings) -> list:  # type: ignore[type-arg]
    return await collect_rows(w.storage, None, privacy)


async def test_opted_out_words_and_ratings_never_reach_the_export(world: World) -> None:
    await fill(world)
    assert "may help train" in await world.core.privacy.privacy_text(ANN)  # the default: opt-out
    assert (await world.core.privacy.set_training(ANN, opted_in=False)).startswith("Done")
    assert "opted out" in await world.core.privacy.privacy_text(ANN)
    rows = await exported(world, PrivacySettings())
    consent = await Consent.load(world.storage, PrivacySettings())
    ann_code = consent.person("telegram", ANN.user_id)
    assert ann_code and all(r.rater != ann_code for r in rows)
    assert not any(r.setup in (ANN_WORDS[0], "Why is the group chat so loud?") for r in rows)
    assert not any(r.punchline == ANN_WORDS[1] for r in rows)
    bob_reply = [r for r in rows if r.kind == "reply" and r.setup == "Why do bees hum?"]
    assert bob_reply == []  # Ann was its only rater: nothing left to learn from
    battle = {r.punchline: r for r in rows if r.kind == "battle"}
    # Ann's round had her own setup: it is hers, so the whole round stays out.
    assert battle == {}
    # Opting back in brings it all back.
    await world.core.privacy.set_training(ANN, opted_in=True)
    rows = await exported(world, PrivacySettings())
    assert any(r.rater == ann_code for r in rows) and any(r.punchline == ANN_WORDS[1] for r in rows)


async def test_with_an_opt_in_default_only_those_who_opted_in_are_exported(world: World) -> None:
    await fill(world)
    privacy = PrivacySettings(training_default="opt-in")
    assert await exported(world, privacy) == []
    await world.core.privacy.set_training(BOB, opted_in=True)
    await world.core.privacy.set_training(ANN, opted_in=True)
    rows = await exported(world, privacy)
    consent = await Consent.load(world.storage, privacy)
    ann, bob = consent.person("telegram", ANN.user_id), consent.person("telegram", BOB.user_id)
    assert {r.rater for r in rows if r.kind == "rating"} == {ann, bob}
    battle = {r.punchline: r for r in rows if r.kind == "battle"}
    assert (battle[ANN_WORDS[1]].funny, battle[ANN_WORDS[1]].raters) == (1, 2)  # Carol never opted in


async def test_a_votes_count_in_the_export_only_from_people_in_training(world: World) -> None:
    await fill(world)
    await world.core.privacy.set_training(CAROL, opted_in=False)
    # Ann's setup would keep the round out: let her in, Carol out.
    rows = [r for r in await exported(world, PrivacySettings()) if r.kind == "battle"]
    ann = next(r for r in rows if r.punchline == ANN_WORDS[1])
    assert (ann.funny, ann.raters) == (1, 2)  # Bob's vote; Carol's is not exported


async def test_retention_purges_exactly_what_is_due(tmp_path: Path) -> None:
    w = await open_world(tmp_path / "bot.db", privacy={"retention_days": 30})
    try:
        await w.ask(GROUP, ANN, "An old setup?", "o1")
        await w.core.ratings.rate(MessageRef(GROUP, "o1"), BOB, Rating.FUNNY)
        w.clock.advance(timedelta(days=20).total_seconds())
        await w.ask(GROUP, BOB, "A newer setup?", "n1")
        w.clock.advance(timedelta(days=11).total_seconds())  # the first is 31 days old, the second 11
        counts = await w.core.privacy.purge()
        assert counts["setups"] == 1 and counts["names"] == 1  # Ann's; Bob was seen 11 days ago
        async with w.storage.db.execute("SELECT text FROM requests ORDER BY id") as cur:
            assert [r[0] for r in await cur.fetchall()] == ["", "A newer setup?"]
        async with w.storage.db.execute("SELECT user_id, name FROM users ORDER BY user_id") as cur:
            assert [tuple(r) for r in await cur.fetchall()] == [(ANN.user_id, ""), (BOB.user_id, "Bob")]
        async with w.storage.db.execute("SELECT COUNT(*) FROM reactions") as cur:
            assert (await cur.fetchone())[0] == 1  # ratings stay
        assert sum((await w.core.privacy.purge()).values()) == 0  # nothing more is due
    finally:
        await w.battles.close()
        await w.storage.close()


async def old_and_new_setups(path: Path) -> None:
    """One setup from long ago (the manual clock's start), one from now."""
    w = await open_world(path)
    try:
        assert datetime.now(UTC) - w.clock.now() > timedelta(days=100)
        await w.ask(GROUP, ANN, "A setup from long ago?", "o1")
        w.clock.advance((datetime.now(UTC) - w.clock.now()).total_seconds())
        await w.ask(GROUP, BOB, "A setup from today?", "n1")
    finally:
        await w.battles.close()
        await w.storage.close()


async def texts_of(path: Path) -> list[str]:
    async with (
        await Storage.open(path) as storage,
        storage.db.execute("SELECT text FROM requests ORDER BY id") as cur,
    ):
        return [r[0] for r in await cur.fetchall()]


def test_punchline_privacy_purge_erases_what_is_due_and_says_so(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bot.db"
    asyncio.run(old_and_new_setups(path))
    assert main(["privacy", "purge", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "older than 90 days: 1 setups, 1 names" in out
    assert asyncio.run(texts_of(path)) == ["", "A setup from today?"]
    assert main(["privacy", "purge", "--db", str(tmp_path / "none.db")]) == 2  # no database: one line


async def test_serve_purges_at_start(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    await old_and_new_setups(path)
    settings = load_settings(storage={"path": str(path)}, telegram={"token": "1:x"})
    front_end = FakeFrontEnd()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_serve(settings, stop, generator=FakeGenerator(), front_ends=front_end.factory)
    )
    await asyncio.wait_for(front_end.started.wait(), 20)
    deadline = time.monotonic() + 20
    while (await texts_of(path))[0] != "":
        assert time.monotonic() < deadline, "serve never purged"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 20)
    assert await texts_of(path) == ["", "A setup from today?"]


async def test_another_one_on_someones_setup_keeps_the_words_theirs(world: World) -> None:
    """Bob presses 🔁 under the answer to Annabel's setup: the new request is Annabel's words,
    so her opt-out keeps it out of the export and her /forget erases it."""
    await world.core.privacy.set_training(ANN, opted_in=False)
    world.core.generator.answer_with("First line.", "First line.", "Second line.")  # type: ignore[attr-defined]
    await world.ask(GROUP, ANN, ANN_WORDS[0], "500")
    again = await world.core.another(MessageRef(GROUP, "500"), BOB)
    assert again is not None and again.rateable and again.text == "Second line."

    rows = await collect_rows(world.storage, None, world.settings.privacy)
    assert not [r for r in rows if r.setup == ANN_WORDS[0]]  # neither reply: both are her words
    await world.core.privacy.forget(ANN)
    async with world.storage.db.execute(
        "SELECT count(*) FROM requests WHERE text = ?", (ANN_WORDS[0],)
    ) as cur:
        row = await cur.fetchone()
    assert row is not None and row[0] == 0
