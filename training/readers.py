"""Readers for the joke formats people have, all returning typed `Joke` records.

Formats, detected by extension and content:
- Q/A CSV with a header `ID,Question,Answer` (the Kaggle set; extra columns such as
  `rjokes_log_score` are allowed, `ID` is optional);
- the bot's own ratings export, CSV or JSONL, with columns `setup,punchline` (and optionally
  `id`, `score` or `funniness`, `appropriateness`): punchlines people rated not funny
  (funniness <= 0) or flagged (appropriateness < 0.5) are skipped, so a refreshed adapter
  learns from what landed (per-rater `rating` rows are skipped: their reply's row sums them);
- r/Jokes JSON dumps `[{"title","body","id","score"}]` (or JSONL of such objects);
- the rJokes TSV (optionally gzipped) `<label>\\t<title body>`, written with QUOTE_NONE and `\\`
  escapes; its question/answer boundary is lost, so only texts that split at the first "? " are
  usable.

Rows that cannot become a question/answer pair are counted by reason, never raised; a file that
is missing, undecodable or has none of the expected columns raises `DataError` with one line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from training.errors import DataError

# Reasons a row is skipped while reading.
MALFORMED = "malformed row"
NOT_QA = "no question/answer split"

# Column names accepted for the score, in order of preference.
_SCORE_COLUMNS = ("score", "rjokes_log_score", "funny_score", "funniness")
RATED_NOT_FUNNY = "rated not funny"
RATED_INAPPROPRIATE = "flagged inappropriate"
PER_RATER = "per-rater rating (counted in its reply row)"
MIN_APPROPRIATENESS = 0.5


@dataclass(frozen=True, slots=True)
class Joke:
    """One question/answer joke as read from a file (not yet cleaned)."""

    id: str
    question: str
    answer: str
    score: float | None
    source: str  # the format it came from: "qa_csv", "ratings", "reddit_json", "rjokes_tsv"


@dataclass(slots=True)
class ReadResult:
    """The jokes of one file and what could not be used."""

    path: Path
    format: str
    jokes: list[Joke]
    rows: int  # rows (records) seen in the file
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> rows

    @property
    def unreadable(self) -> int:
        """Rows that could not be read as a question/answer pair."""
        return sum(self.skipped.values())


def read_jokes(path: Path | str) -> ReadResult:
    """Read a joke file of any supported format; raise `DataError` if it cannot be read at all."""
    path = Path(path)
    text = read_text(path)
    ext = extension(path)
    if ext == ".tsv":
        return _read_rjokes_tsv(path, text)
    if ext == ".jsonl":
        return _read_jsonl(path, text)
    if ext == ".json":
        return _read_json(path, text)
    if ext == ".csv":
        return _read_csv(path, text)
    # Unknown extension: sniff the content.
    stripped = text.lstrip()
    if stripped.startswith("["):
        return _read_json(path, text)
    if stripped.startswith("{"):
        return _read_jsonl(path, text)
    first = stripped.split("\n", 1)[0]
    if "\t" in first and first.split("\t", 1)[0].strip().lstrip("-").isdigit():
        return _read_rjokes_tsv(path, text)
    return _read_csv(path, text)


def read_text(path: Path) -> str:
    """The text of a data file (UTF-8, optionally gzipped); `DataError` with one line otherwise.

    Shared by every reader of data files (jokes here, feedback in `training.feedback`).
    """
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    if not path.is_file():
        raise DataError(f"{path} is not a file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path} is a damaged gzip file: {exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8 and try again"
        ) from None


def extension(path: Path) -> str:
    """The lower-cased format extension (".csv", ".jsonl", ...), ignoring a trailing ".gz"."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return suffixes[-1] if suffixes else ""


def finite_number(value: object) -> float | None:
    """A finite float, or None for missing/unparseable scores."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value if isinstance(value, (int, float)) else str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _rating_verdict(fields: Mapping[str, object]) -> str | None:
    """Why a row of the bot's ratings export should not become training data, or None."""
    if str(fields.get("kind", "")).strip() == "rating":  # one person's vote; its reply row has them all
        return PER_RATER
    appropriateness = finite_number(fields.get("appropriateness"))
    if appropriateness is not None and appropriateness < MIN_APPROPRIATENESS:
        return RATED_INAPPROPRIATE
    funniness = finite_number(fields.get("funniness"))
    if funniness is not None and funniness <= 0:
        return RATED_NOT_FUNNY
    return None


def _pair(question: object, answer: object) -> tuple[str, str] | None:
    if not isinstance(question, str) or not isinstance(answer, str):
        return None
    return question, answer


