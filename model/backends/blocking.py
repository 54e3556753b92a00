"""Phrases blocked at decoding, as the token sequences a backend bans.

A phrase is banned in its usual casings ("fuck", "Fuck", "FUCK"; "Son Of A Bitch" too for a
phrase) as the tokenizer writes each at a word start (T5's SentencePiece: "▁", "f", "uck"),
so the model cannot write those tokens in a row. What stays possible, and is left to the
content filter on the finished text: other token paths to the same letters ("▁", "fu", "ck"),
the phrase inside a longer word ("motherfuck" has no word start at "fuck"), or after
punctuation without a space.

Backends ban differently: transformers and ONNX Runtime take token ids (transformers'
`NoBadWordsLogitsProcessor`: a one-token sequence is masked at every step, a longer one only
when the tokens before its last one were just written), CTranslate2 takes token strings
(`suppress_sequences`). Nothing here imports torch.
"""

from __future__ import annotations

from typing import Any


def casings(phrase: str) -> tuple[str, ...]:
    """`phrase` as people usually write it: lower case, capitalised, title case, upper case."""
    lower = phrase.lower()
    return tuple(dict.fromkeys((lower, lower[:1].upper() + lower[1:], lower.title(), lower.upper())))


def banned_ids(tokenizer: Any, phrases: tuple[str, ...]) -> list[list[int]]:
    """The token id sequences that write `phrases` (every casing, with and without a space
    before), without duplicates; sequences with an unknown token are left out (they would ban
    the unknown token, not the phrase)."""
    unknown = getattr(tokenizer, "unk_token_id", None)
    found: dict[tuple[int, ...], None] = {}
    for phrase in phrases:
        for text in casings(phrase):
            for spaced in (text, " " + text):
                ids = tuple(tokenizer(spaced, add_special_tokens=False)["input_ids"])
                if ids and unknown not in ids:
                    found[ids] = None
    return [list(ids) for ids in found]


class BanCache:
    """`banned_ids` of one tokenizer, computed once per phrase set (a backend sees one or two:
    none, and the family chats' list)."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._known: dict[tuple[str, ...], list[list[int]]] = {}

    def ids(self, phrases: tuple[str, ...]) -> list[list[int]]:
        """The banned id sequences for `phrases` (empty for none)."""
        if not phrases:
            return []
        if phrases not in self._known:
            self._known[phrases] = banned_ids(self._tokenizer, phrases)
        return self._known[phrases]

    def tokens(self, phrases: tuple[str, ...]) -> list[list[str]]:
        """The same sequences as token strings (CTranslate2's `suppress_sequences`)."""
        return [self._tokenizer.convert_ids_to_tokens(ids) for ids in self.ids(phrases)]
