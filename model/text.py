"""The one rule for cleaning text that people (or a model) wrote, before it is stored, shown,
tokenised or compared.

`clean_text` is used by the bot core (setups), the battles (setups, entries, names), the chat
front-ends (display names) and the prompt (so training and inference see the same text):

- Unicode NFC, so "cafe" + combining accent and "café" are one text;
- whitespace of every kind (tabs, newlines, no-break and line separators, and the control
  characters Python counts as whitespace) becomes one space, runs collapse, ends are trimmed;
- control (Cc), format (Cf: bidi overrides and marks, zero-width space/joiner, soft hyphen),
  surrogate (Cs), private-use (Co) and unassigned (Cn) characters are dropped: they render
  invisibly or reverse what follows (a reply could be made to read as something else), and
  they only confuse the tokenizer. The price: a zero-width joiner inside an emoji sequence
  (👨‍👩‍👧) goes too, so such a sequence shows as its separate emoji.

The fast T5 tokenizer also adds a stray token before `</s>` on trailing whitespace, which the
trimming prevents. Nothing here imports torch.
"""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def clean_text(text: str) -> str:
    """`text` under the rule in the module docstring."""
    text = unicodedata.normalize("NFC", text)
    kept = (
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in _DROPPED_CATEGORIES
    )
    return _SPACE.sub(" ", "".join(kept)).strip()


_WORD = re.compile(r"[\w']+", re.UNICODE)


def same_text_key(text: str) -> str:
    """The key under which two texts are the same line (case, spacing and punctuation
    ignored): identical battle entries, repeated setups, a punchline "another one" gave."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))
