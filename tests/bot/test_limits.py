"""The per-user token bucket and the one-in-flight rule, on a hand-moved clock."""

from __future__ import annotations

import pytest

from bot.clock import ManualClock
from bot.core.limits import Admission, RateLimiter
from config.settings import LimitSettings


def limiter(burst: int = 3, per_minute: float = 6.0) -> tuple[RateLimiter, ManualClock]:
    clock = ManualClock()
    return RateLimiter(LimitSettings(burst=burst, per_minute=per_minute), clock), clock


async def test_burst_then_refill_at_the_configured_rate() -> None:
    lim, clock = limiter(burst=3, per_minute=6.0)  # one token every 10 s
    for _ in range(3):
        assert (await lim.acquire("ann")).ok
        await lim.release("ann")
    empty = await lim.acquire("ann")
    assert empty.admission is Admission.EMPTY and empty.retry_after == pytest.approx(10.0)
    clock.advance(4)
    assert (await lim.acquire("ann")).retry_after == pytest.approx(6.0)
    clock.advance(6)
    assert (await lim.acquire("ann")).ok
    await lim.release("ann")
    # Refill never exceeds the burst.
    clock.advance(3600)
    assert lim.tokens("ann") == pytest.approx(3.0)


async def test_users_have_their_own_buckets() -> None:
    lim, _ = limiter(burst=1)
    assert (await lim.acquire("ann")).ok
    await lim.release("ann")
    assert not (await lim.acquire("ann")).ok
    assert (await lim.acquire("bob")).ok


async def test_one_request_in_flight() -> None:
    lim, _ = limiter(burst=5)
    assert (await lim.acquire("ann")).ok
    assert lim.in_flight("ann")
    second = await lim.acquire("ann")
    assert second.admission is Admission.IN_FLIGHT
    assert lim.tokens("ann") == pytest.approx(4.0)  # a refused request takes no token
    await lim.release("ann")
    assert not lim.in_flight("ann")
    assert (await lim.acquire("ann")).ok


async def test_idle_full_buckets_are_pruned() -> None:
    lim, clock = limiter(burst=1, per_minute=60.0)
    lim.PRUNE_AT = 10
    for i in range(10):
        assert (await lim.acquire(i)).ok
        await lim.release(i)
    clock.advance(5)  # every bucket is full again
    assert (await lim.acquire("new")).ok
    assert len(lim._buckets) == 1  # only the new user's bucket is kept
