"""Connecting to Redis from `PUNCHLINE_BROKER__URL`.

redis-py's asyncio client (a pool of connections per client). Blocking reads (XREAD BLOCK,
XREADGROUP BLOCK, pub/sub) get a client of their own, so a long block never holds up the
short commands (admission, completion, heartbeats) that share the other one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from redis.asyncio import BlockingConnectionPool, Redis

from config.errors import PunchlineError
from config.settings import BrokerSettings

SCHEMES = ("redis", "rediss", "unix")


class BrokerError(PunchlineError):
    """The broker is misconfigured (a URL that is no Redis URL) or cannot be reached at all."""


def broker_url(settings: BrokerSettings) -> str:
    """The configured URL, checked; `BrokerError` names the variable without echoing secrets."""
    if settings.url is None:
        raise BrokerError("no broker configured: set PUNCHLINE_BROKER__URL (e.g. redis://localhost:6379/0)")
    url = settings.url.get_secret_value().strip()
    scheme = urlparse(url).scheme
    if scheme not in SCHEMES:
        raise BrokerError(
            "PUNCHLINE_BROKER__URL must start with redis://, rediss:// or unix:// "
            f"(it starts with {scheme + '://' if scheme else 'no scheme'})"
        )
    return url


# redis-py annotates every command with the union of its sync and async, bytes and str
# results; our clients decode to str (or keep bytes, for uploads) and callers parse what they
# read, so the client is typed as Any rather than cast at every call.
Client = Any


def connect(settings: BrokerSettings, *, blocking_s: float = 0.0, text: bool = True) -> Client:
    """A `redis.asyncio.Redis` client for the configured Redis (no I/O yet: connections open
    on first use).

    `blocking_s` is the longest BLOCK this client's callers use; its socket timeout allows for
    it. `text=False` gives bytes (adapter uploads).
    """
    # A bounded pool that makes callers wait (up to the op timeout) for a free connection:
    # a burst of calls shares a few connections instead of opening one each.
    pool = BlockingConnectionPool.from_url(
        broker_url(settings),
        max_connections=settings.max_connections,
        timeout=settings.op_timeout_s,
        decode_responses=text,
        socket_timeout=settings.op_timeout_s + blocking_s,
        socket_connect_timeout=settings.op_timeout_s,
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes both
