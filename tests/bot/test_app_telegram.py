"""`run_serve` with the real Telegram front-end (python-telegram-bot over HTTP) against the fake
Bot API server on loopback: the wiring of storage, worker, core, battles and front-end, and a
clean stop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from bot.serve import run_serve
from config.settings import load_settings
from tests.fakes.generator import FakeGenerator
from tests.fakes.telegram_api import WAIT_TIMEOUT_S, FakeBotAPI

PUNCHLINE = "Because serve wires everything."


async def poll(db: Path, sql: str, timeout: float = WAIT_TIMEOUT_S) -> list[tuple]:
    """The rows of `sql` once there are any (effects land a moment after an update)."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(db) as raw:
            rows = raw.execute(sql).fetchall()
        if (rows and rows[0][0] is not None) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)


async def test_serve_runs_telegram_end_to_end(tmp_path: Path) -> None:
    db = tmp_path / "serve.db"
    gen = FakeGenerator([PUNCHLINE], version="v9")
    async with FakeBotAPI() as api:
        settings = load_settings(
            telegram={
                "token": api.token,
                "base_url": api.base_url,
                "base_file_url": api.base_file_url,
                "poll_timeout": 1,
                "send_retry_delay": 0.05,
                "typing_interval": 0.2,
            },
            storage={"path": str(db)},
        )
        stop = asyncio.Event()
        task = asyncio.create_task(run_serve(settings, stop, generator=gen, grace_s=2))
        await api.wait_for("getUpdates")
        alice = api.user(1001, "Alice")
        asked = api.push_message(api.private_chat(alice), alice, "Why does serve exist?")
        sent = await api.wait_for("sendMessage", lambda c: c.replies_to(asked))
        assert PUNCHLINE in sent.params["text"]
        # The core links the reply to its message id just after sendMessage returns.
        assert await poll(db, "SELECT message_id FROM replies") == [(str(sent.result["message_id"]),)]
        api.push_reaction(sent.result, alice, new=["🤣"])
        assert await poll(db, "SELECT funniness FROM reactions") == [(1,)]
        stop.set()
        await asyncio.wait_for(task, WAIT_TIMEOUT_S)

    assert gen.started and gen.closed
    with sqlite3.connect(db) as raw:
        assert raw.execute(
            "SELECT q.text, r.text, r.version, r.message_id IS NOT NULL FROM replies r "
            "JOIN requests q ON q.id = r.request_id"
        ).fetchall() == [("Why does serve exist?", PUNCHLINE, "v9", 1)]
