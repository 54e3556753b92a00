"""Cleaning and the deterministic split."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from training.cleaning import (
    ANSWER_TOO_LONG,
    DUPLICATE,
    EMPTY_ANSWER,
    EMPTY_QUESTION,
    clean_jokes,
    strip_edit_note,
)
from training.dataset import prepare_data
from training.errors import DataError
from training.readers import Joke
from training.split import TEST, TRAIN, VALIDATION, question_key, split_jokes, split_name


def joke(q: str, a: str, i: str = "1") -> Joke:
    return Joke(id=i, question=q, answer=a, score=None, source="qa_csv")


def test_cleaning_trims_drops_and_dedupes() -> None:
    report = clean_jokes(
        [
            joke("  Why   did it?\n", " Because \t it could. "),
            joke("Why did it?", "because it could."),  # same pair up to case and spaces
            joke("Why did it?", "Another reason."),  # same question, other answer: kept
            joke("Empty?", "   "),
            joke("   ", "No question"),
            joke("Long?", "x" * 51),
            joke("Edited?", "Olive. EDIT: thanks for the gold!"),
            joke("Only edit?", "Edit: sorry for the repost"),
            joke("Word?", "The Chief Editing Officer, I will edit it later"),
        ],
        max_answer_chars=50,
    )
    assert [(j.question, j.answer) for j in report.kept] == [
        ("Why did it?", "Because it could."),
        ("Why did it?", "Another reason."),
        ("Edited?", "Olive."),
        ("Word?", "The Chief Editing Officer, I will edit it later"),
    ]
    assert report.dropped == Counter({DUPLICATE: 1, EMPTY_ANSWER: 2, EMPTY_QUESTION: 1, ANSWER_TOO_LONG: 1})
    assert report.edit_notes_removed == 2


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Icy Dead People. Edit1: spelling", "Icy Dead People."),
        ("A trumPET *Edit Also why is this Marked Politics?", "A trumPET"),
        ("Disaster Edit:  I'm just a poor meme farmer", "Disaster"),
        ("They're both myths.  EDIT : spelling", "They're both myths."),
        ("what part of Chief Editing Officer", "what part of Chief Editing Officer"),
    ],
)
def test_strip_edit_note(answer: str, expected: str) -> None:
    assert strip_edit_note(answer).rstrip() == expected


def test_split_is_by_question_and_deterministic() -> None:
    jokes = [joke(f"Question number {i}?", f"answer {k}", str(i)) for i in range(3000) for k in range(2)]
    jokes.append(joke("  QUESTION   number 5? ", "shouted"))
    split = split_jokes(jokes)
    where = {}
    for name, part in ((TRAIN, split.train), (VALIDATION, split.validation), (TEST, split.test)):
        for j in part:
            assert where.setdefault(question_key(j.question), name) == name  # never two splits
    counts = split.counts()
    assert sum(counts.values()) == len(jokes)
    assert 0.77 < counts[TRAIN] / len(jokes) < 0.83
    assert 0.08 < counts[VALIDATION] / len(jokes) < 0.12
    assert split_jokes(list(reversed(jokes))).counts() == counts
    assert split_name("Question number 5?") == split_name(" question NUMBER  5?")


def test_prepare_data_limit_and_empty_after_cleaning(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ID", "Question", "Answer"])
        writer.writerows([str(i), f"Setup {i}?", f"Punch {i}"] for i in range(200))
    prepared = prepare_data(path, limit=50)
    assert prepared.used == 50 and sum(prepared.split.counts().values()) == 50
    assert len(prepared.fingerprint) == 64
    assert prepare_data(path, limit=50).fingerprint == prepared.fingerprint
    assert prepare_data(path, limit=60).fingerprint != prepared.fingerprint

    empty = tmp_path / "empty.csv"
    empty.write_text("ID,Question,Answer\n1,Why?,\n2,What?, \n", encoding="utf-8")
    with pytest.raises(DataError, match="no usable jokes after cleaning"):
        prepare_data(empty)


@pytest.mark.shared_data
def test_kaggle_cleaning_matches_known_defects(kaggle_csv: Path) -> None:
    prepared = prepare_data(kaggle_csv)
    dropped = prepared.cleaning.dropped
    # Facts from the data README: 14 empty answers, 56 duplicated pairs (ignoring case), 421
    # answers over 200 characters (some of them shrink under the limit once edit notes go).
    assert dropped[EMPTY_ANSWER] >= 14
    assert dropped[DUPLICATE] >= 56
    assert 380 <= dropped[ANSWER_TOO_LONG] <= 421
    assert len(prepared.cleaning.kept) + prepared.cleaning.dropped_total == prepared.read.rows
    train = {question_key(j.question) for j in prepared.split.train}
    held_out = {question_key(j.question) for j in prepared.split.validation + prepared.split.test}
    assert not train & held_out
