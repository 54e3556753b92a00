"""`punchline serve` with a broker: the Telegram bot on the real python-telegram-bot stack
against the fake Bot API, its punchlines made by a `punchline worker` in another process, and
two serve processes sharing one token (one polls; the other takes over when it dies)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.serve import run_serve
from config.settings import load_settings
from tests.bot.test_app_telegram import poll
from tests.fakes.redis_server import RedisServer
from tests.fakes.telegram_api import WAIT_TIMEOUT_S, FakeBotAPI
from tests.model.test_broker import adapter_dir
from tests.model.test_broker_fleet import Workers

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def telegram_env(api: FakeBotAPI) -> dict[str, object]:
    return {
        "token": api.token,
        "base_url": api.base_url,
        "base_file_url": api.base_file_url,
        "poll_timeout": 1,
        "send_retry_delay": 0.05,
        "typing_interval": 0.2,
    }


async def test_telegram_end_to_end_with_the_worker_in_another_process(
    redis_server: RedisServer, broker_namespace: str, tmp_path: Path
) -> None:
    workers = Workers(redis_server.url, broker_namespace, tmp_path)
    workers.start("gpu-1", adapter_dir(tmp_path, "v1"))
    db = tmp_path / "serve.db"
    try:
        async with FakeBotAPI() as api:
            settings = load_settings(
                telegram=telegram_env(api),
                storage={"path": str(db)},
                broker={
                    "url": redis_server.url,
                    "namespace": broker_namespace,
                    "heartbeat_s": 0.2,
                    "worker_ttl_s": 1,
                },
                model={"candidates": 1},
            )
            stop = asyncio.Event()
            task = asyncio.create_task(run_serve(settings, stop, grace_s=2))
            await api.wait_for("getUpdates")
            alice = api.user(1001, "Alice")
            chat = api.private_chat(alice)
            deadline = time.monotonic() + WAIT_TIMEOUT_S
            while True:  # the bot may start before it sees the worker: it then says "busy"
                asked = api.push_message(chat, alice, "Why does the fleet exist?")
                sent = await api.wait_for("sendMessage", lambda c: c.replies_to(asked))
                if sent.params["text"].startswith("punch 0 v1"):
                    break
                assert time.monotonic() < deadline, sent.params["text"]
                await asyncio.sleep(0.3)
            # The core links the reply to its message id just after sendMessage returns.
            assert await poll(db, "SELECT message_id, version FROM replies") == [
                (str(sent.result["message_id"]), "v1")
            ]
            api.push_reaction(sent.result, alice, new=["🤣"])
            assert await poll(db, "SELECT funniness FROM reactions") == [(1,)]
            stop.set()
            await asyncio.wait_for(task, WAIT_TIMEOUT_S)
    finally:
        workers.stop_all()


def start_serve(name: str, api: FakeBotAPI, url: str, namespace: str, root: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUNCHLINE_")}
    for key, value in telegram_env(api).items():
        env[f"PUNCHLINE_TELEGRAM__{key.upper()}"] = str(value)
    env.update(
        PUNCHLINE_BROKER__URL=url,
        PUNCHLINE_BROKER__NAMESPACE=namespace,
        PUNCHLINE_BROKER__POLL_LEASE_S="1.5",
        PUNCHLINE_STORAGE__PATH=str(root / f"{name}.db"),
        PUNCHLINE_MODEL__CANDIDATES="1",
        PYTHONUNBUFFERED="1",
    )
    log = (root / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT
    )


async def until_logged(root: Path, names: list[str], pattern: str, timeout: float = WAIT_TIMEOUT_S) -> str:
    """The first of `names` whose log shows `pattern`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in names:
            if re.search(pattern, (root / f"{name}.log").read_text(errors="replace")):
                return name
        await asyncio.sleep(0.1)
    raise AssertionError(f"no process logged {pattern!r}")


async def test_two_serve_processes_with_one_token_poll_one_at_a_time(
    redis_server: RedisServer, broker_namespace: str, tmp_path: Path
) -> None:
    workers = Workers(redis_server.url, broker_namespace, tmp_path)
    workers.start("gpu-1", adapter_dir(tmp_path, "v1"))
    serves: dict[str, subprocess.Popen[bytes]] = {}
    try:
        async with FakeBotAPI() as api:
            for name in ("serve-a", "serve-b"):
                serves[name] = start_serve(name, api, redis_server.url, broker_namespace, tmp_path)
            poller = await until_logged(tmp_path, list(serves), r"is polling")
            other = next(n for n in serves if n != poller)
            await until_logged(tmp_path, [other], r"waiting to take over")
            await asyncio.sleep(2.0)  # several long polls
            assert api.max_open_polls == 1  # never two getUpdates consumers at once
            os.kill(serves[poller].pid, signal.SIGKILL)
            started = time.monotonic()
            assert await until_logged(tmp_path, [other], r"is polling") == other
            assert time.monotonic() - started < 10  # took over within seconds
            alice = api.user(1001, "Alice")
            asked = api.push_message(api.private_chat(alice), alice, "Who answers now?")
            sent = await api.wait_for("sendMessage", lambda c: c.replies_to(asked))
            assert sent.params["text"].startswith("punch 0 v1")
            assert api.max_open_polls == 1
            serves[other].send_signal(signal.SIGTERM)
            assert serves[other].wait(30) == 0
    finally:
        for process in serves.values():
            if process.poll() is None:
                process.kill()
            process.wait(10)
        workers.stop_all()
    with sqlite3.connect(tmp_path / f"{other}.db") as raw:
        assert raw.execute("SELECT COUNT(*) FROM replies").fetchone() == (1,)
