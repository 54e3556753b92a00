"""The worker's counters: queue depth, batch sizes, latencies, tokens per second.

Plain Python, owned by one worker (no module state); only the event loop thread touches it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from model.types import WorkerStats

LATENCY_WINDOW = 1000  # percentiles over the most recent requests


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile `q` (0..100) of `values`; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class WorkerMetrics:
    """Counters since the worker started."""

    requests: int = 0  # answered with punchlines
    failed: int = 0  # answered with a generation error
    busy_rejections: int = 0
    timeouts: int = 0
    batches: int = 0
    batched_requests: int = 0
    tokens: int = 0
    generation_s: float = 0.0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def record_batch(self, size: int, tokens: int, seconds: float) -> None:
        """A backend call that decoded `tokens` tokens for `size` requests."""
        self.batches += 1
        self.batched_requests += size
        self.tokens += tokens
        self.generation_s += seconds

    def record_success(self, latency_s: float) -> None:
        self.requests += 1
        self.latencies.append(latency_s)

    def snapshot(
        self,
        *,
        version: str,
        backend: str,
        queue_depth: int,
        loaded_at: datetime | None,
        versions: tuple[str, ...],
    ) -> WorkerStats:
        """The counters as the `WorkerStats` the bot shows."""
        latencies = list(self.latencies)
        return WorkerStats(
            version=version,
            backend=backend,
            queue_depth=queue_depth,
            requests=self.requests,
            failed=self.failed,
            busy_rejections=self.busy_rejections,
            timeouts=self.timeouts,
            batches=self.batches,
            mean_batch_size=self.batched_requests / self.batches if self.batches else 0.0,
            p50_latency_s=percentile(latencies, 50),
            p95_latency_s=percentile(latencies, 95),
            tokens_per_s=self.tokens / self.generation_s if self.generation_s > 0 else 0.0,
            loaded_at=loaded_at,
            versions=versions,
        )


def describe(stats: WorkerStats) -> str:
    """One log line with the numbers an operator looks at."""
    return (
        f"worker {stats.backend} version={stats.version} queue={stats.queue_depth} "
        f"requests={stats.requests} failed={stats.failed} busy={stats.busy_rejections} "
        f"timeouts={stats.timeouts} batches={stats.batches} "
        f"mean_batch={stats.mean_batch_size:.1f} p50={stats.p50_latency_s:.2f}s "
        f"p95={stats.p95_latency_s:.2f}s tokens/s={stats.tokens_per_s:.1f}"
    )
