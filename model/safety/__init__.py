"""Family mode's content filter, and the phrases blocked at decoding.

    text_filter = build_filter(settings.safety)          # once, at start-up
    text_filter.check("Why?").flagged                    # on every setup, candidate, entry
    phrases = blocked_phrases(settings.safety)           # the severe tier, for the worker

Two filters behind one interface (`ContentFilter`): `WordListFilter`, the default (the
project's own list, or `PUNCHLINE_SAFETY__WORDLIST`; no download), and `ClassifierFilter`
(`PUNCHLINE_SAFETY__FILTER=classifier`: the word list plus alt-profanity-check above
`PUNCHLINE_SAFETY__THRESHOLD`, from the `punchline[safety]` extra). Nothing here imports torch
or a chat library.
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
    """The configured filter. Raises `BlocklistError` for an unusable word list file and
    `ClassifierMissing` when `filter=classifier` lacks its package."""
    words = WordListFilter(load_blocklist(settings.wordlist))
    if settings.filter == "classifier":
        return ClassifierFilter(words, settings.threshold, load_classifier())
    return words


def blocked_phrases(settings: SafetySettings) -> tuple[str, ...]:
    """The severe tier as lower-case phrases, which family chats' requests block at decoding
    (each backend blocks their usual casings). Raises `BlocklistError` like `build_filter`."""
    return load_blocklist(settings.wordlist).decode_phrases()
