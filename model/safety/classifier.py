"""`ClassifierFilter`: the word list and a trained classifier together (`filter=classifier`).

The classifier is alt-profanity-check (`pip install 'punchline[safety]'`): a linear SVM over
character and word n-grams trained on about 200,000 human-labelled comments, shipped inside
its wheel (no download at run time). A text is flagged when the word list flags it or the
classifier's probability reaches the threshold; `Flag.score` is that probability.

It reads the folded text (accents, case, look-alike letters undone; `normalise.fold`), and
leaves leetspeak, spacing and masking to the word list, which reads those better.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from model.safety.base import FilterError, Flag
from model.safety.normalise import fold
from model.safety.wordlist import WordListFilter

# Texts in, probabilities that each is offensive out.
Probability = Callable[[list[str]], Sequence[float]]

INSTALL_HINT = "pip install 'punchline[safety]'"


class ClassifierMissing(FilterError):
    """`filter=classifier` was chosen, but alt-profanity-check is not installed."""


def load_classifier() -> Probability:
    """alt-profanity-check's `predict_prob`, loaded (a second or so: it unpickles its model).

    Raises `ClassifierMissing`, naming the pip command, when the package is not installed.
    """
    try:
        import profanity_check
    except ImportError:
        raise ClassifierMissing(
            f"PUNCHLINE_SAFETY__FILTER=classifier needs alt-profanity-check: {INSTALL_HINT}"
        ) from None

    def probability(texts: list[str]) -> Sequence[float]:
        return [float(p) for p in profanity_check.predict_prob(texts)]

    return probability


class ClassifierFilter:
    """Flags what the word list flags, and what the classifier scores at `threshold` or
    above (implements `ContentFilter`). Without `words` it is the classifier alone (what
    bench/safety.py compares the word list with)."""

    name = "classifier"

    def __init__(self, words: WordListFilter | None, threshold: float, probability: Probability) -> None:
        self.words = words
        self.threshold = threshold
        self._probability = probability

    def check(self, text: str) -> Flag:
        """The word list's verdict and terms, with the classifier's probability as `score`."""
        listed = self.words.check(text) if self.words is not None else Flag(False)
        score = float(self._probability([fold(text)])[0])
        return Flag(listed.flagged or score >= self.threshold, listed.terms, score)
