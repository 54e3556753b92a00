"""The fleet with workers in processes of their own (`tests.fakes.broker_worker`: the real
`BrokerWorker` over an instant fake backend): killed workers lose nothing, reloads move every
worker, a restarted Redis is survived, SIGTERM stops cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from model.broker.remote import RemoteGenerator
from model.types import DeadlineExceeded, GenerationError, Punchline, WorkerUnavailable
from tests.fakes.broker_worker import worker_settings
from tests.fakes.redis_server import RedisServer
from tests.model.test_broker import adapter_dir, until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class Workers:
    """Worker processes, stopped (SIGKILL at the latest) when the test ends."""

    def __init__(self, url: str, namespace: str, root: Path):
        self.url, self.namespace, self.root = url, namespace, root
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, worker_id: str, adapter: Path, *, delay: float = 0.0, batch: int = 32) -> None:
        log = (self.root / f"{worker_id}.log").open("wb")
        self.processes[worker_id] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fakes.broker_worker",
                "--url",
                self.url,
                "--namespace",
                self.namespace,
                "--adapter",
                str(adapter),
                "--cache",
                str(self.root / f"cache-{worker_id}"),
                "--delay",
                str(delay),
                "--batch",
                str(batch),
                "--worker-id",
                worker_id,
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def signal(self, worker_id: str, sig: int) -> None:
        os.kill(self.processes[worker_id].pid, sig)

    def log(self, worker_id: str) -> str:
        return (self.root / f"{worker_id}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(10)


@pytest.fixture
def workers(redis_server: RedisServer, broker_namespace: str, tmp_path: Path) -> Iterator[Workers]:
    fleet = Workers(redis_server.url, broker_namespace, tmp_path)
    try:
        yield fleet
    finally:
        fleet.stop_all()


def bot_settings(url: str, namespace: str, root: Path) -> Settings:
    return worker_settings(url, namespace, adapter_dir(root, "v1"), root / "bot-cache")


async def outcomes(calls: list[asyncio.Task[list[Punchline]]]) -> Counter[str]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    return Counter("ok" if isinstance(r, list) and r else type(r).__name__ for r in results)


async def test_a_worker_killed_mid_batch_loses_nothing(workers: Workers, tmp_path: Path) -> None:
    v1 = adapter_dir(tmp_path, "v1")
    workers.start("alpha", v1, delay=0.3, batch=4)
    workers.start("beta", v1, delay=0.3, batch=4)
    generator = RemoteGenerator(bot_settings(workers.url, workers.namespace, tmp_path))
    await generator.start()
    try:
        await until(lambda: len(generator.view.workers) == 2, "both workers are seen")
        calls = [
            asyncio.create_task(generator.punchlines(f"Setup number {i}?", deadline=time.monotonic() + 40))
            for i in range(40)
        ]
        await until(lambda: sum(1 for c in calls if c.done()) >= 4, "the first replies")
        workers.signal("alpha", signal.SIGKILL)  # in the middle of a batch
        counts = await outcomes(calls)
    finally:
        await generator.close()
    assert counts == {"ok": 40}, counts  # every request answered: none lost, none failed
    assert "claimed" in workers.log("beta")  # beta took over alpha's requests


async def test_reload_moves_every_worker_process(workers: Workers, tmp_path: Path) -> None:
    workers.start("alpha", adapter_dir(tmp_path, "v1"))
    workers.start("beta", adapter_dir(tmp_path, "v1"))
    generator = RemoteGenerator(bot_settings(workers.url, workers.namespace, tmp_path))
    await generator.start()
    try:
        await until(lambda: len(generator.view.workers) == 2, "both workers are seen")
        assert generator.versions == ("v1",)
        # Uploaded through Redis: the workers unpack it into their own caches.
        assert await generator.reload(adapter_dir(tmp_path / "elsewhere", "v2")) == "v2"
        assert generator.versions[0] == "v2"
        lines = await asyncio.gather(*(generator.punchlines(f"After {i}?") for i in range(6)))
        assert {line.version for [line] in lines} == {"v2"}
        assert all((tmp_path / f"cache-{w}" / "uploads").is_dir() for w in ("alpha", "beta"))
        # A broken adapter is refused by every worker, which keep serving v2.
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "punchline.json").write_text("{not json", encoding="utf-8")
        with pytest.raises(Exception, match="corrupt"):
            await generator.reload(broken)
        [line] = await generator.punchlines("Still there?")
        assert line.version == "v2"
    finally:
        await generator.close()


async def test_redis_restarted_under_load_fails_fast_and_recovers(
    broker_namespace: str, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "own-redis").start()
    fleet = Workers(server.url, broker_namespace, tmp_path)
    fleet.start("alpha", adapter_dir(tmp_path, "v1"))
    generator = RemoteGenerator(bot_settings(server.url, broker_namespace, tmp_path))
    await generator.start()
    try:
        await until(lambda: generator.versions == ("v1",), "the worker is seen")
        assert await generator.punchlines("Before?")
        server.stop()
        started = time.monotonic()
        with pytest.raises((WorkerUnavailable, DeadlineExceeded)):
            await generator.punchlines("During?", deadline=time.monotonic() + 5)
        assert time.monotonic() - started < 5  # by its deadline, whatever Redis does
        server.start()  # back, empty: streams, groups and the desired set are gone
        deadline = time.monotonic() + 30
        while True:
            try:
                [line] = await generator.punchlines("After?", deadline=time.monotonic() + 5)
                break
            except (WorkerUnavailable, DeadlineExceeded, GenerationError):
                assert time.monotonic() < deadline, "never recovered"
                await asyncio.sleep(0.2)
        assert line.version == "v1"
    finally:
        await generator.close()
        fleet.stop_all()
        server.stop()


async def test_sigterm_finishes_the_batch_and_stops(workers: Workers, tmp_path: Path) -> None:
    v1 = adapter_dir(tmp_path, "v1")
    workers.start("alpha", v1, delay=1.0, batch=2)
    generator = RemoteGenerator(bot_settings(workers.url, workers.namespace, tmp_path))
    await generator.start()
    try:
        await until(lambda: generator.versions == ("v1",), "the worker is seen")
        calls = [
            asyncio.create_task(generator.punchlines(f"Setup {i}?", deadline=time.monotonic() + 30))
            for i in range(6)
        ]
        await asyncio.sleep(0.5)  # alpha is generating its first batch of two
        workers.signal("alpha", signal.SIGTERM)
        assert workers.processes["alpha"].wait(15) == 0
        # Its batch in flight was answered, and nothing failed on the way out.
        assert re.search(r"stopped \(ok [12]\)", workers.log("alpha")), workers.log("alpha")
        await until(lambda: generator.versions == (), "alpha left the routing at once")
        # Nothing it had not taken is lost: the next worker answers it.
        workers.start("beta", v1)
        counts = await outcomes(calls)
    finally:
        await generator.close()
    assert counts == {"ok": 6}, counts


@pytest.mark.shared_data
async def test_the_real_worker_command_serves_and_reloads_the_tiny_model(
    redis_server: RedisServer, broker_namespace: str, tiny_base_model: Path, tmp_path: Path
) -> None:
    """`punchline worker`, `punchline reload` and `punchline status` as an operator runs them."""
    from tests.fakes.adapters import make_adapter

    env = {k: v for k, v in os.environ.items() if not k.startswith("PUNCHLINE_")}
    env.update(
        PUNCHLINE_BROKER__URL=redis_server.url,
        PUNCHLINE_BROKER__NAMESPACE=broker_namespace,
        PUNCHLINE_BROKER__HEARTBEAT_S="0.2",
        PUNCHLINE_BROKER__WORKER_TTL_S="1",
        PUNCHLINE_MODEL__BASE=str(tiny_base_model),
        PUNCHLINE_MODEL__BACKEND="transformers",
        PUNCHLINE_MODEL__DEVICE="cpu",
        PUNCHLINE_MODEL__DTYPE="float32",
        PUNCHLINE_MODEL__MAX_NEW_TOKENS="8",
        PUNCHLINE_MODEL__CACHE_DIR=str(tmp_path / "cache"),
        HF_HUB_OFFLINE="1",
    )
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "worker"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    settings = Settings(
        broker={"url": redis_server.url, "namespace": broker_namespace}, model={"base": str(tiny_base_model)}
    )
    generator = RemoteGenerator(settings)
    await generator.start()
    try:
        await until(lambda: generator.versions == ("base",), "the worker serves the base model", timeout=120)
        [line] = await generator.punchlines("Why did the chicken cross the road?")
        assert line.version == "base" and line.text
        adapter = make_adapter(tiny_base_model, tmp_path / "v2", "v2", seed=1)
        reload = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot.cli", "reload", str(adapter)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert reload.returncode == 0, reload.stderr
        assert "v2 is current on 1 worker(s)" in reload.stdout
        await until(lambda: generator.versions[:1] == ("v2",), "the bot routes to v2")
        [line] = await generator.punchlines("Why did the chicken cross the road?")
        assert line.version == "v2"
        status = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot.cli", "status"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0 and "v2: 1 live worker(s)" in status.stdout, status.stdout
    finally:
        await generator.close()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, (tmp_path / "worker.log").read_text()
