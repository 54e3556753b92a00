"""The worker's promises (docs/DESIGN.md, decision 6) with a controllable fake backend on a real loop."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from config.settings import WorkerSettings
from model.generation import GenerationParams
from model.prompt import build_prompt
from model.types import (
    AdapterError,
    DeadlineExceeded,
    GenerationError,
    Generator,
    InvalidSetup,
    ModelLoadError,
    WorkerBusy,
    WorkerClosed,
)
from model.worker import InferenceWorker
from tests.fakes.backend import FakeBackend, FakeLoader, tag

PARAMS = GenerationParams(num_candidates=1)


def make_worker(loader: FakeLoader, **settings: object) -> InferenceWorker:
    options = dict(queue_size=8, max_batch_size=8, timeout_s=10.0, stats_log_s=0)
    options.update(settings)
    return InferenceWorker(loader, PARAMS, WorkerSettings(**options), max_setup_chars=100)


async def entered(backend: FakeBackend, calls: int = 1) -> None:
    """Wait until the backend has started `calls` more generate calls."""
    for _ in range(calls):
        assert await asyncio.to_thread(backend.entered.acquire, True, 10), "backend never called"


def ask(worker: InferenceWorker, setup: str, **kwargs: object) -> asyncio.Task:
    return asyncio.create_task(worker.punchlines(setup, **kwargs))


async def settle() -> None:
    """Let queued tasks run up to their first await (the queue put)."""
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend("v1", open_gate=False)


@pytest.fixture
async def worker(fake: FakeBackend):
    w = make_worker(FakeLoader({None: fake}))
    await w.start()
    yield w
    fake.gate.set()
    await w.close()


async def test_worker_is_a_generator(worker: InferenceWorker) -> None:
    assert isinstance(worker, Generator)
    assert worker.versions == ("v1",)


async def test_lone_request_goes_alone_at_once(worker: InferenceWorker, fake: FakeBackend) -> None:
    fake.gate.set()
    result = await asyncio.wait_for(worker.punchlines("Why did the chicken cross?"), 5)
    assert [p.text for p in result] == [f"punch 0 v1 {tag('Why did the chicken cross?')}"]
    assert result[0].version == "v1"
    assert fake.calls == [[build_prompt("Why did the chicken cross?")]]


async def test_requests_batch_while_the_model_is_busy(worker: InferenceWorker, fake: FakeBackend) -> None:
    first = ask(worker, "setup number one?")
    await entered(fake)
    rest = [ask(worker, f"another setup {i}?") for i in range(3)]
    await settle()
    fake.gate.set()
    answers = await asyncio.gather(first, *rest)
    assert [len(call) for call in fake.calls] == [1, 3]
    for setup, answer in zip(["setup number one?"] + [f"another setup {i}?" for i in range(3)], answers):
        assert answer[0].text.endswith(tag(setup))
    stats = worker.stats()
    assert stats.batches == 2 and stats.requests == 4 and stats.mean_batch_size == 2.0


async def test_batches_never_exceed_max_batch_size(fake: FakeBackend) -> None:
    w = make_worker(FakeLoader({None: fake}), max_batch_size=2)
    await w.start()
    try:
        first = ask(w, "setup zero?")
        await entered(fake)
        rest = [ask(w, f"setup {i}?") for i in range(1, 6)]
        await settle()
        fake.gate.set()
        await asyncio.gather(first, *rest)
        assert [len(call) for call in fake.calls] == [1, 2, 2, 1]
    finally:
        await w.close()


async def test_deadline_expires_while_waiting_and_worker_goes_on(
    worker: InferenceWorker, fake: FakeBackend
) -> None:
    first = ask(worker, "slow setup?")
    await entered(fake)
    with pytest.raises(DeadlineExceeded):
        await worker.punchlines("queued setup?", deadline=time.monotonic() + 0.2)
    fake.gate.set()
    await first
    after = await worker.punchlines("later setup?")
    assert after[0].text.endswith(tag("later setup?"))
    # The expired request never cost a generation.
    assert all(build_prompt("queued setup?") not in call for call in fake.calls)
    assert worker.stats().timeouts == 1


async def test_past_deadline_is_refused_at_once(worker: InferenceWorker, fake: FakeBackend) -> None:
    with pytest.raises(DeadlineExceeded):
        await worker.punchlines("any setup?", deadline=time.monotonic() - 1)
    assert fake.calls == []


async def test_full_queue_answers_busy_at_once(fake: FakeBackend) -> None:
    w = make_worker(FakeLoader({None: fake}), queue_size=2)
    await w.start()
    try:
        running = ask(w, "in flight?")
        await entered(fake)
        queued = [ask(w, "queued one?"), ask(w, "queued two?")]
        await settle()
        # The gate is still closed: WorkerBusy must come without waiting for the model.
        with pytest.raises(WorkerBusy):
            await asyncio.wait_for(w.punchlines("one too many?"), 1)
        assert w.stats().busy_rejections == 1
        assert w.stats().queue_depth == 2
        fake.gate.set()
        await asyncio.gather(running, *queued)
    finally:
        await w.close()


async def test_failing_batch_fails_only_its_own_requests(worker: InferenceWorker, fake: FakeBackend) -> None:
    before = ask(worker, "fine setup?")
    await entered(fake)
    doomed = [ask(worker, "please explode now?"), ask(worker, "unlucky neighbour?")]
    await settle()
    fake.gate.set()
    assert (await before)[0].text.endswith(tag("fine setup?"))
    for task in doomed:
        with pytest.raises(GenerationError, match="generation failed"):
            await task
    after = await worker.punchlines("still serving?")
    assert after[0].text.endswith(tag("still serving?"))
    assert worker.stats().failed == 2


async def test_identical_setups_in_one_batch_are_generated_once(
    worker: InferenceWorker, fake: FakeBackend
) -> None:
    first = ask(worker, "warm up?")
    await entered(fake)
    same = [
        ask(worker, "Why is the sky blue?"),
        ask(worker, "  Why is the\tsky blue?  ", n=3),
        ask(worker, "Why is the sky blue?\u200b", n=2),
        ask(worker, "Something else?"),
    ]
    await settle()
    fake.gate.set()
    await first
    one, three, two, other = await asyncio.gather(*same)
    assert fake.calls[1] == [build_prompt("Why is the sky blue?"), build_prompt("Something else?")]
    assert [len(one), len(three), len(two)] == [1, 3, 2]
    assert one[0] == three[0] == two[0]
    assert three[0].score > three[1].score > three[2].score  # best first
    assert other[0].text.endswith(tag("Something else?"))


async def test_a_mixed_batch_splits_by_safe_flag(fake: FakeBackend) -> None:
    """Family chats' requests decode in a call of their own, with the blocked phrases banned;
    the same setup asked both ways is generated once each way."""
    w = InferenceWorker(
        FakeLoader({None: fake}),
        PARAMS,
        WorkerSettings(queue_size=8, max_batch_size=8, timeout_s=10.0, stats_log_s=0),
        max_setup_chars=100,
        blocked=("kumquat", "son of a kumquat"),
    )
    await w.start()
    try:
        first = ask(w, "warm up?")
        await entered(fake)
        mixed = [
            ask(w, "Why is the sky blue?", safe=True),
            ask(w, "Why is the sky blue?"),
            ask(w, "A family setup?", safe=True),
            ask(w, "Another setup?"),
        ]
        await settle()
        fake.gate.set()
        await first
        answers = await asyncio.gather(*mixed)
    finally:
        await w.close()
    assert all(len(a) == 1 for a in answers)
    assert [p.blocked for p in fake.params] == [(), ("kumquat", "son of a kumquat"), ()]
    assert fake.calls[1] == [build_prompt("Why is the sky blue?"), build_prompt("A family setup?")]
    assert fake.calls[2] == [build_prompt("Why is the sky blue?"), build_prompt("Another setup?")]
    assert {p.num_candidates for p in fake.params} == {PARAMS.num_candidates}  # nothing else changed


async def test_reload_mid_stream_finishes_in_flight_on_old_version() -> None:
    old, new = FakeBackend("v-old", open_gate=False), FakeBackend("v-new")
    w = make_worker(FakeLoader({None: old, "adapter-new": new}))
    await w.start()
    try:
        in_flight = ask(w, "asked before the reload?")
        await entered(old)
        assert await w.reload(Path("adapter-new")) == "v-new"
        assert w.versions == ("v-new",)
        # Queued behind the batch in flight (one model thread), then served by the new version.
        after = ask(w, "asked after the reload?")
        await settle()
        old.gate.set()
        assert (await in_flight)[0].version == "v-old"
        assert (await after)[0].version == "v-new"
        assert new.calls == [[build_prompt("asked after the reload?")]]
        assert await asyncio.to_thread(old.closed.wait, 5), "the replaced model was not freed"
        assert not new.closed.is_set()
    finally:
        old.gate.set()
        await w.close()


async def test_failed_reload_keeps_the_old_version_serving(
    worker: InferenceWorker, fake: FakeBackend
) -> None:
    fake.gate.set()
    with pytest.raises(AdapterError, match="does not exist"):
        await worker.reload(Path("no-such-adapter"))
    assert worker.versions == ("v1",)
    assert (await worker.punchlines("still there?"))[0].version == "v1"


async def test_loader_crash_during_reload_is_an_adapter_error() -> None:
    w = make_worker(FakeLoader({None: FakeBackend("v1"), "broken": RuntimeError("disk on fire")}))
    await w.start()
    try:
        with pytest.raises(AdapterError, match="disk on fire"):
            await w.reload(Path("broken"))
        assert (await w.punchlines("still there?"))[0].version == "v1"
    finally:
        await w.close()


async def test_extra_adapters_load_at_start() -> None:
    loader = FakeLoader({None: FakeBackend("v1"), "b": FakeBackend("v2"), "c": FakeBackend("v3")})
    w = InferenceWorker(loader, PARAMS, WorkerSettings(stats_log_s=0), extra_adapters=[Path("b"), Path("c")])
    await w.start()
    try:
        assert w.versions == ("v1", "v2", "v3")
        assert (await w.punchlines("which one?", version="v3"))[0].version == "v3"
    finally:
        await w.close()
    bad = InferenceWorker(
        FakeLoader({None: FakeBackend("v1")}),
        PARAMS,
        WorkerSettings(stats_log_s=0),
        extra_adapters=[Path("missing")],
    )
    with pytest.raises(AdapterError, match="does not exist"):
        await bad.start()
    await bad.close()


async def test_extra_version_serves_on_request() -> None:
    w = make_worker(FakeLoader({None: FakeBackend("v1"), "b": FakeBackend("v2")}))
    await w.start()
    try:
        assert await w.load_extra(Path("b")) == "v2"
        assert w.versions == ("v1", "v2")
        assert (await w.punchlines("who made this?", version="v2"))[0].version == "v2"
        assert (await w.punchlines("who made this?"))[0].version == "v1"
        with pytest.raises(GenerationError, match="not loaded"):
            await w.punchlines("who made this?", version="v9")
        await w.unload("v2")
        assert w.versions == ("v1",)
    finally:
        await w.close()


async def test_shutdown_answers_every_queued_request(worker: InferenceWorker, fake: FakeBackend) -> None:
    in_flight = ask(worker, "in flight?")
    await entered(fake)
    queued = [ask(worker, f"queued {i}?") for i in range(4)]
    await settle()
    closing = asyncio.create_task(worker.close())
    for task in queued:
        with pytest.raises(WorkerClosed):
            await asyncio.wait_for(task, 5)
    fake.gate.set()
    assert (await in_flight)[0].text.endswith(tag("in flight?"))
    await closing
    assert fake.closed.is_set()
    with pytest.raises(WorkerClosed):
        await worker.punchlines("after close?")


@pytest.mark.parametrize(
    "setup, n, message",
    [
        ("", 1, "empty"),
        (" \t\n ", 1, "empty"),
        ("\u200b\u0000\u202e", 1, "empty"),
        ("x" * 101, 1, "at most 100"),
        ("fine?", 0, "n must be"),
        ("fine?", 17, "n must be"),
        ("fine?", True, "n must be"),
        ("fine?", "3", "n must be"),
    ],
)
async def test_bad_requests_get_invalid_setup(
    worker: InferenceWorker, fake: FakeBackend, setup: str, n: object, message: str
) -> None:
    with pytest.raises(InvalidSetup, match=message):
        await worker.punchlines(setup, n=n)  # type: ignore[arg-type]
    assert fake.calls == []


async def test_odd_unicode_is_normalised_before_the_model(worker: InferenceWorker, fake: FakeBackend) -> None:
    fake.gate.set()
    await worker.punchlines("Why\u00a0did the cafe\u0301\u200b go\x00 broke?\n")
    assert fake.calls == [[build_prompt("Why did the caf\u00e9 go broke?")]]


async def test_not_started_and_failed_start() -> None:
    w = make_worker(FakeLoader({None: ModelLoadError("base model directory x has no weights")}))
    with pytest.raises(WorkerClosed):
        await w.punchlines("too early?")
    with pytest.raises(ModelLoadError, match="no weights"):
        await w.start()
    await w.close()


async def test_cancelled_caller_does_not_disturb_the_worker(
    worker: InferenceWorker, fake: FakeBackend
) -> None:
    task = ask(worker, "never mind?")
    await entered(fake)
    task.cancel()
    fake.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await worker.punchlines("next one?"))[0].text.endswith(tag("next one?"))


async def test_stats_count_latency_and_tokens(worker: InferenceWorker, fake: FakeBackend) -> None:
    fake.gate.set()
    for i in range(3):
        await worker.punchlines(f"setup {i}?", n=2)
    stats = worker.stats()
    assert stats.requests == 3 and stats.batches == 3 and stats.failed == 0
    assert stats.tokens_per_s > 0 and 0 < stats.p50_latency_s <= stats.p95_latency_s
    assert stats.version == "v1" and stats.backend == "fake-v1" and stats.versions == ("v1",)
    assert stats.loaded_at is not None


async def test_start_keeps_the_loaders_error_type() -> None:
    w = make_worker(FakeLoader({None: AdapterError("adapter x was trained on another base model")}))
    with pytest.raises(AdapterError, match="another base model"):
        await w.start()
    await w.close()
    crashing = make_worker(FakeLoader({None: RuntimeError("out of memory")}))
    with pytest.raises(ModelLoadError, match="RuntimeError: out of memory"):
        await crashing.start()
    await crashing.close()


async def test_close_while_starting_frees_the_model() -> None:
    slow = FakeBackend("v1")
    started = asyncio.Event()
    release = threading.Event()  # the load finishes only after close() ran, however slow the machine

    class SlowLoader(FakeLoader):
        def __call__(self, adapter_dir: Path | None) -> FakeBackend:
            started_loop.call_soon_threadsafe(started.set)
            assert release.wait(timeout=30), "the test never let the load finish"
            return super().__call__(adapter_dir)

    started_loop = asyncio.get_running_loop()
    w = make_worker(SlowLoader({None: slow}))
    starting = asyncio.create_task(w.start())
    await asyncio.wait_for(started.wait(), 30)
    try:
        await w.close()
    finally:
        release.set()
    with pytest.raises(WorkerClosed):
        await asyncio.wait_for(starting, 30)
    assert slow.closed.is_set() and w.versions == ()


async def test_counters_are_logged_periodically(caplog: pytest.LogCaptureFixture) -> None:
    w = make_worker(FakeLoader({None: FakeBackend("v1")}), stats_log_s=0.05)

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("worker fake-v1")]

    with caplog.at_level("INFO", logger="model.worker"):
        await w.start()
        try:
            await w.punchlines("count me?")
            # Wait for a log line written after the request (every 0.05 s, later when loaded).
            deadline = time.monotonic() + 30
            while not any("requests=1" in line for line in lines()):
                assert time.monotonic() < deadline, f"no counters logged after the request: {lines()}"
                await asyncio.sleep(0.01)
        finally:
            await w.close()
    assert lines() and "requests=1" in lines()[-1] and "queue=0" in lines()[-1]


async def test_reranking_candidates_shrink_under_load() -> None:
    fake = FakeBackend("v1", open_gate=False)
    w = InferenceWorker(
        FakeLoader({None: fake}),
        GenerationParams(num_candidates=4),
        WorkerSettings(max_batch_size=8, stats_log_s=0),
    )
    await w.start()
    try:
        alone = ask(w, "all alone?")
        await entered(fake)
        pair = [ask(w, "first of two?"), ask(w, "second of two?")]
        await settle()
        fake.gate.set()
        await asyncio.gather(alone, *pair)
        crowd = [ask(w, f"one of many {i}?") for i in range(7)] + [ask(w, "greedy?", n=3)]
        await asyncio.gather(*crowd)
        # Alone: 4 candidates; two setups: still 4 each (8 sequences); eight setups: only
        # what the requests asked for (3, the most any asked), not 4 each.
        assert fake.candidates == [4, 4, 3]
        assert len(await crowd[-1]) == 3
    finally:
        fake.gate.set()
        await w.close()


async def test_close_is_bounded_when_a_batch_never_finishes(fake: FakeBackend) -> None:
    """SIGTERM must end the process: a decode that hangs cannot hold close() (and with it the
    shutdown) past `close_timeout_s`; its request hears "busy" instead of waiting out its
    deadline."""
    w = make_worker(FakeLoader({None: fake}), close_timeout_s=0.3, timeout_s=60)
    await w.start()
    stuck = ask(w, "a setup the model never finishes?")
    await entered(fake)
    try:
        started = time.monotonic()
        await asyncio.wait_for(w.close(), 5)
        assert time.monotonic() - started < 2
        with pytest.raises(WorkerClosed):
            await asyncio.wait_for(stuck, 1)
    finally:
        fake.gate.set()  # let the model thread end
