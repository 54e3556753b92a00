"""The word list's file format, read into typed terms.

    # a comment (a whole line; blank lines are ignored too)
    [severe]               # slurs and the worst words: flagged, and blocked at decoding
    fuck*                  # a word and anything after it: fucks, fucking, fuckwit
    *fuck*                 # anything before and after: motherfucker, clusterfuck
    son of a bitch         # a phrase: these words in a row
    [offensive]            # flagged in family chats
    shit
    [allowed]              # clean phrases that hold a listed word: not flagged inside them
    moby dick

A term is one or more words of letters (a-z after folding accents and case, so "ṡhit" is
"shit"; hyphens separate words like spaces), each with an optional `*` at either end. A term
matches whole words of the normalised text (`model.safety.normalise`), never the inside of
one: `ass` does not match "assassin", `ass*` would. An `[allowed]` phrase clears the terms
that lie wholly inside it ("moby dick" leaves "Moby Dick's" clean, not "dick" elsewhere in the
text); it is never blocked at decoding either way. Every line belongs to the section above it.
The project's own list is `model/safety/blocklist.txt`; `PUNCHLINE_SAFETY__WORDLIST` names a
file in this format that replaces it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path

from model.safety.base import FilterError
from model.safety.normalise import fold

BUILT_IN = "blocklist.txt"
_WORD = re.compile(r"\*?[a-z]+\*?")
_SECTION = re.compile(r"\[\s*([^\]]*?)\s*\]")
# Endings tried at decoding for a word written with a trailing "*": the model cannot be stopped
# from writing "any letters", only from writing the words these make.
DECODE_ENDINGS = ("", "s", "ed", "er", "ers", "ing", "in")


class BlocklistError(FilterError):
    """The word list file cannot be read or is not in the format; the message names the file
    and the line."""


class Tier(StrEnum):
    SEVERE = "severe"  # also blocked at decoding in family chats
    OFFENSIVE = "offensive"
    ALLOWED = "allowed"  # clears the terms inside it; flags nothing


@dataclass(frozen=True, slots=True)
class Pattern:
    """One word of a term: letters, with any letters allowed before and/or after."""

    text: str
    any_before: bool = False
    any_after: bool = False

    def matches(self, form: str) -> bool:
        """Whether the spelling `form` of a word is this pattern."""
        if self.any_before and self.any_after:
            return self.text in form
        if self.any_before:
            return form.endswith(self.text)
        if self.any_after:
            return form.startswith(self.text)
        return form == self.text

    def matches_mask(self, mask: str) -> bool:
        """Whether a masked word ("f.ck": "." is one hidden letter) can spell this pattern."""
        n, m = len(self.text), len(mask)
        if self.any_before and self.any_after:
            starts: range | tuple[int, ...] = range(m - n + 1)
        elif self.any_before:
            starts = (m - n,)
        elif self.any_after:
            starts = (0,)
        else:
            starts = (0,) if m == n else ()
        return m >= n and any(_fits(mask[i : i + n], self.text) for i in starts)

    def decode_forms(self) -> tuple[str, ...]:
        """Concrete words this pattern blocks at decoding (see DECODE_ENDINGS)."""
        return tuple(self.text + ending for ending in DECODE_ENDINGS) if self.any_after else (self.text,)


def _fits(mask: str, text: str) -> bool:
    return all(m == "." or m == t for m, t in zip(mask, text))


@dataclass(frozen=True, slots=True)
class Term:
    """One line of the list: a word or a phrase, as written, and its tier."""

    source: str
    tier: Tier
    words: tuple[Pattern, ...]

    def decode_phrases(self) -> tuple[str, ...]:
        """The phrases this term blocks at decoding, lower-case ("fuck", "fucking", ...)."""
        forms = itertools.product(*(w.decode_forms() for w in self.words))
        return tuple(" ".join(parts) for parts in forms)


@dataclass(frozen=True, slots=True)
class Blocklist:
    """A parsed word list: `terms` flag (severe and offensive), `allowed` phrases clear the
    terms inside them; `origin` says where it came from, for messages."""

    terms: tuple[Term, ...]
    origin: str
    allowed: tuple[Term, ...] = ()

    def decode_phrases(self) -> tuple[str, ...]:
        """The severe tier as concrete lower-case phrases, for blocking at decoding."""
        found = (p for t in self.terms if t.tier is Tier.SEVERE for p in t.decode_phrases())
        return tuple(dict.fromkeys(found))


def load_blocklist(path: Path | None = None) -> Blocklist:
    """The list in `path` (the `PUNCHLINE_SAFETY__WORDLIST` file), or the project's own.

    Raises `BlocklistError` naming the file (and the line) when it cannot be read, is not
    UTF-8, breaks the format, or holds no term.
    """
    if path is None:
        text = resources.files("model.safety").joinpath(BUILT_IN).read_text(encoding="utf-8")
        return parse_blocklist(text, f"the built-in {BUILT_IN}")
    origin = f"PUNCHLINE_SAFETY__WORDLIST={path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BlocklistError(f"{origin}: the file is not UTF-8 text") from None
    except OSError as exc:
        raise BlocklistError(f"{origin}: cannot read the word list ({exc.strerror or exc})") from None
    return parse_blocklist(text, origin)


def parse_blocklist(text: str, origin: str) -> Blocklist:
    """The terms of a word list in the format above; `BlocklistError` for the first bad line."""
    terms: list[Term] = []
    allowed: list[Term] = []
    seen: set[tuple[Pattern, ...]] = set()
    tier: Tier | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{origin}, line {number}"
        section = _SECTION.fullmatch(line)
        if section:
            tier = _tier(section.group(1), where)
            continue
        if tier is None:
            raise BlocklistError(
                f"{where}: {line!r} comes before a [severe], [offensive] or [allowed] section"
            )
        words = _patterns(line, where)
        if words not in seen:  # a repeated term keeps its first tier
            seen.add(words)
            (allowed if tier is Tier.ALLOWED else terms).append(Term(" ".join(line.split()), tier, words))
    if not terms:
        raise BlocklistError(
            f"{origin}: the word list has no terms (it needs [severe] and/or [offensive] lines)"
        )
    return Blocklist(tuple(terms), origin, tuple(allowed))


def _tier(name: str, where: str) -> Tier:
    try:
        return Tier(name.lower())
    except ValueError:
        raise BlocklistError(
            f"{where}: unknown section [{name}]; use [severe], [offensive] or [allowed]"
        ) from None


def _patterns(line: str, where: str) -> tuple[Pattern, ...]:
    words = fold(line).replace("-", " ").split()
    bad = [w for w in words if not _WORD.fullmatch(w)]
    if bad:
        raise BlocklistError(
            f"{where}: {bad[0]!r} is not a word of a term (letters only, with * at either end)"
        )
    return tuple(Pattern(w.strip("*"), w.startswith("*"), w.endswith("*")) for w in words)
