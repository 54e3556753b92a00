"""The setup pool read from data files, the export rows of finished rounds and the /stats text."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest

from bot.battles.export import battle_rows
from bot.battles.models import AuthorKind, RefusalReason, SetupSource
from bot.battles.pool import SetupPool, SetupPoolError
from bot.battles.service import BattleService
from bot.clock import ManualClock
from bot.core.access import Access
from bot.export.collect import collect_rows
from bot.export.consent import Consent
from bot.storage import Storage
from bot.types import ChatKind, ChatRef, Platform, UserRef
from config.settings import PrivacySettings, load_settings
from tests.fakes.announcer import FakeAnnouncer
from tests.fakes.generator import FakeGenerator, VersionedGenerator

GROUP = ChatRef(Platform.DISCORD, "555", ChatKind.GROUP, "general")
ALICE = UserRef(Platform.DISCORD, "1", "Alice")
BOB = UserRef(Platform.DISCORD, "2", "Bob")
CAROL = UserRef(Platform.DISCORD, "3", "Carol")
DAVE = UserRef(Platform.DISCORD, "4", "Dave")


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = ["ID,Question,Answer"] + [f'{i},"{q}","{a}"' for i, (q, a) in enumerate(rows, 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_pool_reads_a_qa_csv_and_drops_what_cannot_play(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "jokes.csv",
        [
            ("Why is six afraid of seven?", "Because seven ate nine."),
            ("  Why is six   afraid of seven? ", "A repeat with another answer."),
            ("What is " + "very " * 100 + "long?", "Too long a setup."),
            ("What has no classic?", "x" * 300),
            ("", "No question at all."),
        ],
    )
    pool = SetupPool(path, max_setup_chars=300, max_entry_chars=200)
    setups = pool.load()
    assert [(s.setup, s.punchline) for s in setups] == [
        ("Why is six afraid of seven?", "Because seven ate nine."),
        ("What has no classic?", None),  # the answer is too long to be an entry
    ]
    assert pool.lookup("why is SIX afraid of seven") is setups[0]


def test_pool_reads_any_supported_format(tmp_path: Path) -> None:
    path = tmp_path / "reddit.json"
    path.write_text(
        json.dumps(
            [
                {
                    "title": "What do you call a bear with no teeth?",
                    "body": "A gummy bear.",
                    "id": "a1",
                    "score": 10,
                }
            ]
        )
    )
    [setup] = SetupPool(path).load()
    assert setup.setup == "What do you call a bear with no teeth?" and setup.punchline == "A gummy bear."


def test_pool_picks_fresh_setups_and_repeats_only_when_all_are_recent(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "jokes.csv", [("One?", "1"), ("Two?", "2"), ("Three?", "3")])
    pool = SetupPool(path)
    rng = random.Random(0)
    keys = {s.key for s in pool.load()}
    for _ in range(20):
        picked = pool.pick({"one", "two"}, rng)
        assert picked is not None and picked.setup == "Three?"
    assert pool.pick(keys, rng) is not None  # everything used recently: still a game
    assert SetupPool(None).pick(set(), rng) is None


def test_a_missing_setup_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SetupPoolError, match="PUNCHLINE_BATTLES__SETUPS"):
        SetupPool(tmp_path / "missing.csv").load()


@pytest.mark.shared_data
def test_pool_from_the_real_kaggle_set(kaggle_csv: Path) -> None:
    pool = SetupPool(kaggle_csv)
    setups = pool.load()
    assert len(setups) > 30_000  # 38,269 rows less repeats and overlong questions
    assert all(len(s.setup) <= 300 for s in setups)
    assert all(s.punchline is None or len(s.punchline) <= 200 for s in setups)
    matt = pool.lookup("What do you call a person who is outside a door and has no arms nor legs?")
    assert matt is not None and matt.punchline == "Matt"


async def test_missing_setup_file_refuses_the_round_kindly(tmp_path: Path, storage: Storage) -> None:
    settings = load_settings(battles={"setups": str(tmp_path / "missing.csv")})
    service = BattleService(settings, storage, FakeGenerator(), ManualClock(), Access(settings))
    service.attach(Platform.DISCORD, FakeAnnouncer())
    answer = await service.start(GROUP, ALICE, None)
    assert not answer.ok and answer.reason is RefusalReason.NO_SETUP and "/battle" in answer.text
    await service.close()


async def test_export_rows_and_stats_of_finished_rounds(tmp_path: Path, storage: Storage) -> None:
    path = write_csv(tmp_path / "jokes.csv", [("Why is six afraid of seven?", "Because seven ate nine.")])
    settings = load_settings(battles={"setups": str(path), "entry_seconds": 10, "vote_seconds": 10})
    clock = ManualClock()
    service = BattleService(settings, storage, VersionedGenerator(("v2", "v1")), clock, Access(settings))
    announcer = FakeAnnouncer()
    service.attach(Platform.DISCORD, announcer)
    assert await service.stats_text(GROUP) == ""  # nothing to show yet
    assert (await service.start(GROUP, ALICE, None)).ok
    await service.settle()
    [battle] = await storage.battles.open_battles()
    assert (await service.entries.submit(battle.id, ALICE, "Seven is a registered six offender")).ok
    clock.advance(10)
    await service.advance_due()
    entries = {e.text: e for e in await storage.battle_entries.entries(battle.id)}
    voting = await storage.battles.get(battle.id)
    assert voting is not None and voting.vote_message_id is not None
    ballot = voting.vote_message_id
    await service.vote(GROUP, ballot, entries["Seven is a registered six offender"].position, BOB)  # type: ignore[arg-type]
    await service.vote(GROUP, ballot, entries["Seven is a registered six offender"].position, DAVE)  # type: ignore[arg-type]
    await service.vote(GROUP, ballot, entries["v1 says: because reasons"].position, CAROL)  # type: ignore[arg-type]
    clock.advance(10)
    await service.advance_due()
    await service.close()

    rows = await storage.battle_results.export_rows()
    assert {(r.author_kind, r.version, r.votes, r.points, r.won) for r in rows} == {
        (AuthorKind.PERSON, None, 2, 767, True),
        (AuthorKind.BOT, "v1", 1, 333, False),
        (AuthorKind.BOT, "v2", 0, 0, False),
        (AuthorKind.CLASSIC, None, 0, 0, False),
    }
    assert all(r.setup == "Why is six afraid of seven?" and r.setup_source is SetupSource.POOL for r in rows)
    assert await storage.battle_results.export_rows(since=clock.now() + timedelta(seconds=1)) == []

    exported = {r.punchline: r for r in await collect_rows(storage, None) if r.kind == "battle"}
    assert set(exported) == {e for e in entries}
    person = exported["Seven is a registered six offender"]
    assert (person.version, person.funny, person.not_funny, person.raters) == ("human", 2, 1, 3)
    assert (person.author_kind, person.won, person.points) == ("person", True, 767)
    assert exported["v1 says: because reasons"].author_kind == "bot"
    assert person.funniness == pytest.approx(2 / 3, abs=1e-4) and person.setup == rows[0].setup
    assert exported["Because seven ate nine."].version == "classic"
    assert exported["v2 says: because reasons"].funniness == 0.0
    # the bot's entry is a rated reply too: Carol's vote counted as "funny"
    consent = await Consent.load(storage, PrivacySettings())
    replies = {r.punchline: r for r in await battle_rows(storage, None, consent) if r.kind == "battle"}
    assert replies.keys() == exported.keys()
    reply_rows = [r for r in await collect_rows(storage, None) if r.kind == "reply"]
    assert [(r.punchline, r.funny, r.setup) for r in reply_rows] == [
        ("v1 says: because reasons", 1, "Why is six afraid of seven?")
    ]

    stats = await service.stats_text(GROUP)
    assert "people won 1, the bot won 0, 0 tied" in stats
    assert stats.index("v1:") < stats.index("v2:")  # v1 beat v2 (1 vote to 0)
