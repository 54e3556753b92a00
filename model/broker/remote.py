"""`RemoteGenerator`: the bot side of the broker, the same `Generator` the in-process worker is,
so the core and the battles do not know which one they talk to.

    generator = RemoteGenerator(settings)
    await generator.start()
    lines = await generator.punchlines("Why?", n=1, deadline=time.monotonic() + 30)
    await generator.reload(Path("adapters/v2"))   # across the fleet (uploaded through Redis)
    await generator.close()

A call is admitted atomically (`scripts.ADMIT`: no live worker → `WorkerUnavailable` at once;
the version's stream full → `WorkerBusy` at once), then waits for its reply on this process's
reply stream, which one reader task matches to the waiting calls by request id; a late or
duplicate reply finds nobody waiting and is dropped (and counted). Every call resolves by its
deadline, with punchlines or a typed error, even when Redis or every worker is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from config.settings import Settings
from model.broker.connection import Client, connect
from model.broker.fleet import AdapterSource, Fleet, local_source
from model.broker.keys import Keys
from model.broker.messages import Reply, Request, now_ms
from model.broker.meters import BotMeters
from model.broker.scripts import Scripts
from model.broker.serving import MAX_ENTRY_AGE_MS
from model.generation import check_request
from model.types import (
    AdapterError,
    DeadlineExceeded,
    GenerationError,
    Punchline,
    WorkerBusy,
    WorkerClosed,
    WorkerStats,
    WorkerUnavailable,
)

log = logging.getLogger(__name__)

READ_BLOCK_MS = 1000
VIEW_REFRESH_S = 1.0
CLOSE_WAIT_S = 3.0


@dataclass(slots=True)
class FleetView:
    """What this bot process last saw of the fleet (refreshed every second)."""

    versions: tuple[str, ...] = ()  # served by a live worker, desired order (current first)
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)
    live: dict[str, int] = field(default_factory=dict)  # version -> live workers
    seen_at: float = 0.0


@dataclass(slots=True)
class CallCounts:
    """This process's calls by outcome, and replies nobody waited for any more."""

    outcomes: dict[str, int] = field(default_factory=dict)
    late_replies: int = 0

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


