"""The broker's promises with a real redis-server: a `BrokerWorker` and a `RemoteGenerator` in this
process, the worker over a fake backend the test controls."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bot.clock import ManualClock
from bot.coordination.lease import Lease
from bot.coordination.limits import SharedRateLimiter
from bot.core.limits import Admission
from bot.core.service import BotCore
from bot.core.texts import MSG_SLOW_DOWN
from bot.types import ChatKind, ChatRef, IncomingSetup, Platform, ReplyKind, UserRef
from config.settings import LimitSettings, Settings
from model.adapter_meta import AdapterMetadata
from model.broker.commands import format_status
from model.broker.connection import connect
from model.broker.keys import GROUP, Keys
from model.broker.messages import Reply, Request, Status, now_ms
from model.broker.remote import RemoteGenerator
from model.broker.scripts import Scripts
from model.broker.serving import MAX_ENTRY_AGE_MS, BrokerWorker
from model.safety import blocked_phrases
from model.types import GenerationError, WorkerBusy, WorkerUnavailable
from tests.fakes.backend import FakeBackend, FakeLoader
from tests.fakes.broker_worker import FAST_BROKER
from tests.fakes.generator import FakeGenerator
from tests.fakes.redis_server import RedisServer, free_port

WAIT_S = 20.0


def adapter_dir(root: Path, version: str) -> Path:
    """A directory a fake backend can "load": its punchline.json names the version."""
    path = root / version
    path.mkdir(parents=True, exist_ok=True)
    AdapterMetadata(version=version, base_model="tiny").save(path)
    return path


def settings_for(url: str, namespace: str, root: Path, **broker: object) -> Settings:
    return Settings(
        broker={"url": url, "namespace": namespace, **FAST_BROKER, **broker},
        model={"adapter": adapter_dir(root, "v1"), "cache_dir": root / "cache", "candidates": 1},
        worker={"max_batch_size": 8, "stats_log_s": 0, "timeout_s": 10},
    )


async def until(condition, what: str, timeout: float = WAIT_S) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.02)


@dataclass
class Fleet:
    settings: Settings
    backend: FakeBackend
    worker: BrokerWorker
    generator: RemoteGenerator
    stop: asyncio.Event


@contextlib.asynccontextmanager
async def running(settings: Settings, backend: FakeBackend) -> AsyncIterator[Fleet]:
    """One worker (over `backend`) and one bot-side generator, until the block ends."""
    worker = BrokerWorker(settings, loader=FakeLoader({"v1": backend}), worker_id="w1")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    generator = RemoteGenerator(settings)
    await generator.start()
    try:
        await until(lambda: generator.versions == ("v1",), "the bot sees the worker")
        yield Fleet(settings, backend, worker, generator, stop)
    finally:
        await generator.close()
        stop.set()
        backend.gate.set()
        await asyncio.wait_for(task, WAIT_S)


@pytest.fixture
def settings(redis_server: RedisServer, broker_namespace: str, tmp_path: Path) -> Settings:
    return settings_for(redis_server.url, broker_namespace, tmp_path)


async def test_a_lone_request_is_answered_without_waiting_for_company(settings: Settings) -> None:
    backend = FakeBackend("v1")
    async with running(settings, backend) as fleet:
        [line] = await fleet.generator.punchlines("Why did the chicken cross the road?")
    assert line.version == "v1" and line.text.startswith("punch 0 v1")
    assert [len(call) for call in backend.calls] == [1]  # it went alone


async def test_the_safe_flag_travels_to_the_worker_and_bans_the_severe_phrases(settings: Settings) -> None:
    backend = FakeBackend("v1")
    async with running(settings, backend) as fleet:
        await fleet.generator.punchlines("A family chat's setup?", safe=True)
        await fleet.generator.punchlines("Anyone's setup?")
    assert [p.blocked for p in backend.params] == [blocked_phrases(settings.safety), ()]
    assert "fuck" in backend.params[0].blocked


def test_a_request_without_the_safe_field_is_not_safe() -> None:
    """An older bot's requests carry no `safe` field: they decode as they always did."""
    request = Request("r1", "replies", "Why?", 1, "v1", now_ms() + 1000, 1000, safe=True)
    assert Request.parse(request.fields()) == request
    older = {k: v for k, v in request.fields().items() if k != "safe"}
    assert Request.parse(older).safe is False


async def test_requests_are_batched_while_the_worker_is_busy(settings: Settings) -> None:
    backend = FakeBackend("v1", open_gate=False)
    async with running(settings, backend) as fleet:
        first = asyncio.create_task(fleet.generator.punchlines("Setup zero?"))
        await asyncio.to_thread(backend.entered.acquire, timeout=WAIT_S)  # the model is busy with it
        rest = [asyncio.create_task(fleet.generator.punchlines(f"Setup {i}?")) for i in range(1, 6)]
        keys = Keys(settings.broker.namespace)
        await until(lambda: fleet.worker.queues.get("v1", None) is not None, "queue figures")
        client = connect(settings.broker)
        try:
            # All five wait in the stream (plus the one in progress) before the gate opens.
            deadline = time.monotonic() + WAIT_S
            while await client.xlen(keys.requests("v1")) < 6:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        finally:
            await client.aclose()
        backend.gate.set()
        answers = await asyncio.gather(first, *rest)
    assert all(len(a) == 1 for a in answers)
    assert [len(call) for call in backend.calls] == [1, 5]  # the five went together


