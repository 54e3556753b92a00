"""`/metrics` (Prometheus text format) and `/healthz` over HTTP, for `punchline serve` and
`punchline worker` (`PUNCHLINE_METRICS__PORT`; 0, the default, serves nothing).

Each process owns its registry: the figures are read from the objects that keep them at scrape
time (custom collectors), so nothing here holds state of its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from config.settings import MetricsSettings

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def labelled_gauge(name: str, doc: str, label: str, values: Mapping[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def labelled_counter(name: str, doc: str, label: str, values: Mapping[str, float]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class FunctionCollector(Collector):
    """A collector that asks a function for its metric families at every scrape."""

    def __init__(self, collect: Callable[[], Iterable[Metric]]):
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return list(self._collect())


@asynccontextmanager
async def metrics_server(
    settings: MetricsSettings,
    registry: CollectorRegistry,
    health: Callable[[], tuple[bool, dict[str, object]]],
) -> AsyncIterator[int]:
    """Serve `/metrics` and `/healthz` while the block runs; yields the port (0: off).

    `health()` says whether the process is healthy and why (a worker is healthy once one real
    generation succeeded); `/healthz` answers 200 or 503 with that as JSON.
    """
    if settings.port == 0:
        yield 0
        return

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE})

    async def healthz(request: web.Request) -> web.Response:
        ok, detail = health()
        return web.Response(
            status=200 if ok else 503,
            text=json.dumps({"healthy": ok, **detail}),
            content_type="application/json",
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = runner.addresses[0][1]
    log.info("metrics on http://%s:%d/metrics", settings.host, port)
    try:
        yield port
    finally:
        await runner.cleanup()
