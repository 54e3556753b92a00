"""What a content filter is: a `Flag` for a text, from anything with a `check` method.

Family mode (docs/DESIGN.md, decision 11) asks a filter about setups, candidates and battle
entries; the word list is the default, a trained classifier an option (`model.safety`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from config.errors import PunchlineError


@dataclass(frozen=True)
class Flag:
    """A filter's verdict on one text.

    `terms` are the list entries that matched, as the list writes them (e.g. "fuck*"), in the
    order they were found; `score` is a classifier's probability that the text is offensive
    (None for a filter without one).
    """

    flagged: bool
    terms: tuple[str, ...] = ()
    score: float | None = None


@runtime_checkable
class ContentFilter(Protocol):
    """Decides whether a text is unfit for a family chat. Pure Python and fast: it runs on
    every candidate punchline in the bot process."""

    name: str  # "wordlist", "classifier"

    def check(self, text: str) -> Flag:
        """The verdict on `text`; never raises for any string."""
        ...


class FilterError(PunchlineError):
    """The content filter cannot be built (a bad word list, a missing classifier)."""
