"""What crosses the boundary between the model and the rest of Punchline.

Nothing here imports torch or a chat library: the bot core depends on these types only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from config.errors import PunchlineError

BASE_VERSION = "base"  # the version id of replies made by the base model without an adapter


@dataclass(frozen=True, slots=True)
class Punchline:
    """One generated punchline.

    `version` is the adapter version id that made it (or "base"); `score` is the model's own
    length-normalised log-probability, higher is better.
    """

    text: str
    version: str
    score: float


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """What an operator wants to know about the worker, readable by the bot's /stats."""

    version: str
    backend: str
    queue_depth: int
    requests: int
    failed: int
    busy_rejections: int
    timeouts: int
    batches: int
    mean_batch_size: float
    p50_latency_s: float
    p95_latency_s: float
    tokens_per_s: float
    loaded_at: datetime | None = None
    versions: tuple[str, ...] = field(default_factory=tuple)


class GenerationError(PunchlineError):
    """Generation failed for this request; the worker itself keeps serving."""


class InvalidSetup(GenerationError):
    """The setup cannot be a joke setup: empty, whitespace only, too long, or n out of range."""


class WorkerBusy(GenerationError):
    """The queue is full: try again in a moment. Raised at once, never after a wait."""


class WorkerUnavailable(GenerationError):
    """No worker serves the version right now (all down, or the broker unreachable): try again
    in a moment. Raised at once, never after a wait."""


class DeadlineExceeded(GenerationError):
    """The request's deadline passed before its punchline was ready."""


class WorkerClosed(GenerationError):
    """The worker is shutting down or stopped."""


class AdapterError(PunchlineError):
    """An adapter directory is missing, corrupt, or made for another base model."""


class ModelLoadError(PunchlineError):
    """The base model cannot be loaded (no weights, unknown id without network, bad backend)."""


@runtime_checkable
class Generator(Protocol):
    """The one async interface through which the bot asks for punchlines."""

    async def punchlines(
        self,
        setup: str,
        n: int = 1,
        deadline: float | None = None,
        version: str | None = None,
        *,
        safe: bool = False,
    ) -> list[Punchline]:
        """Up to `n` punchlines for `setup`, best first.

        `deadline` is a `time.monotonic()` instant; `version` picks a loaded adapter version
        (battles between versions), None means the current one. `safe` (a family chat) blocks
        the severe phrases of the word list at decoding where the backend can
        (`model.safety.blocked_phrases`); the replies still need the content filter, since
        decoding cannot block every spelling. Raises a `GenerationError`.
        """
        ...

    def stats(self) -> WorkerStats:
        """Counters and latency figures since start."""
        ...

    @property
    def versions(self) -> tuple[str, ...]:
        """Loaded versions, the current one first."""
        ...


@runtime_checkable
class Reloadable(Protocol):
    """A generator whose adapter can be replaced while it runs (the in-process worker)."""

    async def reload(self, adapter_dir: Path) -> str:
        """Load `adapter_dir` and make it current; return its version id.

        On failure the old version keeps serving and an `AdapterError` (or another
        `PunchlineError`) says why.
        """
        ...


@runtime_checkable
class AdapterHost(Protocol):
    """A generator that can serve several adapter versions and change which one is current
    (the in-process worker; the remote generator, across the fleet): how a challenger is
    served beside the current version, promoted, or retired."""

    async def load_extra(self, adapter_dir: Path | None) -> str:
        """Serve `adapter_dir` beside the current version (None: the base model); its version.
        Raises `AdapterError` when it cannot be loaded."""
        ...

    async def make_current(self, version: str) -> None:
        """Serve the loaded `version` by default. Raises `GenerationError` if it is not loaded."""
        ...

    async def unload(self, version: str) -> None:
        """Stop serving `version` (not the current one). Raises `GenerationError`."""
        ...
