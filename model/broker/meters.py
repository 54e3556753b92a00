"""The Prometheus figures of a worker process and of a bot process, each in its own registry.

Histograms are observed as things happen; everything else is read from its owner at scrape
time, so the numbers `/metrics` shows are the ones `punchline status` and `/stats` show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import Metric

from model.broker.exposition import FunctionCollector, gauge, labelled_counter, labelled_gauge
from model.types import WorkerStats

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """One version's stream as a worker last looked at it."""

    depth: int  # waiting + being generated
    pending: int  # delivered to a worker, not yet answered
    lag_s: float  # age of the oldest entry


class WorkerMeters:
    """`punchline worker`'s metrics."""

    def __init__(
        self,
        queues: Callable[[], Mapping[str, QueueFigures]],
        replies: Callable[[], Mapping[str, int]],
        in_flight: Callable[[], int],
        tokens_per_s: Callable[[], float],
        healthy: Callable[[], bool],
    ):
        self.registry = CollectorRegistry()
        self.batch_size = Histogram(
            "punchline_worker_batch_size",
            "Requests served together",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "punchline_worker_request_seconds",
            "From a request's arrival in the broker to its reply",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._queues, self._replies, self._in_flight = queues, replies, in_flight
        self._tokens, self._healthy = tokens_per_s, healthy
        self.registry.register(FunctionCollector(self._collect))

    def _collect(self) -> Iterable[Metric]:
        queues = self._queues()
        yield labelled_gauge(
            "punchline_worker_queue_depth",
            "Requests waiting or in progress",
            "version",
            {v: q.depth for v, q in queues.items()},
        )
        yield labelled_gauge(
            "punchline_worker_pending",
            "Requests delivered, not yet answered",
            "version",
            {v: q.pending for v, q in queues.items()},
        )
        yield labelled_gauge(
            "punchline_worker_lag_seconds",
            "Age of the oldest waiting request",
            "version",
            {v: q.lag_s for v, q in queues.items()},
        )
        yield labelled_counter(
            "punchline_worker_replies", "Replies posted, by status", "status", self._replies()
        )
        yield gauge("punchline_worker_in_flight", "Requests being generated now", self._in_flight())
        yield gauge(
            "punchline_worker_tokens_per_second", "Decoded tokens per second of generation", self._tokens()
        )
        yield gauge("punchline_worker_healthy", "1 once a real generation succeeded", float(self._healthy()))


class BotMeters:
    """`punchline serve`'s metrics about its calls to the fleet."""

    def __init__(
        self,
        outcomes: Callable[[], Mapping[str, int]],
        late_replies: Callable[[], int],
        in_flight: Callable[[], int],
        versions: Callable[[], Mapping[str, int]],
        workers: Callable[[], int],
    ):
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "punchline_bot_generation_seconds",
            "From sending a setup to its punchlines",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._outcomes, self._late, self._in_flight = outcomes, late_replies, in_flight
        self._versions, self._workers = versions, workers
        self.registry.register(FunctionCollector(self._collect))

    def _collect(self) -> Iterable[Metric]:
        yield labelled_counter(
            "punchline_bot_calls", "Calls to the fleet, by outcome", "outcome", self._outcomes()
        )
        yield gauge(
            "punchline_bot_late_replies", "Replies that came after their caller gave up", self._late()
        )
        yield gauge("punchline_bot_in_flight", "Calls waiting for a reply", self._in_flight())
        yield labelled_gauge(
            "punchline_bot_live_workers", "Live workers per version", "version", self._versions()
        )
        yield gauge("punchline_bot_workers", "Live workers", self._workers())


def worker_stats_registry(stats: Callable[[], WorkerStats]) -> CollectorRegistry:
    """`punchline serve`'s metrics with the in-process worker: its `WorkerStats` as gauges."""
    registry = CollectorRegistry()

    def collect() -> Iterable[Metric]:
        now = stats()
        yield gauge("punchline_worker_queue_depth", "Requests waiting or in progress", now.queue_depth)
        yield gauge("punchline_worker_requests", "Requests answered with punchlines", now.requests)
        yield gauge("punchline_worker_failed", "Requests answered with a generation error", now.failed)
        yield gauge(
            "punchline_worker_busy_rejections", "Requests refused at once: queue full", now.busy_rejections
        )
        yield gauge("punchline_worker_timeouts", "Requests past their deadline", now.timeouts)
        yield gauge("punchline_worker_mean_batch_size", "Requests per batch, on average", now.mean_batch_size)
        yield gauge(
            "punchline_worker_p95_latency_seconds", "95th percentile of request latency", now.p95_latency_s
        )
        yield gauge(
            "punchline_worker_tokens_per_second", "Decoded tokens per second of generation", now.tokens_per_s
        )

    registry.register(FunctionCollector(collect))
    return registry
