"""`punchline serve`: wiring, clean shutdown (signals, pending replies), front-end failures."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.battles.service import BattleService
from bot.serve import NoFrontEndError, configured_platforms, run_serve
from bot.types import ReplyKind
from config import PunchlineError
from config.settings import Settings
from tests.fakes.front_end import FakeFrontEnd
from tests.fakes.generator import FakeGenerator

# Generous: each wait ends as soon as its condition holds, so only a failing test waits this long.
WAIT_S = 30.0


async def until(condition: Callable[[], object], what: str) -> None:
    """Wait until `condition()` holds, failing (instead of hanging) after WAIT_S."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.01)


def settings(tmp_path: Path, **kw) -> Settings:
    return Settings(storage={"path": tmp_path / "serve.db"}, telegram={"token": "123:abc"}, **kw)


def test_serve_without_tokens_names_the_variables(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("__TOKEN")}
    result = subprocess.run(  # a clean process: no token in the environment or a .env
        [sys.executable, "-m", "bot.cli", "serve", "--db", str(tmp_path / "x.db")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    err = result.stderr.strip()
    assert "PUNCHLINE_TELEGRAM__TOKEN" in err and "PUNCHLINE_DISCORD__TOKEN" in err
    assert "punchline chat" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.db").exists()  # nothing opened


def test_configured_platforms() -> None:
    assert configured_platforms(Settings()) == []
    assert configured_platforms(Settings(telegram={"token": "  "})) == []
    assert configured_platforms(Settings(telegram={"token": "1:a"}, discord={"token": "x"})) == [
        "telegram",
        "discord",
    ]


async def test_serve_answers_then_stops_cleanly(tmp_path: Path) -> None:
    gen = FakeGenerator(["Served."])
    fe = FakeFrontEnd(["Why serve?"])
    stop = asyncio.Event()
    task = asyncio.create_task(run_serve(settings(tmp_path), stop, generator=gen, front_ends=fe.factory))
    await asyncio.wait_for(fe.started.wait(), WAIT_S)
    await until(lambda: fe.replies, "a reply")
    assert gen.started and not gen.closed
    stop.set()
    await asyncio.wait_for(task, WAIT_S)
    assert fe.stopped and gen.closed
    assert fe.replies[0].kind is ReplyKind.PUNCHLINE
    # Battles come along, sharing the core's storage.
    assert isinstance(fe.battles, BattleService) and fe.battles.storage is fe.core.storage
    with pytest.raises(ValueError):  # the database connection is closed
        await fe.core.storage.db.execute("SELECT 1")
    with sqlite3.connect(tmp_path / "serve.db") as raw:
        assert raw.execute("SELECT text FROM replies").fetchall() == [("Served.",)]


async def test_pending_replies_are_answered_busy_when_the_worker_closes(tmp_path: Path) -> None:
    gen = FakeGenerator(["Too late."])
    gen.block()  # the model never finishes by itself
    fe = FakeFrontEnd(["Why wait?"])
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_serve(settings(tmp_path), stop, generator=gen, front_ends=fe.factory, grace_s=0.2)
    )
    await until(lambda: gen.waiting, "the setup reaching the model")
    stop.set()
    await asyncio.wait_for(task, WAIT_S)
    assert [r.kind for r in fe.replies] == [ReplyKind.BUSY]
    with sqlite3.connect(tmp_path / "serve.db") as raw:
        assert raw.execute("SELECT status, detail FROM requests").fetchall() == [("busy", "WorkerClosed")]


async def test_a_failing_front_end_is_an_error_when_it_is_the_only_one(tmp_path: Path) -> None:
    gen = FakeGenerator()
    fe = FakeFrontEnd(fail=RuntimeError("bad token"))
    with pytest.raises(PunchlineError, match="fake front-end stopped: bad token"):
        await asyncio.wait_for(run_serve(settings(tmp_path), generator=gen, front_ends=fe.factory), WAIT_S)
    assert gen.closed


async def test_one_front_end_failing_at_start_leaves_the_other_serving(tmp_path: Path) -> None:
    """Discord's token rejected must not take Telegram down (it once stopped everything)."""
    gen = FakeGenerator()
    broken = FakeFrontEnd(fail=PunchlineError("Discord rejected the bot token"))
    working = FakeFrontEnd(["Why serve on?"])

    def both(runtime):  # type: ignore[no-untyped-def]
        return [*broken.factory(runtime), *working.factory(runtime)]

    stop = asyncio.Event()
    task = asyncio.create_task(run_serve(settings(tmp_path), stop, generator=gen, front_ends=both))
    await asyncio.wait_for(broken.started.wait(), WAIT_S)
    await asyncio.sleep(0.2)  # the failure is in; the other front-end must still be running
    assert not task.done() and not stop.is_set()
    stop.set()
    with pytest.raises(PunchlineError, match="Discord rejected"):
        await asyncio.wait_for(task, WAIT_S)  # reported once serving ends
    assert working.stopped and [r.kind for r in working.replies] == [ReplyKind.PUNCHLINE]
    assert gen.closed


async def test_sigterm_stops_serve(tmp_path: Path) -> None:
    gen = FakeGenerator()
    fe = FakeFrontEnd()
    task = asyncio.create_task(run_serve(settings(tmp_path), generator=gen, front_ends=fe.factory))
    await asyncio.wait_for(fe.started.wait(), WAIT_S)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, WAIT_S)
    assert fe.stopped and gen.closed
    # The handlers are removed again: the loop no longer owns SIGTERM.
    assert not asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)


async def test_no_front_end_built_is_an_error(tmp_path: Path) -> None:
    gen = FakeGenerator()
    with pytest.raises(NoFrontEndError):
        await run_serve(settings(tmp_path), generator=gen, front_ends=lambda runtime: [])
    assert gen.closed
