"""Family mode's content filter, and the phrases blocked at decoding.

    text_filter = build_filter(settings.safety)          # once, at start-up
    text_filter.check("Why?").flagged                    # on every setup, candidate, entry
    await generator.punchlines(setup, safe=True)         # a family chat's request
    phrases = blocked_phrases(settings.safety)           # what safe requests ban (the worker)

Two filters behind one interface (`ContentFilter`): `WordListFilter`, the default (the
project's own list, or `PUNCHLINE_SAFETY__WORDLIST`; no download), and `ClassifierFilter`
(`PUNCHLINE_SAFETY__FILTER=classifier`: the word list plus alt-profanity-check above
`PUNCHLINE_SAFETY__THRESHOLD`, from the `punchline[safety]` extra). Both entry points read
the same list file, so what decoding bans is always a part of what the filter flags (its
severe tier). `model.safety.evaluation` scores a filter on labelled texts (bench/safety.py).
Nothing here imports torch or a chat library.
"""

from __future__ import annotations

from config.settings import SafetySettings
from model.safety.base import ContentFilter, FilterError, Flag
from model.safety.blocklist import BlocklistError, load_blocklist
from model.safety.classifier import ClassifierFilter, ClassifierMissing, load_classifier
from model.safety.wordlist import WordListFilter

__all__ = [
    "BlocklistError",
    "ClassifierFilter",
    "ClassifierMissing",
    "ContentFilter",
    "FilterError",
    "Flag",
    "WordListFilter",
    "blocked_phrases",
    "build_filter",
]


def build_filter(settings: SafetySettings) -> ContentFilter:
    """The configured filter: the word list (`settings.wordlist`, else the built-in one),
    with the classifier above `settings.threshold` when `settings.filter` is "classifier".
    Its `check(text)` never raises; call it on setups, candidate punchlines and battle
    entries alike.

    Raises `BlocklistError` for an unusable word list file and `ClassifierMissing` when
    `filter=classifier` lacks its package (both `FilterError`s, messages meant for people).
    """
    words = WordListFilter(load_blocklist(settings.wordlist))
    if settings.filter == "classifier":
        return ClassifierFilter(words, settings.threshold, load_classifier())
    return words


def blocked_phrases(settings: SafetySettings) -> tuple[str, ...]:
    """The severe tier of the same list as lower-case phrases ("fuck", "fucking", ...), which
    requests with `safe=True` ban at decoding (`model.worker.create_worker` and the broker's
    worker pass them on; each backend bans their usual casings). Raises `BlocklistError` like
    `build_filter`."""
    return load_blocklist(settings.wordlist).decode_phrases()
