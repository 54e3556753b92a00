"""Sub-commands of `punchline` for the fleet: `worker`, `reload`, `status`.

All three need `PUNCHLINE_BROKER__URL`; heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

from config.flags import add_flags, settings_from_args
from config.settings import Settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the fleet's sub-commands to the `punchline` parser."""
    worker = sub.add_parser(
        "worker",
        help="serve the model to the bots through the broker (on a GPU machine)",
        description="Loads the base model and the adapters the broker's desired set names (first "
        "start: this machine's PUNCHLINE_MODEL__ADAPTER and __EXTRA_ADAPTERS), pulls setups from "
        "PUNCHLINE_BROKER__URL and posts the punchlines. Run as many as you like, anywhere that "
        "reaches Redis. SIGTERM finishes the batch in flight and stops.",
    )
    add_flags(worker, "base_model", "adapter", "backend", "device", "dtype")
    worker.set_defaults(handler=_worker)

    reload = sub.add_parser(
        "reload",
        help="make an adapter current on every worker",
        description="Reads ADAPTER_DIR here (default PUNCHLINE_MODEL__ADAPTER), uploads it through "
        "the broker (checked by its hash on every worker) and waits until every live worker "
        "loaded it; says which took it.",
    )
    reload.add_argument("adapter_dir", nargs="?", type=Path, metavar="ADAPTER_DIR")
    reload.add_argument(
        "--path", action="store_true", help="send the directory's path instead of uploading (a shared volume)"
    )
    reload.set_defaults(handler=_reload)

    status = sub.add_parser("status", help="the fleet: workers, versions, queues")
    status.add_argument("--json", action="store_true", help="one JSON object instead of text")
    status.set_defaults(handler=_status)


def _broker_settings(args: argparse.Namespace) -> Settings:
    from model.broker.connection import broker_url

    settings = settings_from_args(args)
    broker_url(settings.broker)  # BrokerError (one line) when unset or malformed
    return settings


def _worker(args: argparse.Namespace) -> int:
    from model.broker.serving import BrokerWorker

    settings = _broker_settings(args)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await BrokerWorker(settings).run(stop)

    asyncio.run(run())
    return 0


def _reload(args: argparse.Namespace) -> int:
    from config.errors import PunchlineError
    from model.broker.connection import connect
    from model.broker.fleet import Fleet
    from model.broker.keys import Keys
    from model.broker.remote import reload_fleet

    settings = _broker_settings(args)
    adapter_dir = args.adapter_dir or settings.model.adapter
    if adapter_dir is None:
        raise PunchlineError("no adapter directory: give one or set PUNCHLINE_MODEL__ADAPTER")

    async def run() -> str:
        client, raw = connect(settings.broker), connect(settings.broker, text=False)
        try:
            fleet = Fleet(client, Keys(settings.broker.namespace), raw)
            version = await reload_fleet(
                fleet, adapter_dir, settings.broker.reload_timeout_s, upload=not args.path
            )
            workers = await fleet.live_workers()
            return f"{version} is current on {len(workers)} worker(s): {', '.join(sorted(workers))}"
        finally:
            await client.aclose()
            await raw.aclose()

    print(asyncio.run(run()))
    return 0


def _status(args: argparse.Namespace) -> int:
    from model.broker.connection import connect
    from model.broker.fleet import Fleet, FleetStatus
    from model.broker.keys import Keys

    settings = _broker_settings(args)

    async def run() -> FleetStatus:
        client = connect(settings.broker)
        try:
            return await Fleet(client, Keys(settings.broker.namespace)).status()
        finally:
            await client.aclose()

    status = asyncio.run(run())
    if args.json:
        print(json.dumps(status_json(status), ensure_ascii=False))
    else:
        print(format_status(status))
    return 0


def status_json(status: Any) -> dict[str, Any]:
    return {
        "desired": list(status.desired.versions) if status.desired else [],
        "generation": status.desired.generation if status.desired else 0,
        "workers": list(status.workers),
        "queue_depths": status.queue_depths,
        "pending": status.pending,
        "live": status.live,
        "dead_letters": status.dead_letters,
    }


def format_status(status: Any) -> str:
    """The fleet as a few lines of text."""
    now_ms = time.time() * 1000
    desired = status.desired
    lines = [
        "desired: "
        + (", ".join(desired.versions) + f" (generation {desired.generation})" if desired else "none yet"),
        f"workers: {len(status.workers)}",
    ]
    for beat in status.workers:
        stats = beat.get("stats", {})
        uptime = (now_ms - float(beat.get("started_ms", now_ms))) / 1000
        lines.append(
            f"  {beat['id']} [{beat.get('state', '?')}{', healthy' if beat.get('healthy') else ''}] "
            f"{beat.get('backend', '?')}: {', '.join(beat.get('versions', []))}; up {uptime:.0f} s, "
            f"{stats.get('requests', 0)} answered, p95 {stats.get('p95_latency_s', 0)} s, "
            f"{stats.get('tokens_per_s', 0)} tokens/s"
        )
    lines.append("versions:")
    for version in sorted(set(status.queue_depths) | set(status.live)):
        lines.append(
            f"  {version}: {status.live.get(version, 0)} live worker(s), "
            f"{status.queue_depths.get(version, 0)} queued, {status.pending.get(version, 0)} in progress"
        )
    lines.append(f"dead letters: {status.dead_letters}")
    return "\n".join(lines)
