"""A scripted `model.types.Generator` for bot tests: no model, fully controlled.

gen = FakeGenerator(["Because it was there."])   # answers in turn, the last one repeats
gen.fail_next(WorkerBusy("queue full"))           # the next call raises this
gen.block()                                        # calls wait until gen.unblock()
await gen.reload(Path("adapters/v2"))              # serves "v2" (the directory's name) now
gen.fail_reload(AdapterError("no punchline.json")) # the next reload raises, version unchanged
gen.calls[-1].safe                                 # whether the last call was a family chat's
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from model.types import BASE_VERSION, Punchline, WorkerClosed, WorkerStats

# A blocked call gives up after this long (real seconds), so a test that forgets to unblock
# fails with a clear error instead of hanging until pytest-timeout.
BLOCK_LIMIT_S = 120.0


@dataclass(frozen=True, slots=True)
class Call:
    setup: str
    n: int
    deadline: float | None
    version: str | None
    safe: bool = False


class FakeGenerator:
    """Implements `model.types.Generator`; records every call."""

    def __init__(self, answers: Iterable[str] = ("Because it was there.",), version: str = BASE_VERSION):
        self._answers = list(answers)
        self._next = 0
        self.version = version
        self.calls: list[Call] = []
        self._failures: deque[BaseException] = deque()
        self._reload_failures: deque[BaseException] = deque()
        self.reloads: list[Path] = []  # every adapter directory reload() was asked for
        self._gate = asyncio.Event()
        self._gate.set()
        self.waiting = 0  # calls blocked at the gate right now
        self.closed = False
        self.started = False

    # -- scripting --------------------------------------------------------------------------------

    def fail_next(self, *errors: BaseException) -> None:
        """The next calls raise these, in order."""
        self._failures.extend(errors)

    def answer_with(self, *answers: str) -> None:
        """Replace the scripted answers."""
        self._answers = list(answers)
        self._next = 0

    def fail_reload(self, *errors: BaseException) -> None:
        """The next reload() calls raise these, in order, and keep the current version."""
        self._reload_failures.extend(errors)

    def block(self) -> None:
        """Calls wait (after being recorded) until `unblock()`."""
        self._gate.clear()

    def unblock(self) -> None:
        self._gate.set()

    # -- Generator --------------------------------------------------------------------------------

    async def punchlines(
        self,
        setup: str,
        n: int = 1,
        deadline: float | None = None,
        version: str | None = None,
        *,
        safe: bool = False,
    ) -> list[Punchline]:
        self.calls.append(Call(setup, n, deadline, version, safe))
        if self.closed:
            raise WorkerClosed("the fake generator is closed")
        self.waiting += 1
        try:
            await asyncio.wait_for(self._gate.wait(), BLOCK_LIMIT_S)
        except TimeoutError:
            raise TimeoutError(
                f"FakeGenerator stayed blocked for {BLOCK_LIMIT_S} s: never unblocked"
            ) from None
        finally:
            self.waiting -= 1
        if self.closed:  # like the real worker: close() answers every waiting request
            raise WorkerClosed("the fake generator closed while this request waited")
        if self._failures:
            raise self._failures.popleft()
        out = []
        for _ in range(n):
            if not self._answers:
                break
            text = self._answers[min(self._next, len(self._answers) - 1)]
            self._next += 1
            out.append(Punchline(text, version or self.version, score=-1.0))
        return out

    def stats(self) -> WorkerStats:
        return WorkerStats(
            version=self.version,
            backend="fake",
            queue_depth=self.waiting,
            requests=len(self.calls),
            failed=0,
            busy_rejections=0,
            timeouts=0,
            batches=len(self.calls),
            mean_batch_size=1.0,
            p50_latency_s=0.01,
            p95_latency_s=0.02,
            tokens_per_s=100.0,
            versions=(self.version,),
        )

    @property
    def versions(self) -> tuple[str, ...]:
        return (self.version,)

    # -- Reloadable (like InferenceWorker.reload) --------------------------------------------------

    async def reload(self, adapter_dir: Path) -> str:
        """Serve the "adapter" in `adapter_dir`: its version id is the directory's name."""
        self.reloads.append(Path(adapter_dir))
        if self.closed:
            raise WorkerClosed("the fake generator is closed")
        if self._reload_failures:
            raise self._reload_failures.popleft()
        self.version = Path(adapter_dir).name
        return self.version

    # -- worker lifecycle (like model.worker.InferenceWorker) --------------------------------------

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        """Answer every waiting call with WorkerClosed, refuse new ones."""
        self.closed = True
        self.unblock()


class VersionedGenerator(FakeGenerator):
    """A fake generator with several adapter versions loaded; each answers in its own words."""

    def __init__(self, versions: tuple[str, ...]):
        super().__init__(["unused"], version=versions[0])
        self._versions = versions

    async def punchlines(self, setup, n=1, deadline=None, version=None, *, safe=False):  # type: ignore[no-untyped-def]
        lines = await super().punchlines(setup, n, deadline, version, safe=safe)
        return [type(p)(f"{p.version} says: because reasons", p.version, p.score) for p in lines]

    @property
    def versions(self) -> tuple[str, ...]:
        return self._versions


class PlainGenerator:
    """A Generator that cannot reload (a remote worker, say): punchlines only."""

    def __init__(self) -> None:
        self._inner = FakeGenerator(version="v7")

    async def punchlines(
        self,
        setup: str,
        n: int = 1,
        deadline: float | None = None,
        version: str | None = None,
        *,
        safe: bool = False,
    ) -> list[Punchline]:
        return await self._inner.punchlines(setup, n, deadline, version, safe=safe)

    @property
    def calls(self) -> list[Call]:
        return self._inner.calls

    def stats(self) -> WorkerStats:
        return self._inner.stats()

    @property
    def versions(self) -> tuple[str, ...]:
        return self._inner.versions
