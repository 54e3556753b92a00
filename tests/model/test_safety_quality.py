"""The word list on the hand-labelled family set (tests/data/family_labelled.csv): what it
catches and what it leaves alone, held to the bars agreed for family mode. bench/safety.py
prints the same figures beside the classifier's; this checks quality, never speed."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import SafetySettings
from model.safety import FilterError, Flag, build_filter
from model.safety.evaluation import Labelled, read_labelled, score_filter

LABELLED = Path(__file__).resolve().parents[1] / "data" / "family_labelled.csv"
# The bars agreed for family mode's default filter.
MIN_RECALL = 0.9
MAX_FALSE_POSITIVE_RATE = 0.05
# Innocent words with an offensive string inside (the Scunthorpe problem): each must appear in
# a clean row of the set, and no clean row may be flagged.
SCUNTHORPE = ["Scunthorpe", "cocktail", "assassin", "class", "grapes", "therapist", "Essex", "Hello"]
# Offensive rows the word list lets through, and why; a new miss fails the test, and a row
# that starts being caught should leave this list.
KNOWN_MISSES = {
    # doubled letters are not undone: shortening them would read "rapped" as "raped"
    "Why did the horrny frog jump? Spring had sprung.",
    # "tit" is left out of the list on purpose (the bird, "tit for tat")
    "Did you hear the one about the woman with a breast implant made of wood? Wooden tit",
    # offensive by what they say, with no listed word: only a classifier could catch them
    "What did Santa give the blind, autistic, paraplegic kid with down syndrome for Christmas? Cancer.",
    "Why did the girl take her clothes off in front of the priest? She wanted to confess everything at once.",
    "Go jump off a bridge and die, nobody would miss you.",
}


@pytest.fixture(scope="module")
def rows() -> list[Labelled]:
    return read_labelled(LABELLED)


def test_the_labelled_set_is_big_enough_and_has_the_tricky_cases(rows: list[Labelled]) -> None:
    assert len(rows) >= 120
    assert len({r.text for r in rows}) == len(rows)  # no row twice
    offensive = [r.text for r in rows if r.offensive]
    clean = [r.text for r in rows if not r.offensive]
    assert len(offensive) >= 50 and len(clean) >= 50
    for word in SCUNTHORPE:
        assert any(word in text for text in clean), word
    disguised = [t for t in offensive if any(ch in t for ch in "*@$!0134#-.") or "\u200b" in t]
    assert len(disguised) >= 20  # leetspeak, masking, spacing
    assert any(not t.isascii() for t in offensive)  # accents, look-alike letters, full width


def test_the_word_list_reaches_the_agreed_quality(rows: list[Labelled]) -> None:
    scores = score_filter(build_filter(SafetySettings()), rows)
    assert scores.recall >= MIN_RECALL, scores.misses
    assert scores.false_positive_rate <= MAX_FALSE_POSITIVE_RATE, scores.false_alarms
    # What it achieves on this set: every clean row clean, only the known misses let through.
    assert scores.false_alarms == ()
    assert set(scores.misses) == KNOWN_MISSES


def test_scores_count_each_verdict_against_its_label() -> None:
    class FlagsQuestions:
        name = "questions"

        def check(self, text: str) -> Flag:
            return Flag(text.endswith("?"))

    rows = [
        Labelled("Rude?", True),
        Labelled("Rude.", True),
        Labelled("Kind?", False),
        Labelled("Kind.", False),
    ]
    scores = score_filter(FlagsQuestions(), rows)
    counts = (scores.true_positives, scores.false_positives, scores.true_negatives, scores.false_negatives)
    assert counts == (1, 1, 1, 1)
    assert (scores.precision, scores.recall, scores.false_positive_rate) == (0.5, 0.5, 0.5)
    assert scores.misses == ("Rude.",) and scores.false_alarms == ("Kind?",)


def test_a_bad_label_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("text,label\nWhy?,clean\nWhat?,rude\n", encoding="utf-8")
    with pytest.raises(FilterError, match=r"line 3: label 'rude' is not clean or offensive"):
        read_labelled(path)
    path.write_text("joke,verdict\nWhy?,clean\n", encoding="utf-8")
    with pytest.raises(FilterError, match="the header must name the columns text,label"):
        read_labelled(path)
