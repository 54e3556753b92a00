"""`python -m tests.fakes.broker_worker`: a real `BrokerWorker` in a process of its own, over a
fake backend that answers at once (or after `--delay`), for the tests that kill, restart and
reload workers. Its adapters are directories with a `punchline.json`; each one's version is the
version the fake backend answers with.

    python -m tests.fakes.broker_worker --url redis://127.0.0.1:6379/0 --namespace t1 \\
        --adapter /tmp/v1 --delay 0.2 --worker-id w1
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from config.settings import Settings
from model.adapter_meta import AdapterMetadata
from model.broker.serving import BrokerWorker
from tests.fakes.backend import FakeBackend

# Short beats, so a killed worker is noticed within a second or two.
FAST_BROKER = {"heartbeat_s": 0.2, "worker_ttl_s": 1.0, "resync_s": 1.0, "op_timeout_s": 1.0}


def fake_loader(delay_s: float):  # type: ignore[no-untyped-def]
    def load(adapter_dir: Path | None) -> FakeBackend:
        version = AdapterMetadata.load(adapter_dir).version if adapter_dir is not None else "base"
        return FakeBackend(version, delay_s=delay_s)

    return load


def worker_settings(url: str, namespace: str, adapter: Path | None, cache: Path, batch: int = 32) -> Settings:
    return Settings(
        broker={"url": url, "namespace": namespace, **FAST_BROKER},
        model={"adapter": adapter, "cache_dir": cache, "candidates": 1},
        worker={"max_batch_size": batch, "stats_log_s": 0, "queue_size": 1024},
    )


async def run(settings: Settings, delay_s: float, worker_id: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await BrokerWorker(settings, loader=fake_loader(delay_s), worker_id=worker_id).run(stop)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--adapter", type=Path)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--worker-id", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    settings = worker_settings(args.url, args.namespace, args.adapter, args.cache, args.batch)
    asyncio.run(run(settings, args.delay, args.worker_id))


if __name__ == "__main__":
    main()
