"""Challengers end to end on the real in-process worker (over scripted backends), a real SQLite
file and real battle rounds: a registered version is served beside the current one, fielded
in battles, and promoted or retired by the Bradley–Terry rule or an admin's /promote; every
step is recorded, and a promotion survives a restart."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.battles.models import AuthorKind
from bot.battles.service import BattleService
from bot.battles.views import MSG_PROMOTE_REFUSED
from bot.clock import ManualClock
from bot.core.access import Access
from bot.serve import run_serve
from bot.storage import Storage
from bot.storage.versions import CHALLENGER, CURRENT, FORMER, RETIRED
from bot.types import ChatKind, ChatRef, Platform, UserRef
from config.settings import Settings, WorkerSettings, load_settings
from model.generation import GenerationParams
from model.worker import InferenceWorker
from tests.fakes.announcer import FakeAnnouncer
from tests.fakes.backend import FakeBackend, FakeLoader
from tests.fakes.front_end import FakeFrontEnd

GROUP = ChatRef(Platform.TELEGRAM, "-1001", ChatKind.GROUP, "Jokers")
ADMIN = UserRef(Platform.TELEGRAM, "42", "Admin")
PLAYERS = [UserRef(Platform.TELEGRAM, str(n), f"P{n}") for n in range(1, 4)]
MIN_GAMES = 4


@dataclass
class World:
    path: Path
    settings: Settings
    clock: ManualClock
    storage: Storage
    worker: InferenceWorker
    announcer: FakeAnnouncer
    service: BattleService

    @property
    def challengers(self):  # type: ignore[no-untyped-def]
        return self.service.challengers


def make_worker(*versions: str) -> InferenceWorker:
    """The real worker; "adapters/<v>" loads the scripted backend of version <v>."""
    loader = FakeLoader({None: FakeBackend("v1"), **{v: FakeBackend(v) for v in versions}})
    return InferenceWorker(
        loader, GenerationParams(num_candidates=1), WorkerSettings(stats_log_s=0), max_setup_chars=200
    )


async def open_world(tmp_path: Path, *, auto_promote: bool, worker: InferenceWorker | None = None) -> World:
    settings = load_settings(
        battles={"entry_seconds": 60, "vote_seconds": 30, "bot_versions": 2, "resume_grace_s": 0.2},
        telegram={"admin_ids": [42]},
        learning={"auto_promote": auto_promote, "min_games": MIN_GAMES},
    )
    clock = ManualClock(datetime(2026, 6, 1, tzinfo=UTC))
    storage = await Storage.open(tmp_path / "bot.db")
    worker = worker or make_worker("v2", "v3")
    await worker.start()

    service = BattleService(settings, storage, worker, clock, Access(settings), rng=random.Random(5))
    announcer = FakeAnnouncer()
    service.attach(Platform.TELEGRAM, announcer)
    return World(tmp_path / "bot.db", settings, clock, storage, worker, announcer, service)


async def close_world(w: World) -> None:
    await w.service.close()
    await w.worker.close()
    await w.storage.close()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = await open_world(tmp_path, auto_promote=True)
    yield w
    await close_world(w)


async def register(w: World, version: str, parent: str = "v1") -> None:
    assert await w.storage.versions.register(version, f"adapters/{version}", parent, "refresh", w.clock.now())


async def play_round(w: World, n: int, winner: str) -> None:
    """One round: a person enters, two people vote for `winner`'s entry, one for the other
    version's; the round finishes."""
    answer = await w.service.start(GROUP, PLAYERS[0], f"Why did round {n} cross the road?")
    assert answer.ok, answer.text
    await w.service.settle()
    battle = await w.storage.battles.open_in_chat(GROUP.platform, GROUP.chat_id)
    assert battle is not None
    bots = [e for e in await w.storage.battle_entries.entries(battle.id) if e.kind is AuthorKind.BOT]
    assert len(bots) == 2, "both versions play"
    await w.service.entries.submit(battle.id, PLAYERS[0], f"A person's line {n}")
    w.clock.advance(w.settings.battles.entry_seconds)
    await w.service.advance_due()
    ballot = w.announcer.find("vote for the funniest")[-1].view.text.splitlines()
    by_version = {
        v: int(next(line for line in ballot if f" {v} " in line).split(".")[0])
        for v in {e.version for e in bots}
    }
    loser = next(v for v in by_version if v != winner)
    message_id = (await w.storage.battles.get(battle.id)).vote_message_id  # type: ignore[union-attr]
    for voter, version in zip(PLAYERS[1:] + [PLAYERS[0]], [winner, winner, loser]):
        assert (await w.service.vote(GROUP, message_id or "0", by_version[version], voter)).ok
    w.clock.advance(w.settings.battles.vote_seconds)
    await w.service.advance_due()


