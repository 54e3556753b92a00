"""`WordListFilter`, the default content filter: the word list matched on whole words of the
normalised text, both tiers flagged, except inside the list's allowed phrases.

    words = WordListFilter(load_blocklist())          # the project's own list
    words.check("What a sh1t day")                    # Flag(True, ("shit",))
    words.check("Scunthorpe United won")              # Flag(False)

Needs no download and no model; about 35 µs a text (bench/safety.py: 28,000 texts/s on
one of this project's 2 CPU cores).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from model.safety.base import Flag
from model.safety.blocklist import Blocklist, Pattern, Term
from model.safety.normalise import Word, words

_START = 2  # letters that index a word with any ending (the shortest such word has three)


def _matches(pattern: Pattern, word: Word) -> bool:
    if any(pattern.matches(form) for form in word.forms):
        return True
    return word.mask is not None and pattern.matches_mask(word.mask)


class WordListFilter:
    """Flags a text when a term of either tier stands in it outside the list's allowed phrases
    (implements `ContentFilter`)."""

    name = "wordlist"

    def __init__(self, blocklist: Blocklist) -> None:
        self.blocklist = blocklist
        self._terms = _Index(blocklist.terms)
        self._allowed = _Index(blocklist.allowed)

    def check(self, text: str) -> Flag:
        """Flagged when any term matches outside an allowed phrase; `terms` lists them as the
        list writes them."""
        stream = words(text)
        cleared = {
            k
            for i, word in enumerate(stream)
            for phrase in self._allowed.starting_with(word)
            if _matches_at(phrase, stream, i)
            for k in range(i, i + len(phrase.words))
        }
        found = {
            term.source: None
            for i, word in enumerate(stream)
            for term in self._terms.starting_with(word)
            if _matches_at(term, stream, i) and not cleared.issuperset(range(i, i + len(term.words)))
        }
        return Flag(bool(found), tuple(found))


class _Index:
    """Terms found by their first word: plain words by their text, words with any ending by
    their first letters, so a check tries a handful of terms per word rather than the whole
    list. Only a first word with any beginning ("*fuck*") is tried at every word."""

    def __init__(self, terms: Sequence[Term]) -> None:
        self._all = tuple(terms)
        self._by_word: dict[str, list[Term]] = {}
        self._by_start: dict[str, list[Term]] = {}
        self._anywhere: list[Term] = []
        for term in terms:
            first = term.words[0]
            if first.any_before:
                self._anywhere.append(term)
            elif first.any_after:
                self._by_start.setdefault(first.text[:_START], []).append(term)
            else:
                self._by_word.setdefault(first.text, []).append(term)

    def starting_with(self, word: Word) -> Iterator[Term]:
        """The terms whose first word `word` may be (a superset; `_matches_at` decides)."""
        if word.mask is not None:  # rare: try every term against the pattern
            yield from self._all
            return
        for form in word.forms:
            yield from self._by_word.get(form, ())
            yield from self._by_start.get(form[:_START], ())
        yield from self._anywhere


def _matches_at(term: Term, stream: Sequence[Word], start: int) -> bool:
    if start + len(term.words) > len(stream):
        return False
    return all(_matches(p, stream[start + k]) for k, p in enumerate(term.words))
