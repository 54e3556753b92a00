"""The learning loop docs/DESIGN.md promises (decision 12), end to end on the tiny T5: a scripted
chat and battles fill a real database; `punchline refresh` refuses while there is too little new
feedback, then exports, aligns from the serving adapter, gates and registers a challenger; a
second refresh right after finds nothing new. (How a challenger then plays, wins and is
promoted: tests/battles/test_challengers.py.)"""

from __future__ import annotations

import asyncio
import csv
import random
from contextlib import redirect_stdout
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest

from bot.battles.service import BattleService
from bot.cli import main
from bot.clock import ManualClock
from bot.core.access import Access
from bot.core.service import BotCore
from bot.storage import Storage
from bot.storage.versions import CHALLENGER
from bot.types import ChatKind, ChatRef, IncomingSetup, MessageRef, Platform, Rating, UserRef
from config.settings import load_settings
from model.adapter_meta import AdapterMetadata
from tests.fakes.adapters import make_adapter
from tests.fakes.announcer import FakeAnnouncer
from tests.fakes.generator import FakeGenerator

pytestmark = pytest.mark.shared_data

CHATS = [ChatRef(Platform.TELEGRAM, f"-10{c}", ChatKind.GROUP, f"Group {c}") for c in range(6)]
PEOPLE = [UserRef(Platform.TELEGRAM, str(i), f"user{i}") for i in range(1, 16)]
GOOD, BAD = "A gummy bear, chewing it over.", "No idea."


def corpus(path: Path, rows: int = 120) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ID", "Question", "Answer"])
        writer.writerows(
            [str(i), f"Why is the number {i} so odd?", f"Because {i} ate nine."] for i in range(rows)
        )
    return path


async def scripted_chat(path: Path, start: datetime, replies: int = 36, rounds: int = 12) -> None:
    """People ask in six groups and rate (the good line funny, the bad one not), then play
    battles in which a person's good line beats the bot's bad one."""
    settings = load_settings(battles={"entry_seconds": 60, "vote_seconds": 30, "resume_grace_s": 0.1})
    clock = ManualClock(start)
    gen = FakeGenerator(version="v-parent")
    async with await Storage.open(path) as storage:
        core = BotCore(settings, storage, gen, clock)
        for n in range(replies):
            chat, good = CHATS[n % len(CHATS)], n % 2 == 0
            gen.answer_with(f"{GOOD} ({n})" if good else f"{BAD} ({n})")
            asker = PEOPLE[n % len(PEOPLE)]
            reply = await core.handle_setup(IncomingSetup(chat, asker, f"What do you call bear {n}?", True))
            assert reply is not None and reply.reply_id is not None
            ref = MessageRef(chat, str(1000 + n))
            await core.reply_sent(reply.reply_id, ref)
            for k in range(1, 4):
                rater = PEOPLE[(n + k) % len(PEOPLE)]
                await core.ratings.rate(ref, rater, Rating.FUNNY if good else Rating.MEH)
            clock.advance(60)

        service = BattleService(settings, storage, gen, clock, Access(settings), rng=random.Random(1))
        announcer = FakeAnnouncer()
        service.attach(Platform.TELEGRAM, announcer)
        gen.answer_with(BAD)
        for r in range(rounds):
            chat = CHATS[r % len(CHATS)]
            author, voters = PEOPLE[r % 15], [PEOPLE[(r + k) % 15] for k in range(1, 4)]
            assert (await service.start(chat, author, f"Why did bear {r} battle?")).ok
            await service.settle()
            battle = await storage.battles.open_in_chat(chat.platform, chat.chat_id)
            assert battle is not None
            await service.entries.submit(battle.id, author, f"{GOOD} [{r}]")
            clock.advance(60)
            await service.advance_due()
            ballot = announcer.find("vote for the funniest")[-1].view.text.splitlines()
            mine = int(next(line for line in ballot if line.endswith(f"[{r}]")).split(".")[0])
            message = (await storage.battles.get(battle.id)).vote_message_id  # type: ignore[union-attr]
            for voter in voters:
                assert (await service.vote(chat, message or "0", mine, voter)).ok
            clock.advance(30)
            await service.advance_due()
        await service.close()


