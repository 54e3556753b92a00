"""Per-person limits: a token bucket, and one request in flight per person.

The bucket holds `burst` tokens and refills at `per_minute` tokens a minute; a request takes
one. `RateLimiter` keeps them in this process (time from an injected `Clock`, so tests move
time by hand); `bot.coordination.limits.SharedRateLimiter` keeps the same rule in Redis, so
several bot processes apply one limit. Both are a `Limiter`.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.clock import Clock
from config.settings import LimitSettings


class Admission(StrEnum):
    OK = "ok"
    IN_FLIGHT = "in_flight"  # this user's previous request is still being answered
    EMPTY = "empty"  # the bucket is empty: wait `retry_after` seconds


@dataclass(frozen=True, slots=True)
class Decision:
    admission: Admission
    retry_after: float = 0.0

    @property
    def ok(self) -> bool:
        return self.admission is Admission.OK


class Limiter(Protocol):
    """Admits a person's request or says why not. `acquire` then, always, `release`."""

    async def acquire(self, key: str) -> Decision:
        """Take a token and mark `key` in flight, or say why not (nothing taken then)."""
        ...

    async def release(self, key: str) -> None:
        """The request of `key` is answered (successfully or not)."""
        ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Admits a user's request or says why not. `acquire` then, always, `release`."""

    # Buckets that have refilled completely carry no information; they are dropped when the
    # table grows past this size so memory stays bounded by active users.
    PRUNE_AT = 10_000

    def __init__(self, settings: LimitSettings, clock: Clock, *, per_chat: bool = False):
        """A person's limiter, or with `per_chat` a chat's: its own bucket sizes, and no
        one-in-flight rule (a chat has many people)."""
        self.burst = float(settings.chat_burst if per_chat else settings.burst)
        self.rate = (
            settings.chat_per_minute if per_chat else settings.per_minute
        ) / 60.0  # tokens per second
        self.one_in_flight = not per_chat
        self.clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}
        self._in_flight: set[Hashable] = set()

    def _refill(self, key: Hashable, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        return bucket

    async def acquire(self, key: Hashable) -> Decision:
        """Take a token and mark `key` in flight, or say why not (nothing taken then)."""
        if key in self._in_flight:
            return Decision(Admission.IN_FLIGHT)
        now = self.clock.monotonic()
        bucket = self._refill(key, now)
        if bucket.tokens < 1.0:
            return Decision(Admission.EMPTY, (1.0 - bucket.tokens) / self.rate)
        bucket.tokens -= 1.0
        if self.one_in_flight:
            self._in_flight.add(key)
        if len(self._buckets) > self.PRUNE_AT:
            self._prune(now)
        return Decision(Admission.OK)

    async def release(self, key: Hashable) -> None:
        """The request of `key` is answered (successfully or not)."""
        self._in_flight.discard(key)

    def in_flight(self, key: Hashable) -> bool:
        return key in self._in_flight

    def tokens(self, key: Hashable) -> float:
        """Tokens `key` has now (for tests and diagnostics)."""
        return self._refill(key, self.clock.monotonic()).tokens

    def _prune(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if k not in self._in_flight]:
            bucket = self._buckets[key]
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.burst:
                del self._buckets[key]