async def test_a_full_stream_answers_busy_at_once(
    redis_server: RedisServer, broker_namespace: str, tmp_path: Path
) -> None:
    settings = settings_for(redis_server.url, broker_namespace, tmp_path, max_waiting=3)
    backend = FakeBackend("v1", open_gate=False)
    async with running(settings, backend) as fleet:
        waiting = [asyncio.create_task(fleet.generator.punchlines(f"Setup {i}?")) for i in range(3)]
        await asyncio.to_thread(backend.entered.acquire, timeout=WAIT_S)
        await asyncio.sleep(0.2)  # the other two are in the stream too
        started = time.monotonic()
        with pytest.raises(WorkerBusy):
            await fleet.generator.punchlines("One too many?")
        assert time.monotonic() - started < 1.0  # at once, not after a wait
        backend.gate.set()
        await asyncio.gather(*waiting)


async def test_no_live_worker_answers_unavailable_at_once(settings: Settings) -> None:
    generator = RemoteGenerator(settings)
    await generator.start()
    try:
        started = time.monotonic()
        with pytest.raises(WorkerUnavailable):
            await generator.punchlines("Anyone there?", deadline=time.monotonic() + 10)
        assert time.monotonic() - started < 1.0
        assert generator.versions == ()
    finally:
        await generator.close()


async def test_unknown_versions_are_refused(settings: Settings) -> None:
    async with running(settings, FakeBackend("v1")) as fleet:
        with pytest.raises(GenerationError, match="not served"):
            await fleet.generator.punchlines("Why?", version="v9")


async def test_a_duplicate_or_late_reply_is_ignored(settings: Settings) -> None:
    async with running(settings, FakeBackend("v1")) as fleet:
        generator = fleet.generator
        [line] = await generator.punchlines("Why?")
        client = connect(settings.broker)
        try:
            fake = Reply("no-such-request", Status.OK, (line,), worker="w9")
            await client.xadd(generator.reply_stream, fake.fields())
            await client.xadd(generator.reply_stream, fake.fields())
        finally:
            await client.aclose()
        await until(lambda: generator.counts.late_replies == 2, "the strays are counted")
        [again] = await generator.punchlines("Why not?")
    assert again.text != line.text


async def _admit_raw(settings: Settings, request: Request) -> str:
    client = connect(settings.broker)
    try:
        keys = Keys(settings.broker.namespace)
        fields = [x for kv in request.fields().items() for x in kv]
        answer = await Scripts.register(client).admit(
            keys=[keys.live("v1"), keys.requests("v1")], args=[100, MAX_ENTRY_AGE_MS, *fields]
        )
        assert answer[0] == "ok"
        return str(answer[1])
    finally:
        await client.aclose()


async def test_expired_requests_are_answered_expired_without_compute(settings: Settings) -> None:
    backend = FakeBackend("v1")
    async with running(settings, backend) as fleet:
        generator = fleet.generator
        future = asyncio.get_running_loop().create_future()
        generator._pending["late-one"] = future  # noqa: SLF001 - a request another bot sent late
        request = Request("late-one", generator.reply_stream, "Too late?", 1, "v1", now_ms() - 1, 1000)
        await _admit_raw(settings, request)
        reply = await asyncio.wait_for(future, WAIT_S)
    assert reply.status is Status.EXPIRED
    assert backend.calls == []


async def test_a_request_workers_keep_dying_on_is_failed_and_dead_lettered(settings: Settings) -> None:
    keys = Keys(settings.broker.namespace)
    client = connect(settings.broker)
    backend = FakeBackend("v1")
    try:
        async with running(settings, backend) as fleet:
            generator = fleet.generator
            future = asyncio.get_running_loop().create_future()
            generator._pending["cursed"] = future  # noqa: SLF001
            fleet.stop.set()  # keep the live worker away while the ghosts take the request
            await asyncio.sleep(1.2)
            request = Request("cursed", generator.reply_stream, "Cursed?", 1, "v1", now_ms() + 60_000, 60_000)
            fields = request.fields()
            entry = await client.xadd(keys.requests("v1"), fields)
            await client.xreadgroup(GROUP, "ghost-1", {keys.requests("v1"): ">"}, count=1)  # delivery 1
            await client.xclaim(keys.requests("v1"), GROUP, "ghost-2", 0, [entry])  # 2
            await client.xclaim(keys.requests("v1"), GROUP, "ghost-3", 0, [entry])  # 3: all died
            again = BrokerWorker(fleet.settings, loader=FakeLoader({"v1": backend}), worker_id="w2")
            stop = asyncio.Event()
            task = asyncio.create_task(again.run(stop))
            reply = await asyncio.wait_for(future, WAIT_S)
            stop.set()
            await asyncio.wait_for(task, WAIT_S)
        assert reply.status is Status.FAILED
        dead = await client.xrange(keys.dead_letters)
        assert [d[1]["id"] for d in dead] == ["cursed"]
        assert backend.calls == []  # it was not tried a fourth time
    finally:
        await client.aclose()