def run_cli(args: list[str]) -> tuple[int, str]:
    buffer = StringIO()
    with redirect_stdout(buffer):
        code = main(args)
    return code, buffer.getvalue()


def refresh_args(db: Path, parent: Path, data: Path, base: Path, work: Path, *extra: str) -> list[str]:
    return [
        "refresh",
        "--db",
        str(db),
        "--adapter",
        str(parent),
        "--data",
        str(data),
        "--base-model",
        str(base),
        "--work-dir",
        str(work),
        "--max-steps",
        "8",
        "--batch-size",
        "8",
        "--lr",
        "2e-3",
        "--min-examples",
        "8",
        "--gate-limit",
        "8",
        "--gate-tolerance",
        "1",
        "--max-loss-increase",
        "10",
        "--max-source-length",
        "32",
        "--max-target-length",
        "16",
        "--eval-samples",
        "0",
        "--no-progress",
        *extra,
    ]


def test_refresh_exports_aligns_gates_and_registers_a_challenger_then_waits_for_new_feedback(
    tiny_base_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    torch.set_num_threads(1)
    db, work = tmp_path / "bot.db", tmp_path / "refresh"
    asyncio.run(scripted_chat(db, datetime(2026, 3, 1, tzinfo=UTC)))
    parent = make_adapter(tiny_base_model, tmp_path / "parent", "v-parent", seed=1)
    data = corpus(tmp_path / "jokes.csv")
    args = refresh_args(db, parent, data, tiny_base_model, work)

    # 108 ratings and 36 votes so far: below --min-new, nothing is done.
    assert main([*args, "--min-new", "1000"]) == 3
    err = capsys.readouterr().err
    assert "not enough new feedback so far: 108 ratings and 36 battle votes, --min-new is 1000" in err
    assert not work.exists()

    code, out = run_cli(args)

    assert code == 0, out
    [run_dir] = work.iterdir()
    assert (run_dir / "feedback.jsonl").is_file()
    meta = AdapterMetadata.load(run_dir / "adapter")
    assert meta.parent_version == "v-parent" and meta.method in ("dpo", "kto")
    assert meta.gate is not None and meta.gate.passed
    assert f"challenger {meta.version} registered" in out and "/promote" in out
    record = asyncio.run(_version(db, meta.version))
    assert record is not None and record.status == CHALLENGER and record.parent == "v-parent"
    assert Path(record.path) == (run_dir / "adapter").resolve()

    # Right after, nothing new arrived: refused with the counts since the last refresh.
    assert main(args) == 3
    assert "not enough new feedback since the last refresh" in capsys.readouterr().err
    code, listing = run_cli(["versions", "--db", str(db), "--events"])
    assert code == 0 and f"{meta.version}: challenger, from v-parent" in listing
    assert "registered by refresh" in listing


async def _version(db: Path, version: str):  # type: ignore[no-untyped-def]
    async with await Storage.open(db) as storage:
        return await storage.versions.get(version)


def test_refresh_without_a_database_or_parent_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = corpus(tmp_path / "jokes.csv", rows=10)
    assert main(["refresh", "--db", str(tmp_path / "none.db"), "--data", str(data)]) == 2
    assert "no database at" in capsys.readouterr().err
    db = tmp_path / "bot.db"
    asyncio.run(scripted_chat(db, datetime(2026, 3, 1, tzinfo=UTC), replies=4, rounds=0))
    assert main(["refresh", "--db", str(db), "--data", str(data), "--min-new", "0"]) == 2
    assert "no serving adapter to start from: pass --adapter DIR" in capsys.readouterr().err