def _read_csv(path: Path, text: str) -> ReadResult:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataError(f"{path} is not a readable CSV file: {exc}") from None
    if not header:
        raise DataError(f"{path} is empty: expected a header such as ID,Question,Answer")
    columns = {name.strip().lower(): i for i, name in enumerate(header)}
    if {"question", "answer"} <= columns.keys():
        q_col, a_col, fmt = columns["question"], columns["answer"], "qa_csv"
    elif {"setup", "punchline"} <= columns.keys():
        q_col, a_col, fmt = columns["setup"], columns["punchline"], "ratings"
    else:
        shown = ",".join(h.strip() for h in header)[:120]
        raise DataError(
            f"{path} has columns {shown}; expected ID,Question,Answer (Q/A jokes) "
            "or setup,punchline (the bot's ratings export)"
        )
    id_col = columns.get("id")
    score_col = next((columns[c] for c in _SCORE_COLUMNS if c in columns), None)
    jokes: list[Joke] = []
    skipped: Counter[str] = Counter()
    rows = 0
    try:
        for row in reader:
            if not row:  # blank line
                continue
            rows += 1
            if len(row) != len(header):
                skipped[MALFORMED] += 1
                continue
            if fmt == "ratings":
                verdict = _rating_verdict({name: row[i] for name, i in columns.items()})
                if verdict is not None:
                    skipped[verdict] += 1
                    continue
            jokes.append(
                Joke(
                    id=row[id_col].strip() if id_col is not None else str(rows),
                    question=row[q_col],
                    answer=row[a_col],
                    score=finite_number(row[score_col]) if score_col is not None else None,
                    source=fmt,
                )
            )
    except csv.Error as exc:
        raise DataError(f"{path} line {reader.line_num}: broken CSV ({exc})") from None
    return ReadResult(path=path, format=fmt, jokes=jokes, rows=rows, skipped=skipped)


def _from_record(record: object, index: int) -> Joke | str:
    """A Joke from one JSON object, or the reason it is unusable."""
    if not isinstance(record, Mapping):
        return MALFORMED
    keys = {str(k).lower(): v for k, v in record.items()}
    rid = str(keys.get("id", index))
    if "setup" in keys and "punchline" in keys:
        pair, source = _pair(keys["setup"], keys["punchline"]), "ratings"
    elif "question" in keys and "answer" in keys:
        pair, source = _pair(keys["question"], keys["answer"]), "qa_json"
    elif "title" in keys and "body" in keys:
        pair, source = _pair(keys["title"], keys["body"]), "reddit_json"
        # r/Jokes posts are stories as often as questions; only a question title is a setup.
        if pair is not None and not pair[0].strip().endswith("?"):
            return NOT_QA
    else:
        return MALFORMED
    if pair is None:
        return MALFORMED
    if source == "ratings" and (verdict := _rating_verdict(keys)) is not None:
        return verdict
    score = next((finite_number(keys[c]) for c in _SCORE_COLUMNS if c in keys), None)
    return Joke(id=rid, question=pair[0], answer=pair[1], score=score, source=source)


def _collect(path: Path, fmt: str, records: Iterable[object]) -> ReadResult:
    jokes: list[Joke] = []
    skipped: Counter[str] = Counter()
    rows = 0
    for index, record in enumerate(records, start=1):
        rows += 1
        joke = _from_record(record, index)
        if isinstance(joke, str):
            skipped[joke] += 1
        else:
            jokes.append(joke)
    if jokes:
        fmt = jokes[0].source
    return ReadResult(path=path, format=fmt, jokes=jokes, rows=rows, skipped=skipped)


def _read_json(path: Path, text: str) -> ReadResult:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if isinstance(data, Mapping):
        # Some dumps wrap the list: {"jokes": [...]}.
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(f"{path}: expected a JSON list of jokes with title/body or question/answer")
        data = lists[0]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of jokes with title/body or question/answer")
    return _collect(path, "json", data)


def jsonl_records(text: str) -> Iterator[object]:
    """The JSON value of each non-blank line; None for a line that is not JSON."""
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            yield None  # counted as a malformed row


def _read_jsonl(path: Path, text: str) -> ReadResult:
    result = _collect(path, "jsonl", jsonl_records(text))
    if result.rows and not result.jokes and result.skipped[MALFORMED] == result.rows:
        raise DataError(
            f"{path}: no line is a JSON object with setup/punchline, question/answer or title/body"
        )
    return result


def split_question(text: str) -> tuple[str, str] | None:
    """Split an rJokes text at the first "? " into question and answer, if it splits cleanly."""
    index = text.find("? ")
    if index <= 0:
        return None
    question, answer = text[: index + 1].strip(), text[index + 2 :].strip()
    if not answer or len(question) < 3:
        return None
    return question, answer


def _read_rjokes_tsv(path: Path, text: str) -> ReadResult:
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter="\t",
        quoting=csv.QUOTE_NONE,
        escapechar="\\",
    )
    jokes: list[Joke] = []
    skipped: Counter[str] = Counter()
    rows = 0
    try:
        for row in reader:
            if not row:
                continue
            rows += 1
            label = finite_number(row[0]) if len(row) == 2 else None
            if label is None:
                skipped[MALFORMED] += 1
                continue
            pair = split_question(row[1])
            if pair is None:
                skipped[NOT_QA] += 1
                continue
            jokes.append(Joke(str(rows), pair[0], pair[1], label, "rjokes_tsv"))
    except csv.Error as exc:
        raise DataError(f"{path} line {reader.line_num}: broken TSV ({exc})") from None
    if rows and skipped[MALFORMED] == rows:
        raise DataError(f"{path}: expected rJokes TSV lines '<label>\\t<text>'")
    return ReadResult(path=path, format="rjokes_tsv", jokes=jokes, rows=rows, skipped=skipped)
