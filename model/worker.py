"""The in-process inference worker: a bounded queue, a micro-batcher and one model thread.

docs/DESIGN.md, decision 6, as code:
- `punchlines()` checks the request, puts it on a bounded queue and waits until its deadline.
  A full queue raises `WorkerBusy` at once.
- One batcher task takes the first queued request and everything else already waiting (up to
  `max_batch_size`): requests pile up while the model is busy and go together next time, and
  a lone request never waits for company. A batch splits by (version, safe): one backend call
  decodes one version with one setting, and a family chat's request (`safe=True`) never shares
  a call with one that may write what it blocks (`blocked`, the severe phrases).
- The backend runs in its own single thread (`run_in_executor`), so the event loop never
  blocks. Identical setups in one batch are generated once; a batch that fails fails only its
  own requests; an expired request is dropped before it costs any compute.
- `reload()` loads a new adapter in a second thread beside the serving one and swaps it in
  between batches; the batch in flight finishes on the old version. A failed load leaves the
  old version serving and raises `AdapterError` saying why.
- `close()` answers every queued request with `WorkerClosed`, lets the batch in flight finish,
  and frees the models.

Importing this module does not import torch: backends are loaded by the injected loader.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from config.errors import PunchlineError
from config.settings import WorkerSettings
from model.backends.base import Backend, BackendLoader
from model.generation import GenerationParams, check_request, rank_candidates
from model.metrics import WorkerMetrics, describe
from model.prompt import build_prompt
from model.types import (
    AdapterError,
    DeadlineExceeded,
    GenerationError,
    ModelLoadError,
    Punchline,
    WorkerBusy,
    WorkerClosed,
    WorkerStats,
)

if TYPE_CHECKING:  # pragma: no cover
    from config.settings import Settings

log = logging.getLogger(__name__)

_STOP = object()  # queued by close() to end the batcher after the batch in flight


@dataclass(eq=False)
class _Request:
    setup: str  # normalised
    n: int
    deadline: float
    version: str | None  # None: whatever is current when its batch forms
    future: asyncio.Future[list[Punchline]]
    enqueued: float
    safe: bool = False  # a family chat's: the blocked phrases are banned at decoding
    abandoned: bool = field(default=False)  # the caller stopped waiting (deadline, cancel)


class InferenceWorker:
    """Serves `punchlines()` from a backend behind a bounded queue (implements `Generator`)."""

    def __init__(
        self,
        loader: BackendLoader,
        params: GenerationParams,
        settings: WorkerSettings,
        *,
        adapter_dir: Path | None = None,
        extra_adapters: Sequence[Path] = (),
        max_setup_chars: int = 300,
        blocked: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loader = loader
        self._params = params
        # What a safe request decodes with: the same, never writing the blocked phrases.
        self._safe_params = params.with_(blocked=tuple(blocked))
        self._settings = settings
        self._adapter_dir = adapter_dir
        self._extra_adapters = tuple(extra_adapters)
        self._max_setup_chars = max_setup_chars
        self._clock = clock
        self._queue: asyncio.Queue[_Request | object] = asyncio.Queue(maxsize=settings.queue_size)
        self._backends: dict[str, Backend] = {}
        self._current: str | None = None
        self._loaded_at: datetime | None = None
        self._metrics = WorkerMetrics()
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="punchline-model")
        self._load_thread = ThreadPoolExecutor(1, thread_name_prefix="punchline-load")
        self._reload_lock = asyncio.Lock()
        self._batcher: asyncio.Task[None] | None = None
        self._running: list[_Request] = []  # the batch being decoded
        self._stats_logger: asyncio.Task[None] | None = None
        self._pending_closes: set[asyncio.Future[None]] = set()
        self._started = False
        self._closed = False

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the configured model and extra adapters, then start batching.

        Raises `ModelLoadError` or `AdapterError` when a model cannot be loaded.
        """
        if self._closed:
            raise WorkerClosed("the worker has been closed")
        if self._started:
            return
        backend = await self._load(self._model_thread, self._adapter_dir, None)
        self._install(backend, make_current=True)
        for extra in self._extra_adapters:
            self._install(await self._load(self._model_thread, extra, AdapterError), make_current=False)
        if self._closed:  # close() ran while the models were loading; it freed what it found
            for loaded in self._backends.values():
                loaded.close()  # cheap: drops the model; the executors may be shut down already
            self._backends.clear()
            self._current = None
            raise WorkerClosed("the worker was closed while it was starting")
        self._batcher = asyncio.create_task(self._batch_loop(), name="punchline-batcher")
        if self._settings.stats_log_s > 0:
            self._stats_logger = asyncio.create_task(self._log_stats(), name="punchline-stats")
        self._started = True
        log.info("worker serving version %s on %s", backend.version, backend.name)

    async def close(self) -> None:
        """Answer every queued request with `WorkerClosed`, finish the batch in flight, free
        the models."""
        if self._closed:
            return
        self._closed = True
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, _Request):
                self._fail(item, WorkerClosed("the worker is shutting down; try again later"))
        finished = await self._stop_batcher()
        if self._stats_logger is not None:
            self._stats_logger.cancel()
        loop = asyncio.get_running_loop()
        if finished:  # else the model thread is still busy: the process is leaving anyway
            for backend in self._backends.values():
                await loop.run_in_executor(self._model_thread, backend.close)
        self._backends.clear()
        self._current = None
        self._model_thread.shutdown(wait=False, cancel_futures=True)
        self._load_thread.shutdown(wait=False, cancel_futures=True)

    async def _stop_batcher(self) -> bool:
        """Let the batch in flight finish for up to `close_timeout_s`; past that its requests
        get `WorkerClosed` and the batcher is dropped (a decode cannot be interrupted, and
        SIGTERM must end the process). True when it finished."""
        if self._batcher is None:
            return True
        self._queue.put_nowait(_STOP)  # the queue is empty now, so there is room
        done, _ = await asyncio.wait({self._batcher}, timeout=self._settings.close_timeout_s)
        if done:
            return True
        log.warning(
            "the batch in progress did not finish within %.0f s of closing; its %d request(s) "
            "are answered busy",
            self._settings.close_timeout_s,
            len(self._running),
        )
        self._batcher.cancel()
        for r in self._running:
            self._fail(r, WorkerClosed("the worker is shutting down; try again later"))
        return False

    async def __aenter__(self) -> InferenceWorker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the Generator interface ------------------------------------------------------------

    async def punchlines(
        self,
        setup: str,
        n: int = 1,
        deadline: float | None = None,
        version: str | None = None,
        *,
        safe: bool = False,
    ) -> list[Punchline]:
        """Up to `n` punchlines for `setup`, best first (see `model.types.Generator`); `safe`
        bans the blocked phrases at decoding.

        Raises `InvalidSetup`, `WorkerBusy` (at once, queue full), `DeadlineExceeded`,
        `WorkerClosed`, or `GenerationError` (unknown version, failed batch).
        """
        if self._closed or not self._started:
            raise WorkerClosed("the model worker is not running")
        text = check_request(setup, n, self._max_setup_chars)
        if version is not None and version not in self._backends:
            raise GenerationError(f"version {version!r} is not loaded (loaded: {', '.join(self.versions)})")
        now = self._clock()
        deadline = now + self._settings.timeout_s if deadline is None else deadline
        if deadline <= now:
            self._metrics.timeouts += 1
            raise DeadlineExceeded("the request's deadline had passed before it was queued")
        request = _Request(text, n, deadline, version, asyncio.get_running_loop().create_future(), now, safe)
        try:
            self._queue.put_nowait(request)
        except asyncio.QueueFull:
            self._metrics.busy_rejections += 1
            raise WorkerBusy("the model is busy right now; try again in a moment") from None
        try:
            return await asyncio.wait_for(asyncio.shield(request.future), deadline - self._clock())
        except TimeoutError:
            request.abandoned = True
            self._metrics.timeouts += 1
            raise DeadlineExceeded(
                f"no punchline within {deadline - now:.1f} s; the model is slow right now"
            ) from None
        except asyncio.CancelledError:
            request.abandoned = True
            raise

    def stats(self) -> WorkerStats:
        """Counters and latency figures since start."""
        backend = self._backends.get(self._current) if self._current else None
        return self._metrics.snapshot(
            version=self._current or "none",
            backend=backend.name if backend else "none",
            # Once closing, the queue holds no request any more (close() answered them all and
            # new ones are refused), only the batcher's stop marker: not a request to count.
            queue_depth=0 if self._closed else self._queue.qsize(),
            loaded_at=self._loaded_at,
            versions=self.versions,
        )

    @property
    def versions(self) -> tuple[str, ...]:
        """Loaded versions, the current one first."""
        rest = tuple(v for v in self._backends if v != self._current)
        return ((self._current,) if self._current else ()) + rest

    @property
    def backend_name(self) -> str:
        """The current backend's name, e.g. "ctranslate2-int8" ("none" before start)."""
        backend = self._backends.get(self._current) if self._current else None
        return backend.name if backend else "none"

    # -- adapters ---------------------------------------------------------------------------

    async def reload(self, adapter_dir: Path) -> str:
        """Load `adapter_dir` beside the serving model and make it current; return its version.

        Batches already running finish on the old version. On failure the old version keeps
        serving and `AdapterError` says why.
        """
        return await self._add(adapter_dir, make_current=True)

    async def load_extra(self, adapter_dir: Path | None) -> str:
        """Load another adapter version next to the current one (for battles between versions);
        None loads the base model alone (version "base")."""
        return await self._add(adapter_dir, make_current=False)

    async def make_current(self, version: str) -> None:
        """Serve the loaded `version` by default from the next batch on; the old current version
        stays loaded. Raises `GenerationError` for a version that is not loaded."""
        if version not in self._backends:
            raise GenerationError(f"version {version!r} is not loaded (loaded: {', '.join(self.versions)})")
        if version != self._current:
            self._current = version
            self._loaded_at = datetime.now(UTC)

    async def unload(self, version: str) -> None:
        """Drop a loaded version other than the current one."""
        if version == self._current:
            raise GenerationError("the current version cannot be unloaded; reload another first")
        backend = self._backends.pop(version, None)
        if backend is None:
            raise GenerationError(f"version {version!r} is not loaded")
        self._close_later(backend)

    async def _add(self, adapter_dir: Path | None, make_current: bool) -> str:
        if self._closed or not self._started:
            raise WorkerClosed("the model worker is not running")
        async with self._reload_lock:
            path = None if adapter_dir is None else Path(adapter_dir)
            backend = await self._load(self._load_thread, path, AdapterError)
            if self._closed:
                await asyncio.get_running_loop().run_in_executor(None, backend.close)
                raise WorkerClosed("the worker closed while the adapter was loading")
            self._install(backend, make_current)
        log.info("loaded version %s from %s (current: %s)", backend.version, adapter_dir, self._current)
        return backend.version

    async def _load(
        self,
        thread: ThreadPoolExecutor,
        adapter_dir: Path | None,
        error: type[PunchlineError] | None,
    ) -> Backend:
        """Run the loader in `thread`. Failures surface as `error` (None: keep the loader's
        AdapterError / ModelLoadError) with a one-line message; nothing else escapes."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(thread, self._loader, adapter_dir)
        except (AdapterError, ModelLoadError) as exc:
            if error is None or isinstance(exc, error):
                raise
            raise error(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - a loader bug must not take the worker down
            log.exception("loading %s failed", adapter_dir)
            raise (error or ModelLoadError)(
                f"cannot load {adapter_dir or 'the base model'}: {type(exc).__name__}: {exc}"
            ) from None

    def _install(self, backend: Backend, make_current: bool) -> None:
        """Put a loaded backend in place; runs on the loop, so it falls between batches."""
        replaced = self._backends.get(backend.version)
        old_current = self._current
        self._backends[backend.version] = backend
        if make_current or self._current is None:
            self._current = backend.version
            self._loaded_at = datetime.now(UTC)
            if old_current is not None and old_current != backend.version:
                old = self._backends.pop(old_current)
                self._close_later(old)
        if replaced is not None and replaced is not backend:
            self._close_later(replaced)

    def _close_later(self, backend: Backend) -> None:
        """Free a replaced backend in the model thread, i.e. after the batch now running."""
        future = asyncio.get_running_loop().run_in_executor(self._model_thread, backend.close)
        self._pending_closes.add(future)
        future.add_done_callback(self._pending_closes.discard)

    # -- batching ---------------------------------------------------------------------------

    async def _batch_loop(self) -> None:
        limit = self._settings.max_batch_size
        while True:
            first = await self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < limit and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._running = [r for r in batch if isinstance(r, _Request)]
            try:
                await self._run_batch(self._running)
            except Exception:  # noqa: BLE001 - the loop must outlive any one batch
                log.exception("batch failed unexpectedly")
                for r in batch:
                    if isinstance(r, _Request):
                        self._fail(r, GenerationError("generation failed; try again"))
            self._running = []
            if stop:
                return

    async def _run_batch(self, batch: list[_Request]) -> None:
        now = self._clock()
        groups: dict[tuple[str, bool], dict[str, list[_Request]]] = {}
        for r in batch:
            if r.abandoned or r.future.done():
                continue
            if r.deadline <= now:
                self._metrics.timeouts += 1
                self._fail(r, DeadlineExceeded("the request expired in the queue"))
                continue
            version = r.version or self._current or ""
            groups.setdefault((version, r.safe), {}).setdefault(r.setup, []).append(r)
        for (version, safe), by_setup in groups.items():
            await self._run_group(version, safe, by_setup)

    async def _run_group(self, version: str, safe: bool, by_setup: dict[str, list[_Request]]) -> None:
        """One backend call for the unique setups of one version and one safe setting."""
        requests = [r for reqs in by_setup.values() for r in reqs]
        backend = self._backends.get(version)
        if backend is None:
            for r in requests:
                self._fail(r, GenerationError(f"version {version!r} is no longer loaded"))
            return
        setups = list(by_setup)
        n = self._candidates(len(setups), max(r.n for r in requests))
        prompts = [build_prompt(s, backend.prompt_template) for s in setups]
        params = self._safe_params if safe else self._params
        started = self._clock()
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._model_thread, functools.partial(backend.generate, prompts, n, params)
            )
            if len(results) != len(prompts):
                raise RuntimeError(f"backend returned {len(results)} results for {len(prompts)} prompts")
        except Exception as exc:  # noqa: BLE001 - fail this batch only
            log.exception("batch of %d setups on %s failed", len(prompts), backend.name)
            for r in requests:
                self._fail(r, GenerationError(f"generation failed ({type(exc).__name__}); try again"))
            return
        tokens = sum(c.tokens for cands in results for c in cands)
        self._metrics.record_batch(len(requests), tokens, self._clock() - started)
        for setup, candidates in zip(setups, results):
            for r in by_setup[setup]:
                try:
                    self._succeed(r, rank_candidates(setup, candidates, r.n, backend.version))
                except GenerationError as exc:
                    self._fail(r, exc)

    def _candidates(self, setups: int, most_asked: int) -> int:
        """Candidates per setup for one backend call.

        Extra candidates for reranking (ModelSettings.candidates) are generated while a batch
        has room for them; under load they shrink so that a batch decodes about
        `max_batch_size` sequences, but never below what a request asked for.
        """
        wanted = self._params.candidates_for(most_asked)
        room = max(1, self._settings.max_batch_size // setups)
        return max(most_asked, min(wanted, room))

    def _succeed(self, r: _Request, punchlines: list[Punchline]) -> None:
        if r.abandoned or r.future.done():
            return
        self._metrics.record_success(self._clock() - r.enqueued)
        r.future.set_result(punchlines)

    def _fail(self, r: _Request, exc: GenerationError) -> None:
        if r.abandoned or r.future.done():
            return
        if not isinstance(exc, (WorkerClosed, DeadlineExceeded)):
            self._metrics.failed += 1
        r.future.set_exception(exc)

    async def _log_stats(self) -> None:
        while True:
            await asyncio.sleep(self._settings.stats_log_s)
            log.info(describe(self.stats()))


def create_worker(settings: Settings) -> InferenceWorker:
    """Build (not start) the worker for the configured model, adapter and backend, with the
    severe phrases of the configured word list blocked in safe requests.

    Raises `BlocklistError` when `PUNCHLINE_SAFETY__WORDLIST` names an unusable file.
    """
    from model.backends import load_backend
    from model.safety import blocked_phrases

    loader = functools.partial(load_backend, settings.model, settings.worker)
    return InferenceWorker(
        loader,
        GenerationParams.from_settings(settings.model),
        settings.worker,
        adapter_dir=settings.model.adapter,
        extra_adapters=settings.model.extra_adapters,
        max_setup_chars=settings.model.max_setup_chars,
        blocked=blocked_phrases(settings.safety),
    )


__all__ = ["InferenceWorker", "create_worker"]
