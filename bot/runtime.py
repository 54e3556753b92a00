"""One start-up path for `punchline serve` and `punchline chat`: settings → storage → generator →
battles → core, opened together and closed in reverse order.

    async with open_runtime(settings) as runtime:
        reply = await runtime.core.handle_setup(setup)

The generator is the in-process worker (`model.worker`), or, with `PUNCHLINE_BROKER__URL`, the
remote generator that sends setups to `punchline worker` processes through Redis (then the
per-person limits live in Redis too, so several bot processes apply one); tests pass a fake.
The runtime starts the generator and closes it either way. Closing stops the battle timers first (rounds
stay in the database), then the generator (which answers whatever is still queued), then the
database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.battles.service import BattleService
from bot.clock import Clock, SystemClock
from bot.core.access import Access
from bot.core.limits import Limiter, RateLimiter
from bot.core.service import BotCore
from bot.core.suggestions import SetupSuggestions
from bot.storage import Storage
from config.settings import Settings
from model.types import Generator

log = logging.getLogger(__name__)


@runtime_checkable
class ManagedGenerator(Generator, Protocol):
    """A generator with a life cycle (the in-process worker)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything a front-end needs, built once."""

    settings: Settings
    clock: Clock
    storage: Storage
    generator: Generator
    core: BotCore
    battles: BattleService | None


def create_generator(settings: Settings) -> ManagedGenerator:
    """The generator the settings ask for (not started): the remote one with a broker, else the
    in-process worker."""
    if settings.broker.url is not None:
        from model.broker.remote import RemoteGenerator

        return RemoteGenerator(settings)
    from model.worker import create_worker  # lazily: the model stack is heavy

    return create_worker(settings)


@asynccontextmanager
async def open_limiters(settings: Settings, clock: Clock) -> AsyncIterator[tuple[Limiter, Limiter]]:
    """The per-person and per-chat limiters: in Redis with a broker (shared by every bot
    process), else in this process."""
    if settings.broker.url is None:
        yield RateLimiter(settings.limits, clock), RateLimiter(settings.limits, clock, per_chat=True)
        return
    from bot.coordination.limits import SharedRateLimiter
    from model.broker.connection import connect

    client = connect(settings.broker)
    # An in-flight mark outlives the longest request a little, should its process die.
    ttl = settings.worker.timeout_s + 30
    try:
        yield (
            SharedRateLimiter(client, settings.broker, settings.limits, clock, ttl),
            SharedRateLimiter(client, settings.broker, settings.limits, clock, ttl, per_chat=True),
        )
    finally:
        await client.aclose()


def pool_setups(service: BattleService) -> Callable[[], list[str]] | None:
    """The battle pool's setups for `/joke` alone, None when no pool is configured."""
    pool = service.pool
    if not pool.configured:
        return None
    return lambda: [s.setup for s in pool.load()]


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    generator: Generator | None = None,
    clock: Clock | None = None,
    battles: bool = True,
) -> AsyncIterator[Runtime]:
    """Open storage, start the generator, build battles and the core; close all on exit.

    Raises `StorageError`, `ModelLoadError`, `AdapterError`, `FilterError` or
    `LanguageCheckError` (one clear line each) when a part cannot start; whatever was opened by then is closed again.
    """
    clock = clock or SystemClock()
    storage = await Storage.open(settings.storage.path, synchronous=settings.storage.synchronous)
    service: BattleService | None = None
    try:
        generator = generator or create_generator(settings)
        if isinstance(generator, ManagedGenerator):
            await generator.start()
        try:
            access = Access(settings)
            if battles:
                service = BattleService(settings, storage, generator, clock, access)
            sections = [service.stats_text] if service is not None else []
            suggestions = SetupSuggestions(pool_setups(service) if service is not None else None)
            async with open_limiters(settings, clock) as limiters:
                core = BotCore(
                    settings,
                    storage,
                    generator,
                    clock,
                    access=access,
                    limiters=limiters,
                    stats_sections=sections,
                    suggestions=suggestions,
                )
                # Half a second, once: off the loop, and a broken install shows at start-up.
                await asyncio.to_thread(core.language.load)
                yield Runtime(settings, clock, storage, generator, core, service)
        finally:
            if service is not None:
                await service.close()  # timers stop; rounds stay in the database
            if isinstance(generator, ManagedGenerator):
                await generator.close()
    finally:
        await storage.close()
        log.info("stopped")
