"""`punchline serve`: storage → worker → core → battles → front-ends, on one event loop.

Telegram runs when `PUNCHLINE_TELEGRAM__TOKEN` is set, Discord when `PUNCHLINE_DISCORD__TOKEN`
is set. SIGINT/SIGTERM (or the `stop` event) end it cleanly: the front-ends stop taking updates
and finish the replies in progress (the worker still answers them); after a grace period the
worker is closed, which answers whatever is still queued with "busy, try again"; then the
database is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from bot.battles.service import BattleService, create_battle_service
from bot.clock import Clock, SystemClock
from bot.core import BotCore
from bot.storage import Storage
from config.errors import PunchlineError
from config.settings import Settings
from model.types import Generator

log = logging.getLogger(__name__)

# Seconds the front-ends get to finish replies in progress before the worker is closed.
SHUTDOWN_GRACE_S = 10.0
READY_TIMEOUT_S = 60.0  # how long battles wait for the front-ends to connect before resuming
READY_POLL_S = 0.1


class NoFrontEndError(PunchlineError):
    """`punchline serve` with no chat platform configured."""


class ManagedGenerator(Generator, Protocol):
    """A generator with a lifecycle (the in-process worker)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FrontEnd:
    """A chat front-end as `run_serve` drives it."""

    name: str
    run: Callable[[asyncio.Event], Awaitable[None]]  # runs until the event is set
    ready: Callable[[], bool] = lambda: True  # connected and able to post (battles resume then)


FrontEndFactory = Callable[[Settings, BotCore, BattleService | None], list[FrontEnd]]


def configured_platforms(settings: Settings) -> list[str]:
    names = []
    if settings.telegram.token is not None and settings.telegram.token.get_secret_value().strip():
        names.append("telegram")
    if settings.discord.token is not None and settings.discord.token.get_secret_value().strip():
        names.append("discord")
    return names


def build_battles(
    settings: Settings, storage: Storage, generator: Generator, clock: Clock, core: BotCore
) -> BattleService:
    """The joke-battle service, sharing the core's storage, generator and clock."""
    return create_battle_service(settings, storage, generator, clock, core=core)


def build_front_ends(
    settings: Settings, core: BotCore, battles: BattleService | None
) -> list[FrontEnd]:
    """One runner per configured platform; the chat libraries are imported only when used."""
    front_ends = []
    platforms = configured_platforms(settings)
    if "telegram" in platforms:
        from bot.telegram_bot import build_application, run_telegram

        application = build_application(settings, core, battles)
        front_ends.append(
            FrontEnd("telegram", lambda stop: run_telegram(application, stop), lambda: application.running)
        )
    if "discord" in platforms:
        from bot.discord_bot import build_client, run_discord

        client = build_client(settings, core, battles)
        token = settings.discord.token.get_secret_value()  # type: ignore[union-attr]
        front_ends.append(
            FrontEnd("discord", lambda stop: run_discord(client, token, stop), client.is_ready)
        )
    return front_ends


@contextlib.contextmanager
def _signals_set(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` (only where signals can be handled: the main thread)."""
    loop = asyncio.get_running_loop()
    installed = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # e.g. Windows
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def run_serve(
    settings: Settings,
    stop: asyncio.Event | None = None,
    *,
    generator: ManagedGenerator | None = None,
    clock: Clock | None = None,
    front_ends: FrontEndFactory = build_front_ends,
    grace_s: float = SHUTDOWN_GRACE_S,
) -> None:
    """Serve every configured front-end until `stop` is set (or SIGINT/SIGTERM).

    `generator` replaces the in-process worker (tests); `front_ends` builds the runners;
    `grace_s` is how long front-ends may finish replies before the worker is closed.
    Raises `NoFrontEndError` when neither token is set, and a `PunchlineError` when a
    front-end stops with an error (the others are stopped too).
    """
    if not configured_platforms(settings):
        raise NoFrontEndError(
            "no chat platform configured: set PUNCHLINE_TELEGRAM__TOKEN and/or "
            "PUNCHLINE_DISCORD__TOKEN, or try the bot locally with `punchline chat`"
        )
    stop = stop or asyncio.Event()
    clock = clock or SystemClock()
    with _signals_set(stop):
        storage = await Storage.open(settings.storage.path)
        worker: ManagedGenerator | None = None
        try:
            if generator is None:
                from model.worker import create_worker  # lazily: the model stack is heavy

                generator = create_worker(settings)
            worker = generator
            await worker.start()
            core = BotCore(settings, storage, worker, clock)
            await _serve(settings, core, worker, stop, front_ends, grace_s)
        finally:
            if worker is not None:
                await worker.close()
            await storage.close()
            log.info("stopped")


async def _serve(
    settings: Settings,
    core: BotCore,
    worker: ManagedGenerator,
    stop: asyncio.Event,
    front_ends: FrontEndFactory,
    grace_s: float,
) -> None:
    battles = build_battles(settings, core.storage, worker, core.clock, core)
    runners = front_ends(settings, core, battles)
    if not runners:
        raise NoFrontEndError("no front-end could be built from the settings")
    tasks = {asyncio.create_task(fe.run(stop), name=fe.name): fe for fe in runners}
    stop_task = asyncio.create_task(stop.wait())
    try:
        log.info("serving %s", ", ".join(fe.name for fe in runners))
        if battles is not None:
            await _resume_battles_when_ready(battles, runners, [*tasks, stop_task])
        await asyncio.wait([*tasks, stop_task], return_when=asyncio.FIRST_COMPLETED)
        stop.set()  # one front-end ending (or failing) stops the others too
        if battles is not None:
            await battles.close()  # timers stop; rounds stay in the database and resume next time
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        if pending:
            # Closing the worker answers every queued request ("busy, try again"), so the
            # front-ends' handlers finish and they can shut down.
            log.info("closing the worker: %d front-end(s) still have replies in progress", len(pending))
            await worker.close()
            _, pending = await asyncio.wait(pending, timeout=grace_s)
            for task in pending:
                log.warning("front-end %s did not stop in time; cancelling it", task.get_name())
                task.cancel()
    finally:
        stop_task.cancel()
        for task in tasks:
            if not task.done():
                task.cancel()
    _raise_first_failure(list(tasks))


async def _resume_battles_when_ready(
    battles: BattleService, runners: list[FrontEnd], watch: list[asyncio.Task[Any]]
) -> None:
    """Resume open battle rounds once every front-end can post (or one of `watch` ends)."""
    waited = 0.0
    while not all(fe.ready() for fe in runners) and not any(t.done() for t in watch):
        if waited >= READY_TIMEOUT_S:
            log.warning("front-ends not ready after %.0f s; resuming battles anyway", waited)
            break
        await asyncio.sleep(READY_POLL_S)
        waited += READY_POLL_S
    if not any(t.done() for t in watch):
        await battles.resume()


def _raise_first_failure(tasks: list[asyncio.Task[Any]]) -> None:
    failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
    for task in failed:
        log.error("front-end %s failed", task.get_name(), exc_info=task.exception())
    if failed:
        exc = failed[0].exception()
        if isinstance(exc, PunchlineError):
            raise exc
        raise PunchlineError(f"the {failed[0].get_name()} front-end stopped: {exc}") from exc
