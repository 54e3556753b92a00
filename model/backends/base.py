"""What the worker needs from a backend; nothing here imports torch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from model.generation import Candidate, GenerationParams


@runtime_checkable
class Backend(Protocol):
    """A loaded model (base plus at most one adapter) that decodes batches of prompts.

    `generate` is synchronous and slow: the worker calls it from its single model thread, never
    from the event loop. It returns, for each prompt, exactly `n` candidates.
    """

    name: str  # e.g. "transformers-int8", "ctranslate2-int8"
    version: str  # adapter version id, or model.types.BASE_VERSION
    prompt_template: str  # the template the adapter learned with

    def generate(self, prompts: list[str], n: int, params: GenerationParams) -> list[list[Candidate]]:
        """`n` candidates for each prompt, in prompt order."""
        ...

    def close(self) -> None:
        """Free the model's memory; the backend is not used afterwards."""
        ...


# Loads a backend for an adapter directory (None: the base model alone). Runs in a worker thread.
BackendLoader = Callable[[Path | None], Backend]


@runtime_checkable
class Scorer(Protocol):
    """A backend that can score given replies (teacher forcing), for `punchline eval`."""

    def score(self, prompts: list[str], targets: list[str]) -> list[tuple[float, int]]:
        """(summed log-probability, token count) of each target after its prompt, the end
        token included: the gold-punchline loss is minus the sum over the count."""
        ...
