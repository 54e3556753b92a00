"""`Lease`: a key in Redis only one process holds at a time, renewed while it is held.

A Telegram token allows one `getUpdates` consumer (a second gets 409 Conflict), so two
`punchline serve` processes with one token and a broker share a lease: one polls, the other
waits, and takes over within about `ttl_s` when the first dies (it stops renewing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

from redis.exceptions import RedisError

from model.broker.connection import Client
from model.broker.scripts import Scripts

log = logging.getLogger(__name__)


class Lease:
    def __init__(self, client: Client, key: str, ttl_s: float, owner: str | None = None):
        self.client = client
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        self.owner = owner or secrets.token_hex(8)
        self.scripts = Scripts.register(client)

    async def try_acquire(self) -> bool:
        try:
            return bool(await self.client.set(self.key, self.owner, nx=True, px=self.ttl_ms))
        except (RedisError, OSError) as exc:
            log.info("lease %s: the broker does not answer (%s)", self.key, exc)
            return False

    async def wait(self, stop: asyncio.Event) -> bool:
        """Wait until this process holds the lease (True) or `stop` is set (False)."""
        waiting_said = False
        while not stop.is_set():
            if await self.try_acquire():
                return True
            if not waiting_said:
                log.info("another process holds %s; waiting to take over", self.key)
                waiting_said = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.ttl_ms / 3000)
        return False

    async def keep(self, stop: asyncio.Event) -> None:
        """Renew the lease until `stop` is set; return as soon as it is lost: someone else holds
        it, or Redis did not answer for as long as the lease lives (it may have expired, and
        another process may hold it now)."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.ttl_ms / 3000)
            if stop.is_set():
                return
            try:
                if not await self.scripts.renew(keys=[self.key], args=[self.owner, self.ttl_ms]):
                    log.warning("lost %s to another process", self.key)
                    return
                renewed = loop.time()
            except (RedisError, OSError) as exc:
                if loop.time() - renewed >= self.ttl_ms / 1000:
                    log.warning("lease %s: no renewal for its whole life (%s); giving it up", self.key, exc)
                    return
                log.info("lease %s: renewal failed (%s); trying again", self.key, exc)

    async def release(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.scripts.release(keys=[self.key], args=[self.owner])
