"""A deterministic train/validation/test split keyed on the normalised question.

The split of a joke depends only on its question, hashed after normalisation and case-folding,
so every answer to a repeated question lands in the same split (585 questions repeat in the
Kaggle set) and the split never changes between runs, machines or `--limit`s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from model.text import clean_text
from training.readers import Joke

TRAIN, VALIDATION, TEST = "train", "validation", "test"
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass(frozen=True, slots=True)
class Split:
    """Jokes by split."""

    train: list[Joke]
    validation: list[Joke]
    test: list[Joke]

    def counts(self) -> dict[str, int]:
        return {TRAIN: len(self.train), VALIDATION: len(self.validation), TEST: len(self.test)}


def question_key(question: str) -> str:
    """The identity of a setup: normalised and case-folded."""
    return clean_text(question).casefold()


def bucket(question: str) -> float:
    """A stable number in [0, 1) for a question (first 8 bytes of its SHA-256)."""
    digest = hashlib.sha256(question_key(question).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_name(question: str, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> str:
    """Which split a question belongs to."""
    train, validation, _ = fractions
    value = bucket(question)
    if value < train:
        return TRAIN
    if value < train + validation:
        return VALIDATION
    return TEST


def split_jokes(jokes: Iterable[Joke], fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> Split:
    """Split jokes by question, keeping their order within each split."""
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    parts: dict[str, list[Joke]] = {TRAIN: [], VALIDATION: [], TEST: []}
    for joke in jokes:
        parts[split_name(joke.question, fractions)].append(joke)
    return Split(train=parts[TRAIN], validation=parts[VALIDATION], test=parts[TEST])
