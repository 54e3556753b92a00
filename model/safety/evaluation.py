"""How well a content filter separates hand-labelled texts: precision, recall, false alarms.

    rows = read_labelled(Path("tests/data/family_labelled.csv"))   # text,label (clean|offensive)
    scores = score_filter(build_filter(settings.safety), rows)
    scores.recall, scores.false_positive_rate, scores.misses

bench/safety.py and the quality test (tests/model/test_safety_quality.py) both count with
this, so the numbers the README quotes are the ones the test holds the list to.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from model.safety.base import ContentFilter, FilterError

LABELS = {"clean": False, "offensive": True}


@dataclass(frozen=True, slots=True)
class Labelled:
    """One labelled text: `offensive` is the person's verdict (unfit for a family chat)."""

    text: str
    offensive: bool


@dataclass(frozen=True)
class Scores:
    """A filter's verdicts against the labels. `misses` are offensive texts it let through,
    `false_alarms` clean texts it flagged, both in the file's order."""

    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int
    misses: tuple[str, ...] = ()
    false_alarms: tuple[str, ...] = ()

    @property
    def precision(self) -> float:
        """Of the flagged texts, the share that are offensive (1.0 when nothing was flagged)."""
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        """Of the offensive texts, the share flagged (1.0 when there are none)."""
        offensive = self.true_positives + self.false_negatives
        return self.true_positives / offensive if offensive else 1.0

    @property
    def false_positive_rate(self) -> float:
        """Of the clean texts, the share flagged (0.0 when there are none)."""
        clean = self.false_positives + self.true_negatives
        return self.false_positives / clean if clean else 0.0


def read_labelled(path: Path) -> list[Labelled]:
    """The rows of a `text,label` CSV (UTF-8, a header, label `clean` or `offensive`).

    Raises `FilterError` naming the file (and the line) when it cannot be read, lacks the
    columns, or holds another label.
    """
    try:
        with Path(path).open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"text", "label"} <= set(reader.fieldnames):
                raise FilterError(f"{path}: the header must name the columns text,label")
            return [_row(row, path, reader.line_num) for row in reader]
    except (OSError, UnicodeDecodeError) as exc:
        raise FilterError(f"{path}: cannot read the labelled texts ({exc})") from None


def _row(row: dict[str, str], path: Path, line: int) -> Labelled:
    label = (row["label"] or "").strip().lower()
    if label not in LABELS:
        raise FilterError(f"{path}, line {line}: label {row['label']!r} is not clean or offensive")
    return Labelled(row["text"], LABELS[label])


def score_filter(content_filter: ContentFilter, rows: Iterable[Labelled]) -> Scores:
    """`content_filter`'s verdict on every row, counted against the labels."""
    tp = fp = tn = fn = 0
    misses: list[str] = []
    false_alarms: list[str] = []
    for row in rows:
        flagged = content_filter.check(row.text).flagged
        if row.offensive and flagged:
            tp += 1
        elif row.offensive:
            fn += 1
            misses.append(row.text)
        elif flagged:
            fp += 1
            false_alarms.append(row.text)
        else:
            tn += 1
    return Scores(tp, fp, tn, fn, tuple(misses), tuple(false_alarms))
