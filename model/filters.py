"""Filters for generated punchlines: echoes of the setup, empty answers and repeats.

The untuned model's failure mode is echoing the setup ("Jared from Subway was caught up in
..."); these checks are shared by the worker (to drop such candidates) and by evaluation (to
measure how often it happens).
"""

from __future__ import annotations

import re

from model.text import clean_text

_WORD = re.compile(r"[\w']+", re.UNICODE)
ECHO_THRESHOLD = 0.6


def words(text: str) -> list[str]:
    """Lower-cased word tokens, punctuation dropped."""
    return [w.lower() for w in _WORD.findall(clean_text(text))]


def echo_ratio(setup: str, reply: str) -> float:
    """The share of the reply's words that already stand in the setup (0 for an empty reply)."""
    reply_words = words(reply)
    if not reply_words:
        return 0.0
    setup_words = set(words(setup))
    return sum(w in setup_words for w in reply_words) / len(reply_words)


def is_echo(setup: str, reply: str, threshold: float = ECHO_THRESHOLD) -> bool:
    """Whether the reply mostly repeats the setup."""
    return echo_ratio(setup, reply) >= threshold


def is_empty(reply: str) -> bool:
    """Whether the reply has no word in it at all."""
    return not words(reply)


def dedupe_key(reply: str) -> str:
    """Replies with the same key say the same thing (case and punctuation ignored)."""
    return " ".join(words(reply))


def keep_candidate(setup: str, reply: str, seen: set[str]) -> bool:
    """Whether a candidate survives the filters; records it in `seen` when it does."""
    if is_empty(reply) or is_echo(setup, reply):
        return False
    key = dedupe_key(reply)
    if key in seen:
        return False
    seen.add(key)
    return True
