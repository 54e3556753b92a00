"""`WordListFilter`, the default content filter: the word list matched on whole words of the
normalised text, both tiers flagged.

    words = WordListFilter(load_blocklist())          # the project's own list
    words.check("What a sh1t day")                    # Flag(True, ("shit",))
    words.check("Scunthorpe United won")              # Flag(False)

Needs no download and no model; about 20 µs a punchline (bench/safety.py).
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
    """Flags a text when a term of either tier stands in it (implements `ContentFilter`)."""

    name = "wordlist"

    def __init__(self, blocklist: Blocklist) -> None:
        self.blocklist = blocklist
        # Each term is found by its first word: plain words by their text, words with any
        # ending by their first letters, so a check tries a handful of terms per word rather
        # than the whole list. Only a first word with any beginning ("*fuck*") is tried at
        # every word.
        self._by_word: dict[str, list[Term]] = {}
        self._by_start: dict[str, list[Term]] = {}
        self._anywhere: list[Term] = []
        for term in blocklist.terms:
            first = term.words[0]
            if first.any_before:
                self._anywhere.append(term)
            elif first.any_after:
                self._by_start.setdefault(first.text[:_START], []).append(term)
            else:
                self._by_word.setdefault(first.text, []).append(term)

    def check(self, text: str) -> Flag:
        """Flagged when any term matches; `terms` lists them as the list writes them."""
        stream = words(text)
        found = {
            term.source: None
            for i, word in enumerate(stream)
            for term in self._starting_with(word)
            if _matches_at(term, stream, i)
        }
        return Flag(bool(found), tuple(found))

    def _starting_with(self, word: Word) -> Iterator[Term]:
        if word.mask is not None:  # rare: try every term against the pattern
            yield from self.blocklist.terms
            return
        for form in word.forms:
            yield from self._by_word.get(form, ())
            yield from self._by_start.get(form[:_START], ())
        yield from self._anywhere


def _matches_at(term: Term, stream: Sequence[Word], start: int) -> bool:
    if start + len(term.words) > len(stream):
        return False
    return all(_matches(p, stream[start + k]) for k, p in enumerate(term.words))
