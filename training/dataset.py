"""From a data file to cleaned, split jokes: read -> clean -> (limit) -> split."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from training.cleaning import DEFAULT_MAX_ANSWER_CHARS, CleaningReport, clean_jokes
from training.errors import DataError
from training.readers import Joke, ReadResult, read_jokes
from training.split import Split, split_jokes


@dataclass(frozen=True, slots=True)
class PreparedData:
    """Everything the training, stats and evaluation commands need to know about the data."""

    read: ReadResult
    cleaning: CleaningReport
    used: int  # cleaned rows used (after --limit)
    split: Split

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the cleaned training split, recorded in the adapter's metadata."""
        return fingerprint(self.split.train)


def fingerprint(jokes: Iterable[Joke]) -> str:
    """A SHA-256 over the (question, answer) pairs in order."""
    digest = hashlib.sha256()
    for joke in jokes:
        digest.update(joke.question.encode("utf-8"))
        digest.update(b"\x1f")
        digest.update(joke.answer.encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()


def prepare_data(
    path: Path | str,
    *,
    limit: int | None = None,
    max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS,
    require_train: bool = True,
) -> PreparedData:
    """Read, clean, limit and split a data file; raise `DataError` when nothing usable is left."""
    read = read_jokes(path)
    cleaning = clean_jokes(read.jokes, max_answer_chars=max_answer_chars)
    kept = cleaning.kept if limit is None else cleaning.kept[:limit]
    if not kept:
        raise DataError(
            f"{read.path} has no usable jokes after cleaning "
            f"({read.rows} rows read, {read.unreadable} unreadable, "
            f"{cleaning.dropped_total} dropped): check the file's format and columns"
        )
    split = split_jokes(kept)
    if require_train and not split.train:
        raise DataError(
            f"{read.path}: all {len(kept)} usable jokes fell outside the training split; "
            "use more data (or a larger --limit)"
        )
    return PreparedData(read=read, cleaning=cleaning, used=len(kept), split=split)
