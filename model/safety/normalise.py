"""Text as the word list sees it: folded characters, then words with every spelling they may
stand for.

The list matches whole words and phrases of this stream, never substrings, so "Scunthorpe",
"assassin" and "therapist" stay clean. What the normaliser undoes, in order:

- characters: NFKD with the combining marks dropped ("ṡhit", "fück", full-width letters),
  invisible format characters dropped ("fu\\u200bck"), case folded, and the Cyrillic and Greek
  letters that look like Latin ones read as those ("сunt" with a Cyrillic "с");
- words: runs of letters, digits and the symbols leetspeak uses. Possessive "'s" and
  apostrophes go ("bitch's" is "bitch"); "!", "|", "+", "#" and "*" at a word's edges are
  punctuation ("*shit*", "#fuck", "shit!!!");
- spacing: three or more one-letter words in a row are one word ("f u c k", "f.u.c.k",
  "f-u-c-k"), since nobody spells an innocent word that way; "a" or "i" at either end of such
  a run may be the English word beside it ("a c-u-n-t"), so the word is read with and without
  them;
- leetspeak, in words that have a letter (a number stays a number): 0→o, 1→i or l, 3→e,
  4→a, 5→s, 7→t, 8→b, 9→g, @→a, $→s, !→i, |→l or i, +→t;
- elongation: a run of three or more of one letter may stand for one or two ("fuuuuck",
  "asssss"); doubles are left alone, since shortening them invents words ("rapped");
- masking: "*" or "#" inside a word stands for one letter each ("f*ck", "f**k", "a**hole")
  when at least two letters show; the list resolves such a word against its own words.

Pure Python, no state: it runs on every candidate punchline in the bot process.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass

# Letters of other scripts that render like Latin ones, the ones spam filters see used
# to dodge word lists (after case folding).
_CONFUSABLES = str.maketrans(
    {
        "а": "a",
        "е": "e",
        "о": "o",
        "р": "p",
        "с": "c",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "к": "k",
        "α": "a",
        "ο": "o",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "\u2019": "'",
        "\u2018": "'",
        "`": "'",
    }
)
_DROPPED = frozenset({"Mn", "Cf"})  # combining marks (accents), invisible format characters
_POSSESSIVE = re.compile(r"'s\b")
_TOKEN = re.compile(r"(?:[^\W_]|[@$!|+*#])+")
_EDGES = "!|+#*"
_MASKS = frozenset("*#")
_LEET = {
    "0": "o",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
    "8": "b",
    "9": "g",
    "@": "a",
    "$": "s",
    "!": "i",
    "+": "t",
}
# Characters with two readings: every word is read once with each ("sh1t", "1ick").
_AMBIGUOUS = ({"1": "i", "|": "l"}, {"1": "l", "|": "i"})
_RUN = re.compile(r"(.)\1{2,}")  # three or more of one character
MAX_RUNS = 4  # elongated runs read both ways; beyond this many, all short or all double
MIN_SHOWN = 2  # letters a masked word must show
_ONE_LETTER_WORDS = frozenset("ai")  # English words of one letter ("a", "I", folded)


@dataclass(frozen=True, slots=True)
class Word:
    """One word of the stream: the spellings it may stand for, or, for a masked word, a
    pattern ("f.ck") for the list to resolve."""

    forms: tuple[str, ...]
    mask: str | None = None


def fold(text: str) -> str:
    """`text` with accents, invisible characters, case and look-alike letters folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(ch for ch in decomposed if unicodedata.category(ch) not in _DROPPED)
    return kept.casefold().translate(_CONFUSABLES)


def raw_words(folded: str) -> list[tuple[str, ...]]:
    """The words of folded text, apostrophes and edge punctuation gone, spaced-out letters
    joined; each word as its spellings (one, or a joined run with and without the "a" or "i"
    at its ends)."""
    text = _POSSESSIVE.sub("", folded).replace("'", "")
    stripped = [t.strip(_EDGES) for t in _TOKEN.findall(text)]
    return _join_spaced([t for t in stripped if t])


def _join_spaced(tokens: list[str]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    run: list[str] = []
    for token in [*tokens, ""]:  # the empty sentinel ends the last run
        if len(token) == 1:
            run.append(token)
            continue
        out.extend([_run_spellings(run)] if len(run) >= 3 else [(letter,) for letter in run])
        run = []
        if token:
            out.append((token,))
    return out


def _run_spellings(run: list[str]) -> tuple[str, ...]:
    """A run of one-letter words joined, also without the one-letter English words at its
    ends, as long as three letters are left ("a c u n t": "acunt", "cunt")."""
    starts = (0, 1) if run[0] in _ONE_LETTER_WORDS else (0,)
    ends = (len(run), len(run) - 1) if run[-1] in _ONE_LETTER_WORDS else (len(run),)
    joined = ("".join(run[a:b]) for a in starts for b in ends if b - a >= 3)
    return tuple(dict.fromkeys(joined))


def words(text: str) -> list[Word]:
    """`text` as the stream of `Word`s the word list matches (see the module docstring)."""
    return [_either(spellings) for spellings in raw_words(fold(text))]


def _either(spellings: tuple[str, ...]) -> Word:
    """One `Word` that stands for what any of `spellings` may stand for."""
    if len(spellings) == 1:
        return read_word(spellings[0])
    read = [read_word(s) for s in spellings]
    forms = dict.fromkeys(form for word in read for form in word.forms)
    return Word(tuple(forms), next((w.mask for w in read if w.mask is not None), None))


def read_word(token: str) -> Word:
    """Every spelling one folded word may stand for."""
    if token.isalpha():  # most words: no leetspeak, no mask
        return Word(tuple(_shortened(token)))
    if not any(ch.isalpha() for ch in token):
        return Word((token,))  # a number, or symbols alone: no leetspeak to read
    if any(ch in _MASKS for ch in token):
        return _masked(token)
    readings = {_read_leet(token, table) for table in _AMBIGUOUS}
    forms = dict.fromkeys(form for reading in sorted(readings) for form in _shortened(reading))
    return Word(tuple(forms))


def _read_leet(token: str, ambiguous: dict[str, str]) -> str:
    return "".join(ambiguous.get(ch) or _LEET.get(ch) or ch for ch in token)


def _masked(token: str) -> Word:
    shown = sum(ch.isalpha() for ch in token)
    if shown < MIN_SHOWN:
        return Word(())  # "f***" could be anything
    letters = _read_leet(token.replace("*", "\x00").replace("#", "\x00"), _AMBIGUOUS[0])
    pattern = "".join("." if ch == "\x00" else re.escape(ch) for ch in letters)
    return Word((), pattern)


def _shortened(word: str) -> list[str]:
    """`word` with each run of three or more letters read as one and as two letters."""
    if _RUN.search(word) is None:
        return [word]
    runs = list(_RUN.finditer(word))
    if len(runs) > MAX_RUNS:
        return [_RUN.sub(r"\1", word), _RUN.sub(r"\1\1", word)]
    out = []
    for widths in itertools.product((1, 2), repeat=len(runs)):
        parts, last = [], 0
        for match, width in zip(runs, widths):
            parts += [word[last : match.start()], match.group(1) * width]
            last = match.end()
        out.append("".join(parts) + word[last:])
    return out
