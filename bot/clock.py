"""Time, injected: wall-clock instants for records and a monotonic clock for limits and deadlines.

Everything in `bot/` takes a `Clock` instead of calling `time` or `datetime.now()` directly, so
tests can move time by hand (`ManualClock`) instead of sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """A source of time."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC (stored with records)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (`time.monotonic()` scale: limits, deadlines)."""
        ...


class SystemClock:
    """The real clocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that only moves when told to; for tests and simulations.

    `monotonic()` starts at the real `time.monotonic()` so deadlines computed from it remain
    meaningful to code that compares them with the real clock (e.g. an inference worker).
    """

    def __init__(self, start: datetime | None = None, monotonic_start: float | None = None):
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._mono = time.monotonic() if monotonic_start is None else monotonic_start

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by `seconds`."""
        if seconds < 0:
            raise ValueError("time does not go back")
        self._now += timedelta(seconds=seconds)
        self._mono += seconds
