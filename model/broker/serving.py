"""`BrokerWorker`: what `punchline worker` runs. It pulls requests from the broker into a local
`InferenceWorker` and posts the replies.

    worker = BrokerWorker(settings)            # or BrokerWorker(settings, loader=...) in tests
    await worker.run(stop)                     # until `stop` is set (SIGTERM), then cleanly out

The loop, one step after another:
- pull: when the local batcher is free, read up to `max_batch_size` new requests of every
  version it serves (XREADGROUP, blocking a second at most, so a lone request is answered at
  once) — never more, never ahead (no prefetch: nothing waits behind a busy GPU);
- serve: an expired request is answered "expired" without compute; the rest go to the local
  worker together (one batch); each answer is replied, acknowledged and deleted in one step
  (`scripts.COMPLETE`);
- claim: requests delivered to a worker whose heartbeat expired are claimed (never with zero
  idle time: a live worker's requests are never taken); one delivered `max_deliveries` times
  is answered "failed" and copied to the dead-letter stream.

Heartbeats say which versions this worker serves (admission routes only to live versions);
reloads follow the desired set in the broker (`model.broker.fleet`). SIGTERM: stop pulling,
finish the batch in flight, answer what was taken but not started with a retryable "closed".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError, ResponseError

from config.settings import Settings
from model.backends.base import BackendLoader
from model.broker.connection import Client, connect
from model.broker.exposition import metrics_server
from model.broker.fleet import AdapterSource, DesiredSet, Fleet, WorkerAnswer, unpack_adapter
from model.broker.keys import GROUP, Keys
from model.broker.messages import Reply, Request, Status, now_ms, status_of
from model.broker.meters import QueueFigures, WorkerMeters
from model.broker.scripts import Scripts
from model.generation import GenerationParams
from model.safety import blocked_phrases
from model.types import AdapterError, GenerationError, PunchlineError
from model.worker import InferenceWorker

log = logging.getLogger(__name__)

PULL_BLOCK_MS = 1000
REPLY_TTL_MS = 3_600_000  # a reply stream nobody reads (its bot died) goes after an hour
MAX_ENTRY_AGE_MS = 600_000  # admission trims request entries older than this (any deadline)
RETRY_S = 1.0


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class BrokerWorker:
    """One `punchline worker` process."""

    def __init__(
        self, settings: Settings, *, loader: BackendLoader | None = None, worker_id: str | None = None
    ):
        if loader is None:
            from model.backends import load_backend

            loader = functools.partial(load_backend, settings.model, settings.worker)
        self.settings = settings
        self.broker = settings.broker
        self.loader = loader
        self.id = worker_id or new_worker_id()
        self.keys = Keys(settings.broker.namespace)
        self.client: Client = connect(settings.broker)
        self.blocking: Client = connect(settings.broker, blocking_s=PULL_BLOCK_MS / 1000 + 1)
        self.raw: Client = connect(settings.broker, text=False)
        self.scripts = Scripts.register(self.client)
        self.fleet = Fleet(self.client, self.keys, self.raw)
        self.local: InferenceWorker | None = None
        self.sources: dict[str, AdapterSource] = {}  # version -> where it came from
        self.generation = 0
        self.state = "starting"
        self.healthy = False  # once one real generation succeeded
        self.started_ms = now_ms()
        self.replies: dict[str, int] = {}  # status -> count
        self._sync_lock = asyncio.Lock()
        self._last_claim = 0.0
        self._in_flight = 0
        self.queues: dict[str, QueueFigures] = {}
        self.meters = WorkerMeters(
            lambda: self.queues,
            lambda: self.replies,
            lambda: self._in_flight,
            lambda: self.local.stats().tokens_per_s if self.local is not None else 0.0,
            lambda: self.healthy,
        )

    # -- life cycle -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set (with `/metrics` and `/healthz` when configured). Raises
        `ModelLoadError`/`AdapterError` when the models the desired set names cannot be loaded
        at start."""
        async with metrics_server(self.settings.metrics, self.meters.registry, self.health):
            await self._run(stop)

    def health(self) -> tuple[bool, dict[str, object]]:
        """Healthy once one real generation succeeded (a loaded model that cannot generate is
        not healthy)."""
        return self.healthy, {"worker": self.id, "state": self.state, "versions": list(self.served)}

    async def _run(self, stop: asyncio.Event) -> None:
        desired = await self._wait_for_broker(stop)
        if desired is None:
            return
        await self._start_local(desired)
        tasks = [
            asyncio.create_task(self._heartbeats(stop), name="heartbeats"),
            asyncio.create_task(self._follow_reloads(stop), name="reloads"),
        ]
        log.info("worker %s serving %s on %s", self.id, ", ".join(self.served), self._backend_name())
        try:
            await self._pull_loop(stop)
        finally:
            self.state = "stopping"
            await self._close_local()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._leave()
            for client in (self.client, self.blocking, self.raw):
                with contextlib.suppress(Exception):
                    await client.aclose()
            log.info(
                "worker %s stopped (%s)",
                self.id,
                ", ".join(f"{k} {v}" for k, v in sorted(self.replies.items())),
            )

    @property
    def served(self) -> tuple[str, ...]:
        return self.local.versions if self.local is not None else ()

    def _backend_name(self) -> str:
        return self.local.backend_name if self.local is not None else "none"

    async def _wait_for_broker(self, stop: asyncio.Event) -> DesiredSet | None:
        """The desired set, once Redis answers (waiting for it to come up); None if stopped."""
        while not stop.is_set():
            try:
                desired = await self.fleet.desired()
                return desired or await self.fleet.initialise(self._configured_sources())
            except (RedisError, OSError) as exc:
                log.warning("worker %s: the broker does not answer (%s); retrying", self.id, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_S)
        return None

    def _configured_sources(self) -> list[AdapterSource]:
        """This worker's own settings as a desired set (when the broker has none yet)."""
        from model.adapter_meta import AdapterMetadata

        dirs = [self.settings.model.adapter, *self.settings.model.extra_adapters]
        if dirs[0] is None:
            return [AdapterSource.base()]
        return [
            AdapterSource(AdapterMetadata.load(d).version, "path", path=str(d)) for d in dirs if d is not None
        ]

    async def _start_local(self, desired: DesiredSet) -> None:
        dirs = [await self._local_dir(a) for a in desired.adapters]
        self.local = InferenceWorker(
            self.loader,
            GenerationParams.from_settings(self.settings.model),
            self.settings.worker,
            adapter_dir=dirs[0],
            extra_adapters=[d for d in dirs[1:] if d is not None],
            max_setup_chars=self.settings.model.max_setup_chars,
            blocked=blocked_phrases(self.settings.safety),
        )
        await self.local.start()
        self.sources = {a.version: a for a in desired.adapters}
        self.generation = desired.generation
        await self._ensure_groups()
        self.state = "serving"
        await self._heartbeat()

    async def _close_local(self) -> None:
        if self.local is not None:
            await self.local.close()

    async def _leave(self) -> None:
        """Take this worker out of routing at once (not only when its heartbeat expires)."""
        with contextlib.suppress(RedisError, OSError):
            async with self.client.pipeline(transaction=False) as pipe:
                for version in self.sources:
                    pipe.zrem(self.keys.live(version), self.id)
                pipe.delete(self.keys.worker(self.id))
                pipe.zrem(self.keys.workers, self.id)
                await pipe.execute()

    # -- adapters -----------------------------------------------------------------------------

    async def _local_dir(self, source: AdapterSource) -> Path | None:
        """A directory this machine can load `source` from (None: the base model)."""
        if source.kind == "base":
            return None
        if source.kind == "path":
            return Path(source.path)
        if source.kind == "blob":
            if not re.fullmatch(r"[0-9a-f]{64}", source.digest):  # it names a directory below
                raise AdapterError(
                    f"the desired set names an adapter by a malformed hash {source.digest[:20]!r}"
                )
            data = await self.fleet.download(source.digest)
            target = Path(self.settings.model.cache_dir) / "uploads" / source.digest
            return await asyncio.to_thread(unpack_adapter, data, source.digest, target)
        raise AdapterError(f"unknown adapter source {source.kind!r} for version {source.version}")

    async def sync(self) -> None:
        """Follow the desired set: load what is new, make the first current, drop the rest, and
        report to `punchline reload`."""
        async with self._sync_lock:
            desired = await self.fleet.desired()
            if desired is None:  # Redis lost its data (a restart): put ours back
                desired = await self.fleet.initialise(
                    [self.sources[v] for v in self.served if v in self.sources]
                )
            if desired.generation == self.generation and desired.versions == self.served:
                return
            answer = await self._apply(desired)
            self.generation = desired.generation
            await self.fleet.answer(desired.generation, answer)
            await self._ensure_groups()
            await self._heartbeat()

    async def _apply(self, desired: DesiredSet) -> WorkerAnswer:
        assert self.local is not None
        try:
            for source in desired.adapters:
                if source.version not in self.served:
                    loaded = await self.local.load_extra(await self._local_dir(source))
                    if loaded != source.version:
                        raise AdapterError(f"the adapter for {source.version} says it is version {loaded}")
                    self.sources[source.version] = source
            await self.local.make_current(desired.versions[0])
            for version in [v for v in self.served if v not in desired.versions]:
                await self.local.unload(version)
                await self.client.zrem(self.keys.live(version), self.id)
        except PunchlineError as exc:
            log.warning("worker %s could not follow reload %d: %s", self.id, desired.generation, exc)
            return WorkerAnswer(self.id, False, self.served, str(exc).splitlines()[0])
        log.info(
            "worker %s now serves %s (generation %d)", self.id, ", ".join(self.served), desired.generation
        )
        return WorkerAnswer(self.id, True, self.served)

    async def _follow_reloads(self, stop: asyncio.Event) -> None:
        """Reload on every "reload" event, and re-read the set every `resync_s` anyway (pub/sub
        loses what is published while a worker is disconnected)."""
        while not stop.is_set():
            pubsub = self.blocking.pubsub()
            try:
                await pubsub.subscribe(self.keys.events)
                next_sync = time.monotonic()
                while not stop.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                    if message is not None or time.monotonic() >= next_sync:
                        await self.sync()
                        next_sync = time.monotonic() + self.broker.resync_s
            except (RedisError, OSError) as exc:
                log.info("worker %s: reload listener lost the broker (%s)", self.id, exc)
                await asyncio.sleep(RETRY_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    # -- heartbeats -----------------------------------------------------------------------------

    def heartbeat_payload(self) -> dict[str, Any]:
        stats = self.local.stats() if self.local is not None else None
        return {
            "id": self.id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "state": self.state,
            "started_ms": self.started_ms,
            "versions": list(self.served),
            "generation": self.generation,
            "backend": self._backend_name(),
            "healthy": self.healthy,
            "replies": self.replies,
            "stats": {}
            if stats is None
            else {
                "requests": stats.requests,
                "failed": stats.failed,
                "timeouts": stats.timeouts,
                "batches": stats.batches,
                "mean_batch_size": round(stats.mean_batch_size, 2),
                "p50_latency_s": round(stats.p50_latency_s, 3),
                "p95_latency_s": round(stats.p95_latency_s, 3),
                "tokens_per_s": round(stats.tokens_per_s, 1),
                "queue_depth": stats.queue_depth,
            },
        }

    async def _heartbeat(self) -> None:
        ttl_ms = int(self.broker.worker_ttl_s * 1000)
        now = now_ms()
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.worker(self.id), json.dumps(self.heartbeat_payload()), px=ttl_ms)
            pipe.zadd(self.keys.workers, {self.id: now})
            for version in self.served if self.state == "serving" else ():
                pipe.zadd(self.keys.live(version), {self.id: now + ttl_ms})
            await pipe.execute()

    async def _heartbeats(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._heartbeat()
                self.queues = await self._queue_figures()
            except (RedisError, OSError) as exc:
                log.info("worker %s: heartbeat failed (%s)", self.id, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.broker.heartbeat_s)

    async def _queue_figures(self) -> dict[str, QueueFigures]:
        figures = {}
        now = now_ms()
        for version in self.served:
            stream = self.keys.requests(version)
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.xlen(stream)
                pipe.xpending(stream, GROUP)
                pipe.xrange(stream, count=1)
                depth, pending, oldest = await pipe.execute(raise_on_error=False)
            age = (
                (now - int(oldest[0][0].split("-")[0])) / 1000 if isinstance(oldest, list) and oldest else 0.0
            )
            waiting = int(pending.get("pending", 0)) if isinstance(pending, dict) else 0
            figures[version] = QueueFigures(
                int(depth) if isinstance(depth, int) else 0, waiting, max(0.0, age)
            )
        return figures

    # -- pulling and serving ----------------------------------------------------------------------

    async def _ensure_groups(self) -> None:
        for version in self.served:
            with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
                await self.client.xgroup_create(self.keys.requests(version), GROUP, id="0", mkstream=True)

    async def _pull_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                entries = await self._claim_due()
                entries += await self._read_new(block_ms=0 if entries else PULL_BLOCK_MS)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._ensure_groups()  # Redis restarted without its data
                continue
            except (RedisError, OSError) as exc:
                log.warning("worker %s: the broker does not answer (%s); retrying", self.id, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_S)
                continue
            if entries:
                await self.serve(entries)

    async def _read_new(self, block_ms: int) -> list[tuple[str, str, dict[str, str], int]]:
        """(stream, entry id, fields, times delivered before) of up to a batch of new requests."""
        streams = {self.keys.requests(v): ">" for v in self.served}
        if not streams:
            await asyncio.sleep(block_ms / 1000)
            return []
        found = await self.blocking.xreadgroup(
            GROUP, self.id, streams, count=self.settings.worker.max_batch_size, block=block_ms or None
        )
        return [
            (stream, entry_id, fields, 0) for stream, entries in found or [] for entry_id, fields in entries
        ]

    async def _claim_due(self) -> list[tuple[str, str, dict[str, str], int]]:
        """Requests of dead workers (heartbeat gone, idle past its TTL), claimed for this one."""
        interval = self.broker.worker_ttl_s / 2
        if time.monotonic() - self._last_claim < interval:
            return []
        self._last_claim = time.monotonic()
        idle_ms = int(self.broker.worker_ttl_s * 1000)
        claimed = []
        for version in self.served:
            stream = self.keys.requests(version)
            pending = await self.client.xpending_range(stream, GROUP, "-", "+", 100, idle=idle_ms)
            owners = sorted({str(p["consumer"]) for p in pending if p["consumer"] != self.id})
            alive = {o for o, beat in zip(owners, await self._beats(owners), strict=True) if beat}
            stale = [p for p in pending if p["consumer"] != self.id and p["consumer"] not in alive]
            if not stale:
                continue
            delivered = {p["message_id"]: int(p["times_delivered"]) for p in stale}
            got = await self.client.xclaim(stream, GROUP, self.id, idle_ms, list(delivered))
            for entry_id, fields in got:
                if fields:
                    claimed.append((stream, entry_id, fields, delivered.get(entry_id, 1)))
            if got:
                log.info("worker %s claimed %d request(s) of dead workers on %s", self.id, len(got), version)
        return claimed

    async def _beats(self, workers: Sequence[str]) -> list[str | None]:
        if not workers:
            return []
        return list(await self.client.mget([self.keys.worker(w) for w in workers]))

    async def serve(self, entries: Sequence[tuple[str, str, dict[str, str], int]]) -> None:
        """Answer a batch of stream entries (all at once, through the local batcher)."""
        self.meters.batch_size.observe(len(entries))
        self._in_flight += len(entries)
        try:
            await asyncio.gather(*(self._serve_one(*entry) for entry in entries))
        finally:
            self._in_flight -= len(entries)

    async def _serve_one(self, stream: str, entry_id: str, fields: dict[str, str], delivered: int) -> None:
        picked = now_ms()
        try:
            request = Request.parse(fields)
        except (KeyError, ValueError):
            log.warning("worker %s dropped a malformed request %s on %s", self.id, entry_id, stream)
            await self.client.xack(stream, GROUP, entry_id)
            await self.client.xdel(stream, entry_id)
            return
        if delivered >= self.broker.max_deliveries:
            await self._complete(
                stream,
                entry_id,
                request,
                Reply(
                    request.id,
                    Status.FAILED,
                    error="workers failed on this request repeatedly",
                    worker=self.id,
                ),
                dead=True,
            )
            return
        if request.expired(picked):
            await self._complete(
                stream,
                entry_id,
                request,
                Reply(request.id, Status.EXPIRED, error="the request expired in the queue", worker=self.id),
            )
            return
        await self._complete(stream, entry_id, request, await self._generate(request, picked))

    async def _generate(self, request: Request, picked_ms: int) -> Reply:
        assert self.local is not None
        deadline = time.monotonic() + (request.deadline_ms - now_ms()) / 1000
        queue_ms = max(0, picked_ms - request.sent_ms)
        try:
            lines = await self.local.punchlines(
                request.setup, request.n, deadline, request.version or None, safe=request.safe
            )
        except GenerationError as exc:
            status = status_of(exc)
            if status is Status.FAILED and "is not loaded" in str(exc):
                status = Status.UNKNOWN_VERSION
            return Reply(request.id, status, (), str(exc), self.id, queue_ms, now_ms() - picked_ms)
        self.healthy = True
        return Reply(request.id, Status.OK, tuple(lines), "", self.id, queue_ms, now_ms() - picked_ms)

    async def _complete(
        self, stream: str, entry_id: str, request: Request, reply: Reply, *, dead: bool = False
    ) -> None:
        """Reply, acknowledge and delete in one step (`scripts.COMPLETE`)."""
        dead_fields: list[str] = []
        if dead:
            dead_fields = [
                x for kv in {**request.fields(), "stream": stream, "entry": entry_id}.items() for x in kv
            ]
        reply_fields = [x for kv in reply.fields().items() for x in kv]
        try:
            await self.scripts.complete(
                keys=[request.reply_to, stream, self.keys.dead_letters],
                args=[GROUP, entry_id, REPLY_TTL_MS, len(dead_fields), *dead_fields, *reply_fields],
            )
        except (RedisError, OSError) as exc:
            # The entry stays pending: another worker claims it once this one's heartbeat goes,
            # or it expires; the caller meanwhile times out by its deadline. Nothing is lost.
            log.warning("worker %s could not post the reply to %s (%s)", self.id, request.id, exc)
            return
        self.replies[reply.status.value] = self.replies.get(reply.status.value, 0) + 1
        self.meters.latency.observe(max(0.0, (now_ms() - request.sent_ms) / 1000))
