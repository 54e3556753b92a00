"""`punchline ratings export`: one row per rated reply, JSON lines or CSV, --since, --output."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.clock import ManualClock
from bot.core.service import BotCore
from bot.export.collect import collect_rows
from bot.export.replies import reply_rows
from bot.export.rows import ExportError, ExportRow, parse_since, write_rows
from bot.storage import Storage
from bot.types import ChatKind, ChatRef, IncomingSetup, MessageRef, Platform, Rating, UserRef
from config.settings import Settings
from tests.fakes.generator import FakeGenerator

GROUP = ChatRef(Platform.DISCORD, "900", ChatKind.GROUP)
CHANNEL = ChatRef(Platform.TELEGRAM, "-5", ChatKind.CHANNEL)
ANN = UserRef(Platform.DISCORD, "1", "Ann")
BOB = UserRef(Platform.DISCORD, "2", "Bob")


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    """A database with three replies: two rated (one on Jan 1, one on Feb 1), one not."""
    path = tmp_path / "bot.db"
    clock = ManualClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    gen = FakeGenerator(version="v1")
    async with await Storage.open(path) as storage:
        core = BotCore(Settings(), storage, gen, clock)
        gen.answer_with('He said "stop", then, ok')  # quotes and commas survive CSV
        r1 = await core.handle_setup(IncomingSetup(GROUP, ANN, "Why, oh why?", True))
        await core.reply_sent(r1.reply_id, MessageRef(GROUP, "m1"))
        await core.ratings.add_reaction(MessageRef(GROUP, "m1"), ANN, "😂")
        await core.ratings.rate(MessageRef(GROUP, "m1"), BOB, Rating.INAPPROPRIATE)
        await core.handle_setup(IncomingSetup(GROUP, BOB, "Unrated?", True))
        clock.advance(31 * 24 * 3600)
        gen.version = "v2"
        gen.answer_with("Second")
        r3 = await core.handle_setup(IncomingSetup(CHANNEL, ANN, "Channel setup?", True))
        await core.reply_sent(r3.reply_id, MessageRef(CHANNEL, "c1"))
        await core.ratings.set_reaction_counts(MessageRef(CHANNEL, "c1"), {"🤣": 2, "😐": 1})
    return path


def test_jsonl_to_stdout(db: Path, capsys) -> None:
    assert main(["ratings", "export", "--db", str(db)]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert "exported 4 rows (2 rating, 2 reply)" in captured.err
    assert [(r["kind"], r["setup"]) for r in rows] == [
        ("reply", "Why, oh why?"),
        ("rating", "Why, oh why?"),
        ("rating", "Why, oh why?"),
        ("reply", "Channel setup?"),  # anonymous channel counts: no rating rows
    ]
    first, ann, bob, second = rows
    chat = first.pop("chat")
    assert len(chat) == 16 and first.pop("rater") == ""
    assert first == {
        "kind": "reply",
        "id": 1,
        "created_at": "2026-01-01T12:00:00+00:00",
        "setup": "Why, oh why?",
        "punchline": 'He said "stop", then, ok',
        "version": "v1",
        "platform": "discord",
        "funniness": 1.0,
        "appropriateness": 0.5,
        "funny": 1,
        "not_funny": 0,
        "inappropriate": 1,
        "raters": 2,
        "author_kind": "bot",
        "battle_id": None,
        "points": None,
        "won": None,
    }
    # One row per person's verdict, under a salted code: never the platform id.
    assert {(r["rater"], r["funniness"], r["appropriateness"]) for r in (ann, bob)} == {
        (ann["rater"], 1.0, 1.0),
        (bob["rater"], 0.0, 0.0),
    }
    assert ann["rater"] != bob["rater"] and ann["chat"] == bob["chat"] == chat
    assert all(len(r["rater"]) == 16 and r["rater"] not in ("1", "2") for r in (ann, bob))
    assert (
        second["version"],
        second["platform"],
        second["funny"],
        second["not_funny"],
        second["raters"],
    ) == ("v2", "telegram", 2, 1, 3)
    assert second["funniness"] == pytest.approx(1 / 3, abs=1e-4)


def test_csv_to_a_file_with_since(db: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ratings.csv"
    assert (
        main(
            [
                "ratings",
                "export",
                "--db",
                str(db),
                "--format",
                "csv",
                "--since",
                "2026-01-15",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["setup"] for r in rows] == ["Channel setup?"]
    assert rows[0]["appropriateness"] == "1.0" and rows[0]["raters"] == "3"
    assert capsys.readouterr().out == ""

    assert main(["ratings", "export", "--db", str(db), "--format", "csv", "-o", str(out)]) == 0
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["punchline"] == 'He said "stop", then, ok'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "--since 'last tuesday' is not a date"),
        (["--db", "/nonexistent/dir/x.db"], "no database at /nonexistent/dir/x.db"),
        (["--output", "/nonexistent/dir/out.jsonl"], "cannot write /nonexistent/dir/out.jsonl"),
    ],
)
def test_bad_arguments_are_one_line_errors(db: Path, args, message, capsys) -> None:
    argv = ["ratings", "export", *(["--db", str(db)] if "--db" not in args else []), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_since_parsing() -> None:
    assert parse_since("2026-02-01") == datetime(2026, 2, 1, tzinfo=UTC)
    assert parse_since("2026-02-01T10:30:00+02:00") == datetime(2026, 2, 1, 8, 30, tzinfo=UTC)
    assert parse_since(None) is None
    with pytest.raises(ExportError):
        parse_since("01/02/2026")


async def test_extra_row_sources_plug_in(db: Path) -> None:
    async def battle_rows(storage: Storage, since: datetime | None, consent: object) -> list[ExportRow]:
        return [
            ExportRow(
                "battle",
                7,
                "2026-01-02T00:00:00+00:00",
                "Setup",
                "Entry",
                "human",
                "telegram",
                0.5,
                None,
                1,
                0,
                0,
                2,
            )
        ]

    async with await Storage.open(db) as storage:
        rows = await collect_rows(storage, None, sources=[reply_rows, battle_rows])
    assert [r.kind for r in rows] == ["reply", "rating", "rating", "reply", "battle"]
    out = io.StringIO()
    write_rows(rows, "csv", out)
    assert out.getvalue().splitlines()[-1].endswith(",0.5,,1,0,0,2,bot,,,,,")