class RemoteGenerator:
    """Sends setups to `punchline worker` processes through Redis (implements `Generator` and
    `Reloadable`)."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.broker = settings.broker
        self.keys = Keys(settings.broker.namespace)
        self.bot_id = secrets.token_hex(8)
        self.reply_stream = self.keys.replies(self.bot_id)
        self.client: Client = connect(settings.broker)
        self.blocking: Client = connect(settings.broker, blocking_s=READ_BLOCK_MS / 1000 + 1)
        self.raw: Client = connect(settings.broker, text=False)
        self.scripts = Scripts.register(self.client)
        self.fleet = Fleet(self.client, self.keys, self.raw)
        self.view = FleetView()
        self.counts = CallCounts()
        self._clock = clock
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._first_view = asyncio.Event()  # start() waits for the first look at the fleet
        self._look_again = asyncio.Event()  # set when the fleet should be looked at now
        self._closed = False
        self.meters = BotMeters(
            lambda: self.counts.outcomes,
            lambda: self.counts.late_replies,
            lambda: len(self._pending),
            lambda: self.view.live,
            lambda: len(self.view.workers),
        )

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start reading replies and watching the fleet. A broker that does not answer yet is
        no error here: calls say "unavailable" until it does."""
        self._tasks = [
            asyncio.create_task(self._read_replies(), name="broker-replies"),
            asyncio.create_task(self._watch_fleet(), name="broker-fleet"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_view.wait(), self.broker.op_timeout_s)

    async def close(self) -> None:
        """Answer every waiting call with `WorkerClosed`, stop the tasks, close the connections;
        bounded in time whatever Redis does."""
        if self._closed:
            return
        self._closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(WorkerClosed("the bot is shutting down; try again later"))
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CLOSE_WAIT_S)
        for client in (self.client, self.blocking, self.raw):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(), CLOSE_WAIT_S)

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
        """Up to `n` punchlines for `setup` from a worker (see `model.types.Generator`); `safe`
        travels with the request, and the worker bans its blocked phrases at decoding.

        Raises `InvalidSetup`, `WorkerUnavailable` or `WorkerBusy` (at once), `DeadlineExceeded`,
        `WorkerClosed`, or `GenerationError` (an unknown version, a failed generation).
        """
        if self._closed:
            raise WorkerClosed("the bot is shutting down")
        text = check_request(setup, n, self.settings.model.max_setup_chars)
        started = self._clock()
        deadline = started + self.settings.worker.timeout_s if deadline is None else deadline
        left = deadline - started
        if left <= 0:
            raise DeadlineExceeded("the request's deadline had passed before it was sent")
        target = self._route(version)
        request = Request(
            secrets.token_hex(8),
            self.reply_stream,
            text,
            n,
            target,
            now_ms() + int(left * 1000),
            int(left * 1000),
            safe=safe,
        )
        future = asyncio.get_running_loop().create_future()
        self._pending[request.id] = future
        try:
            await self._admit(request, min(left, self.broker.op_timeout_s))
            reply = await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - self._clock()))
        except TimeoutError:
            self.counts.count("expired")
            raise DeadlineExceeded(
                f"no punchline within {left:.1f} s; the workers are slow right now"
            ) from None
        except GenerationError as exc:
            self.counts.count(type(exc).__name__)
            raise
        finally:
            self._pending.pop(request.id, None)
        self.counts.count(reply.status.value)
        self.meters.latency.observe(self._clock() - started)
        return reply.result()

    def _route(self, version: str | None) -> str:
        """The version a call goes to: the one asked for, else the current live one."""
        live = self.view.versions
        if version is None:
            if not live:
                self.counts.count("unavailable")
                raise WorkerUnavailable("no worker is serving right now; try again in a moment")
            return live[0]
        if version not in live:
            raise GenerationError(f"version {version!r} is not served (served: {', '.join(live) or 'none'})")
        return version

    async def _admit(self, request: Request, timeout_s: float) -> None:
        fields = [x for kv in request.fields().items() for x in kv]
        try:
            answer = await asyncio.wait_for(
                self.scripts.admit(
                    keys=[self.keys.live(request.version), self.keys.requests(request.version)],
                    args=[self.broker.max_waiting, MAX_ENTRY_AGE_MS, *fields],
                ),
                timeout_s,
            )
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("the broker did not take a request: %s", exc)
            raise WorkerUnavailable("the broker cannot be reached right now; try again in a moment") from None
        if answer[0] == "unavailable":
            self._look_again.set()  # look at the fleet again now
            raise WorkerUnavailable(f"no worker serves {request.version} right now; try again in a moment")
        if answer[0] == "busy":
            raise WorkerBusy("the workers are busy right now; try again in a moment")

    def stats(self) -> WorkerStats:
        """The fleet's figures as one `WorkerStats`, from the last heartbeats seen."""
        beats = list(self.view.workers.values())
        stats = [b.get("stats", {}) for b in beats]
        batches = sum(int(s.get("batches", 0)) for s in stats)
        return WorkerStats(
            version=self.view.versions[0] if self.view.versions else "none",
            backend=f"broker ({len(beats)} worker{'s' if len(beats) != 1 else ''})",
            queue_depth=sum(int(s.get("queue_depth", 0)) for s in stats),
            requests=sum(int(s.get("requests", 0)) for s in stats),
            failed=sum(int(s.get("failed", 0)) for s in stats),
            busy_rejections=self.counts.outcomes.get("WorkerBusy", 0),
            timeouts=sum(int(s.get("timeouts", 0)) for s in stats),
            batches=batches,
            mean_batch_size=(
                sum(float(s.get("mean_batch_size", 0)) * int(s.get("batches", 0)) for s in stats) / batches
                if batches
                else 0.0
            ),
            p50_latency_s=max((float(s.get("p50_latency_s", 0)) for s in stats), default=0.0),
            p95_latency_s=max((float(s.get("p95_latency_s", 0)) for s in stats), default=0.0),
            tokens_per_s=sum(float(s.get("tokens_per_s", 0)) for s in stats),
            versions=self.view.versions,
        )

    @property
    def versions(self) -> tuple[str, ...]:
        """Versions a live worker serves, the current one first."""
        return self.view.versions

    # -- reload across the fleet -----------------------------------------------------------------

    async def reload(self, adapter_dir: Path, *, upload: bool = True) -> str:
        """Make the adapter in `adapter_dir` current on every worker; its version id.

        The directory is read here and uploaded through the broker (checked by its hash), so
        workers need no shared file system (`upload=False` sends its path instead). Raises
        `AdapterError` when a worker could not load it (the others keep it; the message names
        each failure) and `WorkerUnavailable` when no worker is running.
        """
        version = await reload_fleet(self.fleet, adapter_dir, self.broker.reload_timeout_s, upload=upload)
        await self._refresh_view()
        return version

    async def load_extra(self, adapter_dir: Path | None) -> str:
        """Serve another version beside the current one on every worker (a challenger);
        errors as for `reload`."""
        if adapter_dir is None:
            source = AdapterSource.base()
        else:
            source = await _share(self.fleet, Path(adapter_dir), True)
        desired = await self.fleet.change(
            lambda adapters: (*(a for a in adapters if a.version != source.version), source)
        )
        await _await_fleet(self.fleet, desired.generation, source.version, self.broker.reload_timeout_s)
        await self._refresh_view()
        return source.version

    async def make_current(self, version: str) -> None:
        """Serve the loaded `version` by default everywhere (a promotion)."""
        desired = await self.fleet.desired()
        chosen = next((a for a in desired.adapters if a.version == version), None) if desired else None
        if chosen is None:
            raise GenerationError(f"version {version!r} is not in the fleet's desired set")
        new = await self.fleet.change(
            lambda adapters: (chosen, *(a for a in adapters if a.version != version))
        )
        await _await_fleet(self.fleet, new.generation, version, self.broker.reload_timeout_s)
        await self._refresh_view()

    async def unload(self, version: str) -> None:
        """Stop serving a version other than the current one everywhere (a retirement)."""
        desired = await self.fleet.desired()
        if desired is None or version not in desired.versions:
            raise GenerationError(f"version {version!r} is not in the fleet's desired set")
        if desired.versions[0] == version:
            raise GenerationError("the current version cannot be unloaded; promote another first")
        new = await self.fleet.change(lambda adapters: tuple(a for a in adapters if a.version != version))
        await _await_fleet(self.fleet, new.generation, desired.versions[0], self.broker.reload_timeout_s)
        await self._refresh_view()

    # -- background tasks --------------------------------------------------------------------------

    async def _read_replies(self) -> None:
        last = "0-0"
        while True:
            try:
                found = await self.blocking.xread({self.reply_stream: last}, count=256, block=READ_BLOCK_MS)
            except (RedisError, OSError) as exc:
                log.info("reading replies failed (%s); retrying", exc)
                await asyncio.sleep(0.5)
                continue
            ids = []
            for _stream, entries in found or []:
                for entry_id, fields in entries:
                    last = entry_id
                    ids.append(entry_id)
                    self._deliver(fields)
            if ids:
                with contextlib.suppress(RedisError, OSError):
                    await self.client.xdel(self.reply_stream, *ids)

    def _deliver(self, fields: dict[str, str]) -> None:
        try:
            reply = Reply.parse(fields)
        except (KeyError, ValueError):
            log.warning("dropped a malformed reply: %r", fields)
            return
        future = self._pending.get(reply.id)
        if future is None or future.done():
            self.counts.late_replies += 1  # its caller gave up (deadline) or it is a duplicate
            return
        future.set_result(reply)

    async def _watch_fleet(self) -> None:
        while True:
            self._look_again.clear()
            try:
                await self._refresh_view()
            except (RedisError, OSError) as exc:
                log.info("the fleet cannot be seen (%s)", exc)
                self.view = FleetView(seen_at=self._clock())
            self._first_view.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._look_again.wait(), VIEW_REFRESH_S)

    async def _refresh_view(self) -> None:
        desired = await self.fleet.desired()
        workers = await self.fleet.live_workers()
        offered = list(desired.versions if desired else ())
        offered += sorted({v for w in workers.values() for v in w.get("versions", [])} - set(offered))
        counts = await self.fleet.live_counts(offered)
        # Only once a live worker serves a version does the bot route to it.
        self.view = FleetView(
            tuple(v for v in offered if counts.get(v, 0) > 0), workers, counts, self._clock()
        )


