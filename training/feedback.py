"""Reading a `punchline ratings export` file (CSV with a header, or JSON lines) as typed rows.

Three kinds of row feed the preference data (`training.preferences`):
- `reply`: one rated bot reply, aggregated over its raters (funniness in [-1, 1], appropriateness
  in [0, 1], counts funny / not_funny / inappropriate / raters);
- `rating`: one person's verdict on one reply (`id` is the reply's id, `rater` the person's
  salted hash, funniness -1/0/+1, appropriateness 0.0 when this person flagged it);
- `battle`: one entry of a finished round (`battle_id`, `author_kind`, `funny` = its votes,
  `raters` = votes cast in the round, `won`; `rater` = the author's hash for people's entries).

`chat` and `rater` are salted stable hashes and may be empty (older exports). Rows that cannot be
used are counted by reason, never raised; a file that is missing, not UTF-8 or lacks the
export's columns raises `DataError` with one line. File handling is the joke readers'
(`training.readers.read_text`, `jsonl_records`).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from training.errors import DataError
from training.readers import MALFORMED, extension, finite_number, jsonl_records, read_text

REPLY, RATING, BATTLE = "reply", "rating", "battle"
KINDS = (REPLY, RATING, BATTLE)
PERSON = "person"  # author_kind of people's battle entries

UNKNOWN_KIND = "unknown kind"
NO_TIME = "no created_at"
REQUIRED = ("kind", "id", "setup", "punchline")


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    """One row of the export, typed (see the module docstring for what each kind means)."""

    kind: str
    id: str
    created_at: datetime  # UTC
    setup: str
    punchline: str
    version: str = ""
    platform: str = ""
    funniness: float | None = None
    appropriateness: float | None = None
    funny: int = 0
    not_funny: int = 0
    inappropriate: int = 0
    raters: int = 0
    author_kind: str = "bot"
    battle_id: str = ""
    points: int | None = None
    won: bool = False
    chat: str = ""
    rater: str = ""

    @property
    def flagged(self) -> bool:
        """Whether this row says someone flagged the punchline as inappropriate."""
        if self.inappropriate > 0:
            return True
        return self.appropriateness is not None and self.appropriateness < 1.0


@dataclass(slots=True)
class FeedbackRead:
    """The usable rows of one export file and what could not be used, by reason."""

    path: Path
    rows: list[FeedbackRow]
    seen: int  # rows (records) in the file
    skipped: Counter[str] = field(default_factory=Counter)


def read_feedback(path: Path | str) -> FeedbackRead:
    """Read an export file (`.csv`, `.jsonl`; other names are sniffed); `DataError` if unreadable."""
    path = Path(path)
    text = read_text(path)
    ext = extension(path)
    as_jsonl = ext == ".jsonl" or (ext != ".csv" and text.lstrip().startswith("{"))
    records = list(jsonl_records(text)) if as_jsonl else _csv_records(path, text)
    result = FeedbackRead(path=path, rows=[], seen=0)
    for record in records:
        result.seen += 1
        row = parse_row(record)
        if isinstance(row, str):
            result.skipped[row] += 1
        else:
            result.rows.append(row)
    if result.seen and not result.rows and result.skipped[MALFORMED] == result.seen:
        raise DataError(
            f"{path}: no row has the export's columns ({', '.join(REQUIRED)}, created_at); "
            "write it with `punchline ratings export`"
        )
    return result


def _csv_records(path: Path, text: str) -> Iterable[Mapping[str, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in reader.fieldnames or []]
        if not header:
            raise DataError(f"{path} is empty: expected the header `punchline ratings export` writes")
        if not set(REQUIRED) <= set(header):
            raise DataError(
                f"{path} has columns {','.join(header)[:120]}; expected the export's "
                f"{', '.join(REQUIRED)}, created_at (`punchline ratings export --format csv`)"
            )
        rows: list[Mapping[str, str]] = []
        for raw in reader:
            if None in raw or any(v is None for v in raw.values()):  # too many / too few cells
                rows.append({})
            else:
                rows.append({k.strip().lower(): v for k, v in raw.items() if k is not None})
        return rows
    except csv.Error as exc:
        raise DataError(f"{path} line {reader.line_num}: broken CSV ({exc})") from None


def parse_row(record: object) -> FeedbackRow | str:
    """A typed row from one CSV row or JSON object, or the reason it is unusable."""
    if not isinstance(record, Mapping):
        return MALFORMED
    fields = {str(k).strip().lower(): v for k, v in record.items()}
    if any(not isinstance(fields.get(name), (str, int)) for name in REQUIRED):
        return MALFORMED
    kind = str(fields["kind"]).strip()
    if kind not in KINDS:
        return UNKNOWN_KIND
    created = parse_time(fields.get("created_at"))
    if created is None:
        return NO_TIME
    return FeedbackRow(
        kind=kind,
        id=str(fields["id"]).strip(),
        created_at=created,
        setup=str(fields["setup"]),
        punchline=str(fields["punchline"]),
        version=_text(fields.get("version")),
        platform=_text(fields.get("platform")),
        funniness=finite_number(_blank_none(fields.get("funniness"))),
        appropriateness=finite_number(_blank_none(fields.get("appropriateness"))),
        funny=_count(fields.get("funny")),
        not_funny=_count(fields.get("not_funny")),
        inappropriate=_count(fields.get("inappropriate")),
        raters=_count(fields.get("raters")),
        author_kind=_text(fields.get("author_kind")) or "bot",
        battle_id=_text(fields.get("battle_id")),
        points=_optional_int(fields.get("points")),
        won=_truthy(fields.get("won")),
        chat=_text(fields.get("chat")),
        rater=_text(fields.get("rater")),
    )


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 time as UTC (naive values are UTC); None when missing or unparseable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _blank_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _optional_int(value: object) -> int | None:
    number = finite_number(_blank_none(value))
    return None if number is None else int(number)


def _count(value: object) -> int:
    """A non-negative count; missing or unparseable cells count 0."""
    return max(0, _optional_int(value) or 0)


def _truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"true", "1", "yes"}
