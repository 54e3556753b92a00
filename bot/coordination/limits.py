"""`SharedRateLimiter`: the per-person token bucket and one-request-in-flight rule of
`bot.core.limits`, kept in Redis so that every bot process (say Telegram and Discord run apart)
applies one limit. One Lua script takes the token and marks the request in flight atomically.

When Redis does not answer, the limit falls back to this process's own `RateLimiter` (logged):
a person is limited per process for a while rather than refused outright.
"""

from __future__ import annotations

import logging
import secrets

from redis.exceptions import RedisError

from bot.clock import Clock
from bot.core.limits import Admission, Decision, RateLimiter
from config.settings import BrokerSettings, LimitSettings
from model.broker.connection import Client
from model.broker.keys import Keys
from model.broker.scripts import Scripts

log = logging.getLogger(__name__)


class SharedRateLimiter:
    """A `bot.core.limits.Limiter` in Redis."""

    def __init__(
        self,
        client: Client,
        broker: BrokerSettings,
        limits: LimitSettings,
        clock: Clock,
        in_flight_ttl_s: float,
        *,
        per_chat: bool = False,
    ):
        """`in_flight_ttl_s`: how long an in-flight mark lives if its process dies before
        releasing it (a little past the longest request); `per_chat`: a chat's limiter (its
        bucket sizes, no one-in-flight rule)."""
        self.client = client
        self.keys = Keys(broker.namespace)
        self.scripts = Scripts.register(client)
        self.burst = limits.chat_burst if per_chat else limits.burst
        self.rate_per_ms = (limits.chat_per_minute if per_chat else limits.per_minute) / 60_000
        self.in_flight_ttl_ms = 0 if per_chat else int(in_flight_ttl_s * 1000)
        self.fallback = RateLimiter(limits, clock, per_chat=per_chat)
        self._owners: dict[str, str] = {}

    async def acquire(self, key: str) -> Decision:
        owner = secrets.token_hex(6)
        try:
            status, wait_ms = await self.scripts.take_token(
                keys=[self.keys.limit(key), self.keys.in_flight(key)],
                args=[self.burst, self.rate_per_ms, self.in_flight_ttl_ms, owner],
            )
        except (RedisError, OSError) as exc:
            log.warning("shared limits unavailable (%s); limiting in this process", exc)
            return await self.fallback.acquire(key)
        if status == "in_flight":
            return Decision(Admission.IN_FLIGHT)
        if status == "empty":
            return Decision(Admission.EMPTY, int(wait_ms) / 1000)
        if self.in_flight_ttl_ms:
            self._owners[key] = owner
        return Decision(Admission.OK)

    async def release(self, key: str) -> None:
        owner = self._owners.pop(key, None)
        if owner is None:  # taken from the fallback, or a chat's (nothing in flight)
            await self.fallback.release(key)
            return
        try:
            await self.scripts.release(keys=[self.keys.in_flight(key)], args=[owner])
        except (RedisError, OSError) as exc:
            log.info("could not release %s's in-flight mark (%s); it expires by itself", key, exc)