async def reload_fleet(fleet: Fleet, adapter_dir: Path, timeout_s: float, *, upload: bool = True) -> str:
    """The reload `punchline reload` and /reload run: publish, wait for every live worker."""
    source = await _share(fleet, adapter_dir, upload)
    desired = await fleet.set_current(source)
    await _await_fleet(fleet, desired.generation, source.version, timeout_s)
    return source.version


async def _share(fleet: Fleet, adapter_dir: Path, upload: bool) -> AdapterSource:
    """The adapter as workers will find it (uploaded through Redis unless `upload` is off)."""
    source, data = await asyncio.to_thread(local_source, Path(adapter_dir), upload=upload)
    if data is not None:
        await fleet.upload(source.digest, data)
    return source


async def _await_fleet(fleet: Fleet, generation: int, version: str, timeout_s: float) -> None:
    """Wait until every live worker followed `generation`; `AdapterError` naming each failure,
    `WorkerUnavailable` when no worker runs."""
    outcome = await fleet.wait_for_answers(generation, version, timeout_s)
    if not outcome.answers and not outcome.missing:
        raise WorkerUnavailable(
            f"no worker is running; {version} is now in the desired set and workers load it when they start"
        )
    if not outcome.ok:
        problems = [f"{a.worker}: {a.error}" for a in outcome.answers if not a.ok]
        problems += [f"{w}: no answer within {timeout_s:.0f} s" for w in outcome.missing]
        raise AdapterError(f"{version} did not load everywhere: " + "; ".join(problems))