async def test_every_call_resolves_by_its_deadline_when_redis_is_down(
    tmp_path: Path, broker_namespace: str
) -> None:
    server = RedisServer(tmp_path / "own-redis").start()
    settings = settings_for(server.url, broker_namespace, tmp_path)
    try:
        async with running(settings, FakeBackend("v1")) as fleet:
            assert await fleet.generator.punchlines("Before?")
            server.stop()
            started = time.monotonic()
            with pytest.raises((WorkerUnavailable, GenerationError)):
                await fleet.generator.punchlines("During?", deadline=time.monotonic() + 5)
            assert time.monotonic() - started < 5
    finally:
        server.stop()


async def test_two_bot_processes_apply_one_limit(settings: Settings) -> None:
    limits = LimitSettings(burst=2, per_minute=6)
    clients = [connect(settings.broker), connect(settings.broker)]
    try:
        first, second = (SharedRateLimiter(c, settings.broker, limits, ManualClock(), 30) for c in clients)
        assert (await first.acquire("telegram:1")).ok
        busy = await second.acquire("telegram:1")
        assert busy.admission is Admission.IN_FLIGHT  # one request in flight, across processes
        await first.release("telegram:1")
        assert (await second.acquire("telegram:1")).ok
        await second.release("telegram:1")
        empty = await first.acquire("telegram:1")
        assert empty.admission is Admission.EMPTY and 0 < empty.retry_after <= 10
        assert (await second.acquire("telegram:2")).ok  # another person has their own bucket
    finally:
        for client in clients:
            await client.aclose()


async def test_a_private_chat_keeps_its_person_and_chat_buckets_apart(settings: Settings, storage) -> None:  # type: ignore[no-untyped-def]
    """A private chat's id is its person's id: under shared limiters the two buckets once fell
    into one Redis key and a person got fewer answers than their burst."""
    limits = {"burst": 3, "per_minute": 1, "chat_burst": 5, "chat_per_minute": 1}
    core_settings = Settings(**{**settings.model_dump(), "limits": limits})
    client = connect(settings.broker)
    clock = ManualClock()
    try:
        limiters = (
            SharedRateLimiter(client, settings.broker, core_settings.limits, clock, 30),
            SharedRateLimiter(client, settings.broker, core_settings.limits, clock, 30, per_chat=True),
        )
        core = BotCore(core_settings, storage, FakeGenerator(), clock, limiters=limiters, stats_sections=())
        chat = ChatRef(Platform.TELEGRAM, "42", ChatKind.PRIVATE)
        ann = UserRef(Platform.TELEGRAM, "42", "Ann")
        kinds = [
            await core.handle_setup(IncomingSetup(chat, ann, f"Why number {i}?", True, str(i)))
            for i in range(4)
        ]
    finally:
        await client.aclose()
    assert [r.kind if r else None for r in kinds] == [ReplyKind.PUNCHLINE] * 3 + [ReplyKind.RATE_LIMITED]
    assert kinds[3] is not None and kinds[3].text == MSG_SLOW_DOWN.format(seconds=60)


async def test_a_lease_has_one_holder_and_passes_on_when_it_lapses(settings: Settings) -> None:
    clients = [connect(settings.broker), connect(settings.broker)]
    key = Keys(settings.broker.namespace).lease("telegram:test")
    try:
        first, second = (Lease(c, key, ttl_s=0.6) for c in clients)
        assert await first.try_acquire()
        assert not await second.try_acquire()
        stop = asyncio.Event()
        keeper = asyncio.create_task(first.keep(stop))
        await asyncio.sleep(1.0)  # longer than the TTL: renewals keep it
        assert not await second.try_acquire()
        stop.set()
        await keeper
        # The holder stopped renewing (it died): the other takes over once the TTL runs out.
        assert await asyncio.wait_for(second.wait(asyncio.Event()), 5)
    finally:
        for client in clients:
            await client.aclose()


async def test_metrics_health_and_status(
    redis_server: RedisServer, broker_namespace: str, tmp_path: Path
) -> None:
    settings = settings_for(redis_server.url, broker_namespace, tmp_path)
    port = free_port()
    settings = settings.model_copy(update={"metrics": settings.metrics.model_copy(update={"port": port})})
    async with running(settings, FakeBackend("v1")) as fleet, aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 503  # no real generation yet
        await fleet.generator.punchlines("Why?")
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200
        # The worker counts a reply once its script returns, which may be just after the bot
        # has it: read until the count is there (it failed once in CI when read at once).
        deadline = time.monotonic() + WAIT_S
        while True:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                body = await response.text()
            if 'punchline_worker_replies_total{status="ok"} 1.0' in body or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        assert 'punchline_worker_replies_total{status="ok"} 1.0' in body
        assert "punchline_worker_batch_size_bucket" in body
        status = await fleet.generator.fleet.status()
    text = format_status(status)
    assert "w1" in text and "v1: 1 live worker(s)" in text and "desired: v1" in text