async def statuses(w: World) -> dict[str, str]:
    return {r.version: r.status for r in await w.storage.versions.all()}


async def test_a_registered_challenger_is_served_fielded_and_promoted_when_it_keeps_winning(
    world: World,
) -> None:
    await register(world, "v2")
    assert await world.challengers.sync() == ["v2"]
    assert world.worker.versions == ("v1", "v2")
    assert await statuses(world) == {"v1": CURRENT, "v2": CHALLENGER}  # the served one is recorded
    for n in range(MIN_GAMES - 1):
        await play_round(world, n, winner="v2")
    assert await world.challengers.review() == []  # 3 of 4 games: no verdict yet
    await play_round(world, MIN_GAMES, winner="v2")

    [decision] = await world.challengers.review()

    assert str(decision.verdict) == "promote" and decision.games == MIN_GAMES
    assert decision.win_probability.low > 0.5
    assert world.worker.versions == ("v2",)  # the former version no longer plays
    assert await statuses(world) == {"v1": FORMER, "v2": CURRENT}
    promoted = [e for e in await world.storage.versions.events("v2") if e.event == "promoted"]
    assert promoted[-1].actor == "auto" and "lower bound above 0.5" in promoted[-1].reason
    stats = await world.service.stats_text(GROUP)
    assert "Version strength (Bradley–Terry, 95% interval):" in stats
    assert stats.index("v2:") < stats.index("v1:") and f"in {MIN_GAMES} games (current)" in stats


async def test_a_challenger_that_keeps_losing_is_retired_and_no_longer_served(tmp_path: Path) -> None:
    world = await open_world(tmp_path, auto_promote=False)  # retiring needs no permission
    try:
        await register(world, "v2")
        await world.challengers.sync()
        for n in range(MIN_GAMES):
            await play_round(world, n, winner="v1")

        [decision] = await world.challengers.review()

        assert str(decision.verdict) == "retire" and decision.win_probability.high < 0.5
        assert world.worker.versions == ("v1",)
        assert (await statuses(world))["v2"] == RETIRED
        assert await world.challengers.sync() == []  # a retired version is not loaded again
        retired = [e for e in await world.storage.versions.events("v2") if e.event == "retired"]
        assert retired[-1].actor == "auto" and "upper bound below 0.5" in retired[-1].reason
    finally:
        await close_world(world)


async def test_without_auto_promote_a_winner_waits_for_an_admins_promote(tmp_path: Path) -> None:
    world = await open_world(tmp_path, auto_promote=False)
    try:
        await register(world, "v2")
        await world.challengers.sync()
        for n in range(MIN_GAMES):
            await play_round(world, n, winner="v2")
        assert await world.challengers.review() == []
        assert world.worker.versions[0] == "v1"

        assert await world.service.promote(GROUP, PLAYERS[0], "v2") == MSG_PROMOTE_REFUSED
        listing = await world.service.promote(GROUP, ADMIN, "")
        assert listing.startswith("v2: promote (beats v1 with probability")
        assert await world.service.promote(GROUP, ADMIN, "v9") == "v9 is not being served (served: v1, v2)."
        text = await world.service.promote(GROUP, ADMIN, " v2 ")

        assert text.startswith("Promoted v2 (was v1): by an admin; the rule said promote")
        assert world.worker.versions[0] == "v2"
        promoted = [e for e in await world.storage.versions.events("v2") if e.event == "promoted"]
        assert promoted[-1].actor == "admin"
    finally:
        await close_world(world)


