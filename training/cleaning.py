"""Cleaning read jokes into training pairs.

Whitespace is trimmed and collapsed with `model.text.clean_text` (the fast T5 tokenizer
otherwise adds a stray token before `</s>`), Reddit "Edit:" notes are cut off the answer, and
rows are dropped for: an empty question, an empty answer (also one that was only an edit note),
an answer over the length limit, or a (question, answer) pair seen before (ignoring case). A question that
repeats with different answers keeps each distinct answer: they are different jokes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from model.text import clean_text
from training.readers import Joke

DEFAULT_MAX_ANSWER_CHARS = 200

EMPTY_QUESTION = "empty question"
EMPTY_ANSWER = "empty answer"
ANSWER_TOO_LONG = "answer too long"
DUPLICATE = "duplicate pair"

# A note starts at the text's start or after a space/bracket with "edit:"/"EDIT 2 -" in any case,
# or with a capitalised "Edit"/"EDIT" without a colon ("*Edit Also why ..."). "editing", "edited"
# and "Editor" are words, not notes (word boundary), and so is a lower-case "edit it later".
_EDIT_NOTE = re.compile(r"(?:^|(?<=[\s*(\[]))[*(\[]?\s*(?:(?i:edit)\s*\d*\s*[:\-]|(?:Edit|EDIT)\d*\b)")


@dataclass(slots=True)
class CleaningReport:
    """The kept jokes and how many were dropped, by reason."""

    kept: list[Joke]
    dropped: Counter[str] = field(default_factory=Counter)
    edit_notes_removed: int = 0

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


def strip_edit_note(answer: str) -> str:
    """The answer without a trailing Reddit edit note ("... Edit: thanks for the gold!")."""
    match = _EDIT_NOTE.search(answer)
    return answer[: match.start()].rstrip() if match else answer


def clean_jokes(jokes: Iterable[Joke], max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS) -> CleaningReport:
    """Normalise, filter and de-duplicate jokes, keeping their order."""
    report = CleaningReport(kept=[])
    seen: set[tuple[str, str]] = set()
    for joke in jokes:
        question = clean_text(joke.question)
        answer = clean_text(joke.answer)
        stripped = clean_text(strip_edit_note(answer))
        if stripped != answer:
            report.edit_notes_removed += 1
            answer = stripped
        if not question:
            report.dropped[EMPTY_QUESTION] += 1
        elif not answer:
            report.dropped[EMPTY_ANSWER] += 1
        elif len(answer) > max_answer_chars:
            report.dropped[ANSWER_TOO_LONG] += 1
        elif (key := (question.casefold(), answer.casefold())) in seen:
            report.dropped[DUPLICATE] += 1
        else:
            seen.add(key)
            report.kept.append(replace(joke, question=question, answer=answer))
    return report
