"""Broker benchmark: what Redis between the bot and the workers costs, and what it survives.

In one run, on loopback, with its own redis-server:

1. round-trip overhead per request: the in-process worker against one `punchline worker`
   process through Redis, both over a backend that answers instantly (p50, p95; target: the
   broker adds at most 5 ms at p50);
2. throughput: setups/s through the broker with batching, many callers at once, one worker
   (target >= 1,000/s on 2 cores);
3. failover: 1,000 requests over two workers, one SIGKILLed midway: lost, failed, and the
   p95 it adds against the same run without a kill;
4. the model: flan-t5-large's architecture with random weights ($PUNCHLINE_SHARED_DATA), 32
   setups at once, jokes/s of one worker process against the in-process worker (the default
   CPU backend; `--skip-model` leaves this out, `--quick` uses a 2-layer model).

Usage:
    python bench/broker.py            # everything (~5 minutes on 2 CPU cores)
    python bench/broker.py --quick    # small counts, 2-layer model: checks the script
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config.settings import Settings  # noqa: E402
from model.adapter_meta import AdapterMetadata  # noqa: E402
from model.broker.remote import RemoteGenerator  # noqa: E402
from model.broker.serving import BrokerWorker  # noqa: E402
from model.generation import Candidate, GenerationParams  # noqa: E402
from model.metrics import percentile  # noqa: E402
from model.prompt import DEFAULT_TEMPLATE  # noqa: E402
from model.worker import InferenceWorker  # noqa: E402

FAST = {"heartbeat_s": 0.2, "worker_ttl_s": 1.0, "resync_s": 5.0, "max_waiting": 100_000}


class InstantBackend:
    """A backend that answers at once (or after `delay_s` a batch): no model, only plumbing."""

    prompt_template = DEFAULT_TEMPLATE

    def __init__(self, version: str, delay_s: float = 0.0):
        self.version = version
        self.name = f"instant-{version}"
        self.delay_s = delay_s

    def generate(self, prompts: list[str], n: int, params: GenerationParams) -> list[list[Candidate]]:
        if self.delay_s:
            time.sleep(self.delay_s)
        return [
            [Candidate(f"answer {hashlib.sha1(p.encode()).hexdigest()[:6]} {k}", -0.1, 4) for k in range(n)]
            for p in prompts
        ]

    def close(self) -> None:
        pass


def instant_loader(delay_s: float):  # type: ignore[no-untyped-def]
    def load(adapter_dir: Path | None) -> InstantBackend:
        return InstantBackend(AdapterMetadata.load(adapter_dir).version if adapter_dir else "base", delay_s)

    return load


def settings(
    url: str, namespace: str, adapter: Path | None, cache: Path, batch: int, model: dict | None = None
) -> Settings:
    return Settings(
        broker={"url": url, "namespace": namespace, **FAST},
        model={"adapter": adapter, "cache_dir": cache, "candidates": 1, **(model or {})},
        worker={"max_batch_size": batch, "queue_size": 100_000, "stats_log_s": 0, "timeout_s": 120},
    )


# -- the worker process ----------------------------------------------------------------------------


def serve_worker(args: argparse.Namespace) -> None:
    model = (
        {
            "base": args.model_dir,
            "backend": "auto",
            "max_new_tokens": 16,
            "min_new_tokens": 16,
            "do_sample": False,
            "repetition_penalty": 1.0,
            "no_repeat_ngram_size": 0,
        }
        if args.model_dir
        else None
    )
    worker_settings = settings(args.url, args.namespace, args.adapter, Path(args.cache), args.batch, model)
    loader = None if args.model_dir else instant_loader(args.delay)

    async def run() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await BrokerWorker(worker_settings, loader=loader, worker_id=args.worker_id).run(stop)

    asyncio.run(run())


class Bench:
    """Redis, worker processes and temp files of one run."""

    def __init__(self, root: Path):
        self.root = root
        self.adapter = root / "v1"
        self.adapter.mkdir(parents=True, exist_ok=True)
        AdapterMetadata(version="v1", base_model="bench").save(self.adapter)
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory-policy",
                "noeviction",
                "--dir",
                str(root),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.workers: list[subprocess.Popen[bytes]] = []
        time.sleep(0.5)

    def worker(
        self,
        namespace: str,
        worker_id: str,
        *,
        delay: float = 0.0,
        batch: int = 64,
        model_dir: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-worker",
            "--url",
            self.url,
            "--namespace",
            namespace,
            "--worker-id",
            worker_id,
            "--delay",
            str(delay),
            "--batch",
            str(batch),
            "--cache",
            str(self.root / "cache"),
        ]
        if model_dir is not None:
            cmd += ["--model-dir", str(model_dir)]
        else:
            cmd += ["--adapter", str(self.adapter)]
        log = (self.root / f"{worker_id}.log").open("wb")
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(process)
        return process

    def close(self) -> None:
        for process in [*self.workers, self.redis]:
            if process.poll() is None:
                process.kill()
            process.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def remote(bench: Bench, namespace: str, workers: int, timeout: float = 120) -> RemoteGenerator:
    generator = RemoteGenerator(settings(bench.url, namespace, bench.adapter, bench.root / "cache", 64))
    await generator.start()
    deadline = time.monotonic() + timeout
    while len(generator.view.workers) < workers or not generator.versions:
        if time.monotonic() > deadline:
            sys.exit(f"bench: the workers did not come up; see {bench.root}/*.log")
        await asyncio.sleep(0.05)
    return generator


@dataclass
class Latencies:
    name: str
    values: list[float]

    def line(self) -> str:
        return (
            f"{self.name:<28} p50 {percentile(self.values, 50) * 1000:7.2f} ms   "
            f"p95 {percentile(self.values, 95) * 1000:7.2f} ms   ({len(self.values)} requests)"
        )


async def sequential(call, setups: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for setup in setups:
        t = time.perf_counter()
        await call(setup)
        out.append(time.perf_counter() - t)
    return out


# -- 1. overhead ------------------------------------------------------------------------------------


async def overhead(bench: Bench, count: int) -> tuple[Latencies, Latencies]:
    local = InferenceWorker(
        instant_loader(0.0),
        GenerationParams(num_candidates=1),
        settings(bench.url, "x", bench.adapter, bench.root, 64).worker,
        adapter_dir=bench.adapter,
    )
    await local.start()
    setups = [f"Why is setup number {i} funny?" for i in range(count)]
    try:
        await sequential(local.punchlines, setups[:20])
        in_process = Latencies("in-process worker", await sequential(local.punchlines, setups))
    finally:
        await local.close()
    bench.worker("overhead", "overhead-1")
    generator = await remote(bench, "overhead", 1)
    try:
        await sequential(generator.punchlines, setups[:20])
        broker = Latencies("broker, one worker process", await sequential(generator.punchlines, setups))
    finally:
        await generator.close()
    return in_process, broker


# -- 2. throughput ----------------------------------------------------------------------------------


async def throughput(bench: Bench, total: int, callers: int) -> float:
    bench.worker("throughput", "throughput-1", batch=128)
    generator = await remote(bench, "throughput", 1)
    done = 0

    async def caller(k: int) -> None:
        nonlocal done
        while done < total:
            done += 1
            await generator.punchlines(f"Throughput setup {k}-{done}?", deadline=time.monotonic() + 60)

    try:
        await asyncio.gather(*(caller(k) for k in range(20)))  # warm-up
        done = 0
        start = time.perf_counter()
        await asyncio.gather(*(caller(k) for k in range(callers)))
        return total / (time.perf_counter() - start)
    finally:
        await generator.close()


# -- 3. failover ------------------------------------------------------------------------------------


async def failover(bench: Bench, total: int, kill: bool) -> tuple[Counter[str], list[float]]:
    namespace = f"failover-{'kill' if kill else 'calm'}"
    victims = [bench.worker(namespace, f"{namespace}-{i}", delay=0.02, batch=16) for i in range(2)]
    generator = await remote(bench, namespace, 2)
    latencies: list[float] = []

    async def one(i: int) -> str:
        await asyncio.sleep(i * 0.004)  # arrivals spread over ~4 s
        t = time.perf_counter()
        try:
            await generator.punchlines(f"Failover setup {i}?", deadline=time.monotonic() + 60)
        except Exception as exc:  # noqa: BLE001 - counted by kind
            return type(exc).__name__
        latencies.append(time.perf_counter() - t)
        return "ok"

    try:
        calls = [asyncio.create_task(one(i)) for i in range(total)]
        if kill:
            while sum(1 for c in calls if c.done()) < total // 2:
                await asyncio.sleep(0.01)
            os.kill(victims[0].pid, signal.SIGKILL)
        outcomes = Counter(await asyncio.gather(*calls))
    finally:
        await generator.close()
        for victim in victims:
            if victim.poll() is None:
                victim.terminate()
    return outcomes, latencies


# -- 4. the model -----------------------------------------------------------------------------------


async def model_comparison(bench: Bench, model_dir: Path, setups: list[str]) -> tuple[float, float]:
    from model.backends import load_backend

    model_settings = settings(
        bench.url,
        "model",
        None,
        bench.root / "cache",
        32,
        {
            "base": str(model_dir),
            "max_new_tokens": 16,
            "min_new_tokens": 16,
            "do_sample": False,
            "repetition_penalty": 1.0,
            "no_repeat_ngram_size": 0,
        },
    )
    local = InferenceWorker(
        functools.partial(load_backend, model_settings.model, model_settings.worker),
        GenerationParams.from_settings(model_settings.model),
        model_settings.worker,
    )
    await local.start()  # converts into the cache the worker process then loads from
    try:
        await local.punchlines(setups[0])
        start = time.perf_counter()
        await asyncio.gather(*(local.punchlines(s) for s in setups))
        in_process = len(setups) / (time.perf_counter() - start)
    finally:
        await local.close()
    bench.worker("model", "model-1", batch=32, model_dir=model_dir)
    generator = await remote(bench, "model", 1, timeout=900)
    try:
        await generator.punchlines(setups[0], deadline=time.monotonic() + 300)
        start = time.perf_counter()
        await asyncio.gather(*(generator.punchlines(s, deadline=time.monotonic() + 300) for s in setups))
        broker = len(setups) / (time.perf_counter() - start)
    finally:
        await generator.close()
    return in_process, broker


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="pl-broker-bench-"))
    bench = Bench(root)
    try:
        n = 100 if args.quick else 500
        local, broker = await overhead(bench, n)
        added = (percentile(broker.values, 50) - percentile(local.values, 50)) * 1000
        print("1. round trip, instant backend, one request at a time")
        print("  " + local.line())
        print("  " + broker.line())
        verdict = "met" if added <= 5 else "NOT met"
        print(f"  broker adds {added:.2f} ms at p50 (target <= 5 ms): {verdict}")

        rate = await throughput(bench, 2000 if args.quick else 10_000, 256)
        print("2. throughput, instant backend, 256 callers, one worker")
        print(
            f"  {rate:,.0f} setups/s through the broker (target >= 1,000/s): {'met' if rate >= 1000 else 'NOT met'}"
        )

        total = 300 if args.quick else 1000
        calm, calm_lat = await failover(bench, total, kill=False)
        killed, kill_lat = await failover(bench, total, kill=True)
        lost = total - sum(killed.values())
        failed = sum(v for k, v in killed.items() if k != "ok")
        print(f"3. failover: {total} requests over two workers (20 ms a batch), one SIGKILLed midway")
        print(
            f"  without a kill: {dict(calm)}, p95 {percentile(calm_lat, 95) * 1000:.0f} ms, "
            f"max {max(calm_lat) * 1000:.0f} ms"
        )
        print(
            f"  with a kill:    {dict(killed)}, p95 {percentile(kill_lat, 95) * 1000:.0f} ms, "
            f"max {max(kill_lat) * 1000:.0f} ms (the dead worker's requests wait out its heartbeat TTL)"
        )
        added_p95 = (percentile(kill_lat, 95) - percentile(calm_lat, 95)) * 1000
        print(f"  lost {lost}, failed {failed}, added p95 {added_p95:.0f} ms")

        if not args.skip_model:
            sys.path.insert(0, str(ROOT / "bench"))
            from inference import build_random_model, load_setups, shared_flan_dir  # type: ignore[import-not-found]

            flan = shared_flan_dir()
            model_dir = root / "flan-t5-large-random"
            build_random_model(flan, model_dir, args.quick)
            setups = load_setups(flan, 32)
            in_process, via_broker = await model_comparison(bench, model_dir, setups)
            label = "2-layer test model" if args.quick else "flan-t5-large architecture, random weights"
            print(f"4. {label}, default CPU backend, 32 setups at once")
            print(
                f"  in-process worker: {in_process:.2f} jokes/s; one worker process: {via_broker:.2f} jokes/s "
                f"({via_broker / in_process:.2f}x)"
            )
    finally:
        bench.close()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-model", action="store_true")
    parser.add_argument("--serve-worker", action="store_true", help=argparse.SUPPRESS)
    for flag in ("--url", "--namespace", "--worker-id", "--cache", "--model-dir"):
        parser.add_argument(flag, help=argparse.SUPPRESS)
    parser.add_argument("--adapter", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_worker:
        serve_worker(args)
        return
    if shutil.which("redis-server") is None:
        sys.exit("bench: redis-server is not installed (apt-get install -y redis-server)")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
