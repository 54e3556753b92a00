"""The rows of `punchline ratings export` and how they are written (JSON lines or CSV).

One `ExportRow` per rated reply (kind "reply") and per person's verdict on it (kind "rating",
both `bot.export.replies`), and one per entry of a finished battle (kind "battle",
`bot.battles.export`); all build on this module. People and chats appear only as salted codes
(`bot.export.consent`), and only people who allow it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, TextIO

from bot.storage import Storage
from config.errors import PunchlineError

if TYPE_CHECKING:
    from bot.export.consent import Consent

FORMATS = ("jsonl", "csv")


class ExportError(PunchlineError):
    """Bad export arguments (format, date)."""


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One exported example. Scores: funniness in [-1, 1], appropriateness in [0, 1]."""

    kind: str  # "reply" (rated bot reply); other sources add their own kinds ("battle")
    id: int  # the reply id (or the source's own id)
    created_at: str  # ISO-8601 UTC
    setup: str
    punchline: str
    version: str  # adapter version that made the punchline ("human" for people's entries)
    platform: str
    funniness: float | None
    appropriateness: float | None
    funny: int  # raters (people + anonymous reactions) who found it funny
    not_funny: int
    inappropriate: int
    raters: int
    author_kind: str = "bot"  # who wrote the punchline: bot, person or classic (the corpus)
    battle_id: int | None = None  # battle rows only
    points: int | None = None
    won: bool | None = None
    chat: str = ""  # the chat's salted code
    rater: str = ""  # the rater's (rating rows) or the author's (people's entries) salted code


FIELDS = tuple(f.name for f in dataclasses.fields(ExportRow))

RowSource = Callable[[Storage, datetime | None, "Consent"], Awaitable[Sequence[ExportRow]]]


def parse_since(value: str | None) -> datetime | None:
    """`--since`: an ISO date (2026-01-31) or date-time; naive values are UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            raise ExportError(
                f"--since {value!r} is not a date; use YYYY-MM-DD or an ISO date-time"
            ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def write_rows(rows: Sequence[ExportRow], fmt: str, out: TextIO) -> None:
    """Write `rows` as JSON lines or CSV (with a header; empty scores are empty cells)."""
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(dataclasses.asdict(row), ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in dataclasses.asdict(row).items()})
    else:
        raise ExportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