async def test_a_promotion_survives_a_restart(tmp_path: Path) -> None:
    world = await open_world(tmp_path, auto_promote=False)
    await register(world, "v2")
    await world.challengers.sync()
    await world.service.promote(GROUP, ADMIN, "v2")
    await close_world(world)

    restarted = await open_world(tmp_path, auto_promote=False)  # the worker starts on v1 again
    try:
        assert restarted.worker.versions == ("v1",)
        assert await restarted.challengers.restore() == "v2"
        assert restarted.worker.versions[0] == "v2"
        await restarted.challengers.sync()
        assert (await statuses(restarted))["v2"] == CURRENT  # nothing re-recorded over it
    finally:
        await close_world(restarted)


async def test_a_challenger_that_cannot_be_loaded_is_recorded_once_and_v1_keeps_serving(world: World) -> None:
    await world.storage.versions.register("v7", "adapters/v7", "v1", "refresh", world.clock.now())
    assert await world.challengers.sync() == []
    assert await world.challengers.sync() == []
    failed = [e for e in await world.storage.versions.events("v7") if e.event == "failed"]
    assert len(failed) == 1 and "does not exist" in failed[0].reason
    assert world.worker.versions == ("v1",)
    await play_round_without_versions(world)


async def play_round_without_versions(w: World) -> None:
    """With one version served, the bot plays once per round, as before challengers existed."""
    answer = await w.service.start(GROUP, PLAYERS[0], "Why is one version enough?")
    assert answer.ok
    await w.service.settle()
    battle = await w.storage.battles.open_in_chat(GROUP.platform, GROUP.chat_id)
    assert battle is not None
    bots = [e for e in await w.storage.battle_entries.entries(battle.id) if e.kind is AuthorKind.BOT]
    assert [e.version for e in bots] == ["v1"]


async def test_a_version_holding_another_id_than_registered_is_refused(world: World) -> None:
    # adapters/v3 holds v3, but the registry says v4 lives there (a directory reused by hand).
    await world.storage.versions.register("v4", "adapters/v3", "v1", "refresh", world.clock.now())
    assert await world.challengers.sync() == []
    assert world.worker.versions == ("v1",)
    failed = [e for e in await world.storage.versions.events("v4") if e.event == "failed"]
    assert failed and "holds version v3" in failed[0].reason


async def test_serve_restores_the_promoted_version_and_fields_registered_challengers(tmp_path: Path) -> None:
    """`punchline serve` at start: the recorded promotion is served again, a challenger that
    `punchline refresh` registered meanwhile is loaded beside it."""
    world = await open_world(tmp_path, auto_promote=False)
    await register(world, "v2")
    await world.challengers.sync()
    await world.service.promote(GROUP, ADMIN, "v2")
    await register(world, "v3", parent="v2")  # as a refresh would, while the bot is down
    await close_world(world)

    settings = load_settings(
        storage={"path": str(tmp_path / "bot.db")}, telegram={"token": "1:x", "admin_ids": [42]}
    )
    worker = make_worker("v2", "v3")
    front_end = FakeFrontEnd()
    stop = asyncio.Event()
    task = asyncio.create_task(run_serve(settings, stop, generator=worker, front_ends=front_end.factory))
    try:
        await asyncio.wait_for(front_end.started.wait(), 20)
        deadline = time.monotonic() + 20
        while worker.versions != ("v2", "v3"):
            assert time.monotonic() < deadline, f"serve never loaded the challenger: {worker.versions}"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def test_a_restore_that_fails_at_start_is_retried_and_never_undoes_the_promotion(
    tmp_path: Path,
) -> None:
    world = await open_world(tmp_path, auto_promote=False)
    try:
        versions = world.storage.versions
        await versions.register("v2", "adapters/v2-later", "v1", "refresh", world.clock.now())
        await versions.promote("v2", None, "admin", "promoted before the restart", world.clock.now())
        loader = world.worker._loader  # type: ignore[attr-defined]

        assert await world.challengers.restore() is None  # its directory is not there yet
        await world.challengers.sync()
        assert world.worker.versions == ("v1",)
        record = await versions.current()
        assert record is not None and record.version == "v2"  # the registry still says v2

        loader.backends["v2-later"] = FakeBackend("v2")  # the directory is back (a mount, say)
        await world.challengers.sync()
        assert world.worker.versions == ("v2",)
    finally:
        await close_world(world)
