"""`punchline chat`: the console REPL over the real core and a real SQLite file."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.console.chat import run_chat
from config.settings import Settings
from model.types import WorkerBusy
from tests.fakes.generator import FakeGenerator

ROOT = Path(__file__).resolve().parents[2]


async def chat(tmp_path: Path, typed: str, generator: FakeGenerator | None = None) -> tuple[str, Path]:
    db = tmp_path / "chat.db"
    settings = Settings(storage={"path": db})
    out = io.StringIO()
    status = await run_chat(
        settings,
        io.StringIO(typed),
        out,
        generator=generator or FakeGenerator(["Because it was there."]),
        clock=ManualClock(),
        user_name="tester",
    )
    assert status == 0
    return out.getvalue(), db


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as raw:
        return raw.execute(sql).fetchall()


async def test_a_setup_is_answered_and_rated_from_the_keyboard(tmp_path: Path) -> None:
    out, db = await chat(tmp_path, "Why did the mountain climb?\nf\n/stats\n/quit\n")
    assert "bot> Because it was there." in out
    assert "Noted: funny 🤣" in out
    assert "1 replies, 1 rated, 1 ratings" in out and "Bye!" in out
    assert rows(
        db,
        "SELECT q.text, r.text, r.version, r.message_id FROM replies r JOIN requests q ON q.id = r.request_id",
    ) == [("Why did the mountain climb?", "Because it was there.", "base", "1")]
    assert rows(
        db,
        "SELECT u.platform, u.user_id, x.source, x.rating, x.funniness FROM reactions x JOIN users u ON u.id = x.user_pk",
    ) == [("console", "tester", "button", "funny", 1)]


async def test_skipping_a_rating_and_typing_the_next_setup_instead(tmp_path: Path) -> None:
    out, db = await chat(tmp_path, "Why one?\n\nWhy two?\nWhy three?\ni\n")  # ends at EOF
    assert out.count("bot> Because it was there.") == 3
    assert "Noted: inappropriate" in out
    assert rows(db, "SELECT COUNT(*) FROM requests") == [(3,)]
    assert rows(db, "SELECT reply_id, rating FROM reactions") == [(3, "inappropriate")]


async def test_commands_and_refusals(tmp_path: Path) -> None:
    out, _ = await chat(tmp_path, "/help\n/frobnicate\n🤣🤣\n\n/quit\nnever read\n")
    assert "Type a joke setup" in out and "/stats" in out
    assert "Unknown command /frobnicate" in out
    assert "I need some words" in out
    assert "never read" not in out


async def test_a_busy_worker_is_said_kindly(tmp_path: Path) -> None:
    gen = FakeGenerator(["Fine."])
    gen.fail_next(WorkerBusy("full"))
    out, _ = await chat(tmp_path, "Why?\nWhy now?\n", gen)
    assert "busy right now" in out and "bot> Fine." in out


@pytest.mark.slow
def test_punchline_chat_end_to_end_with_a_tiny_model(tiny_base_model: Path, tmp_path: Path) -> None:
    """The real command, the real worker and a tiny T5 with the real tokenizer."""
    pytest.importorskip("model.worker", reason="the inference worker (model helper) is not in yet")
    db = tmp_path / "e2e.db"
    env = dict(
        os.environ,
        PUNCHLINE_MODEL__DEVICE="cpu",
        PUNCHLINE_MODEL__BACKEND="transformers",
        PUNCHLINE_MODEL__MAX_NEW_TOKENS="8",
        PUNCHLINE_MODEL__CANDIDATES="1",
        PUNCHLINE_WORKER__THREADS="1",
        PUNCHLINE_WORKER__TIMEOUT_S="120",
        PUNCHLINE_MODEL__CACHE_DIR=str(tmp_path / "cache"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--base-model", str(tiny_base_model), "--db", str(db)],
        input=f"Why did the chicken cross the road?\nf\n/stats\n/reload {tmp_path / 'no-adapter'}\n/quit\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "Loading weights" not in result.stderr  # no progress bars in the chat unless -v
    assert f"Could not load {tmp_path / 'no-adapter'}: " in result.stdout
    assert "still serving base." in result.stdout
    ((reply_text, version),) = rows(db, "SELECT text, version FROM replies")
    assert f"bot> {reply_text}" in result.stdout
    assert version == "base"  # no adapter: the base model's version id
    assert rows(db, "SELECT rating FROM reactions") == [("funny",)]
    assert "1 replies, 1 rated, 1 ratings" in result.stdout


def test_punchline_chat_with_a_missing_model_is_a_one_line_error(tmp_path: Path) -> None:
    pytest.importorskip("model.worker", reason="the inference worker (model helper) is not in yet")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "chat",
            "--base-model",
            str(tmp_path / "nope"),
            "--db",
            str(tmp_path / "c.db"),
        ],
        input="Why?\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env=dict(os.environ, PUNCHLINE_MODEL__DEVICE="cpu"),
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("punchline chat: error:") and str(tmp_path / "nope") in line
