"""Generation parameters, raw candidates, and turning candidates into ranked punchlines.

Backends return `Candidate`s (text plus the model's own length-normalised log-probability);
`rank_candidates` drops echoes of the setup, empty and repeated answers (model.filters) and
orders the rest by score. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from config.settings import ModelSettings
from model.filters import dedupe_key, is_empty, keep_candidate
from model.text import clean_text
from model.types import GenerationError, InvalidSetup, Punchline

MAX_N = 16  # punchlines one request may ask for


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """How a backend decodes. `num_candidates` is the least it generates per setup."""

    max_new_tokens: int = 32
    min_new_tokens: int = 0
    do_sample: bool = True
    temperature: float = 0.9
    top_p: float = 0.95
    top_k: int = 50  # 0: no top-k cut
    repetition_penalty: float = 1.2
    no_repeat_ngram_size: int = 3
    num_candidates: int = 4
    # Phrases the backend must not write (family chats: `model.safety.blocked_phrases`), lower
    # case; each backend bans the token sequences of their usual casings (model.backends.blocking).
    blocked: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: ModelSettings) -> GenerationParams:
        """The parameters the configured model section asks for."""
        return cls(
            max_new_tokens=settings.max_new_tokens,
            min_new_tokens=min(settings.min_new_tokens, settings.max_new_tokens),
            do_sample=settings.do_sample,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=settings.top_k,
            repetition_penalty=settings.repetition_penalty,
            no_repeat_ngram_size=settings.no_repeat_ngram_size,
            num_candidates=settings.candidates,
        )

    def with_(self, **changes: Any) -> GenerationParams:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def candidates_for(self, n: int) -> int:
        """How many candidates to generate so that `n` good ones are likely to survive."""
        return max(n, self.num_candidates)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One decoded sequence: its text, length-normalised log-probability and token count."""

    text: str
    score: float
    tokens: int


def check_request(setup: str, n: int, max_setup_chars: int) -> str:
    """The normalised setup, or `InvalidSetup` saying what is wrong with the request."""
    if not isinstance(setup, str):
        raise InvalidSetup(f"a setup must be text, not {type(setup).__name__}")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise InvalidSetup(f"n must be a whole number from 1 to {MAX_N} (got {n!r})")
    text = clean_text(setup)
    if not text:
        raise InvalidSetup("the setup is empty: send a question to answer with a punchline")
    if len(text) > max_setup_chars:
        raise InvalidSetup(f"the setup is {len(text)} characters long; at most {max_setup_chars} are allowed")
    return text


def rank_candidates(setup: str, candidates: list[Candidate], n: int, version: str) -> list[Punchline]:
    """Up to `n` punchlines from `candidates`, best score first.

    Echoes of the setup, empty and repeated answers are dropped. When nothing survives, the
    best non-empty answers are used anyway (a weak punchline beats silence); only a batch of
    empty answers raises `GenerationError`.
    """
    ordered = sorted(candidates, key=lambda c: c.score, reverse=True)
    seen: set[str] = set()
    kept = [c for c in ordered if keep_candidate(setup, c.text, seen)]
    if not kept:
        seen.clear()
        for c in ordered:
            key = dedupe_key(c.text)
            if not is_empty(c.text) and key not in seen:
                seen.add(key)
                kept.append(c)
    if not kept:
        raise GenerationError("the model produced only empty replies; try another setup")
    return [Punchline(clean_text(c.text), version, float(c.score)) for c in kept[:n]]
