"""`punchline serve`: the configured chat front-ends over one runtime, on one event loop.

Telegram runs when `PUNCHLINE_TELEGRAM__TOKEN` is set, Discord when `PUNCHLINE_DISCORD__TOKEN`
is set. SIGINT/SIGTERM (or the `stop` event) end it cleanly: the front-ends stop taking updates
and finish the replies in progress (the generator still answers them); after a grace period the
generator is closed, which answers whatever is still queued with "busy, try again"; then the
runtime closes the rest (`bot.runtime`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from bot.battles.challengers import Challengers
from bot.clock import Clock
from bot.runtime import ManagedGenerator, Runtime, open_runtime
from config.errors import PunchlineError
from config.settings import Settings
from model.broker.exposition import metrics_server
from model.broker.meters import worker_stats_registry
from model.types import Generator

log = logging.getLogger(__name__)

# Seconds the front-ends get to finish replies in progress before the generator is closed.
SHUTDOWN_GRACE_S = 10.0
READY_TIMEOUT_S = 60.0  # how long battles wait for the front-ends to connect before resuming
READY_POLL_S = 0.1


class NoFrontEndError(PunchlineError):
    """`punchline serve` with no chat platform configured."""


@dataclass(frozen=True, slots=True)
class FrontEnd:
    """A chat front-end as `run_serve` drives it."""

    name: str
    run: Callable[[asyncio.Event], Awaitable[None]]  # runs until the event is set
    ready: Callable[[], bool] = lambda: True  # connected and able to post (battles resume then)


FrontEndFactory = Callable[[Runtime], list[FrontEnd]]


def configured_platforms(settings: Settings) -> list[str]:
    names = []
    if settings.telegram.token is not None and settings.telegram.token.get_secret_value().strip():
        names.append("telegram")
    if settings.discord.token is not None and settings.discord.token.get_secret_value().strip():
        names.append("discord")
    return names


def build_front_ends(runtime: Runtime) -> list[FrontEnd]:
    """One runner per configured platform; the chat libraries are imported only when used."""
    front_ends = []
    platforms = configured_platforms(runtime.settings)
    if "telegram" in platforms:
        from bot.telegram.app import build_application

        application = build_application(runtime.settings, runtime.core, runtime.battles)
        front_ends.append(
            FrontEnd(
                "telegram",
                functools.partial(_run_telegram, application, runtime.settings),
                lambda: application.running,
            )
        )
    if "discord" in platforms:
        from bot.discord.client import build_client, run_discord

        client = build_client(runtime.settings, runtime.core, runtime.battles)
        token = runtime.settings.discord.token
        front_ends.append(FrontEnd("discord", lambda stop: run_discord(client, token, stop), client.is_ready))
    return front_ends


async def _run_telegram(application: Any, settings: Settings, stop: asyncio.Event) -> None:
    """Run Telegram; with a broker, poll only while holding the poller lease (one token allows
    one getUpdates consumer, and several `punchline serve` processes may share a token)."""
    from bot.telegram.app import run_telegram

    if settings.broker.url is None:
        await run_telegram(application, stop)
        return
    from bot.coordination.lease import Lease
    from model.broker.connection import connect
    from model.broker.keys import Keys

    assert settings.telegram.token is not None
    token_key = hashlib.sha256(settings.telegram.token.get_secret_value().encode()).hexdigest()[:16]
    client = connect(settings.broker)
    lease = Lease(
        client, Keys(settings.broker.namespace).lease(f"telegram:{token_key}"), settings.broker.poll_lease_s
    )
    try:
        await run_telegram(application, stop, lease)
    finally:
        await client.aclose()


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
    generator: Generator | None = None,
    clock: Clock | None = None,
    front_ends: FrontEndFactory = build_front_ends,
    grace_s: float = SHUTDOWN_GRACE_S,
) -> None:
    """Serve every configured front-end until `stop` is set (or SIGINT/SIGTERM).

    `generator` replaces the in-process worker (tests); `front_ends` builds the runners;
    `grace_s` is how long front-ends may finish replies before the generator is closed.
    Raises `NoFrontEndError` when neither token is set, and, once serving ends, a
    `PunchlineError` when a front-end failed (the others served on meanwhile).
    """
    if not configured_platforms(settings):
        raise NoFrontEndError(
            "no chat platform configured: set PUNCHLINE_TELEGRAM__TOKEN and/or "
            "PUNCHLINE_DISCORD__TOKEN, or try the bot locally with `punchline chat`"
        )
    stop = stop or asyncio.Event()
    with _signals_set(stop):
        async with open_runtime(settings, generator=generator, clock=clock) as runtime:
            await _serve(runtime, stop, front_ends, grace_s)


def _metrics_registry(runtime: Runtime) -> CollectorRegistry:
    meters = getattr(runtime.generator, "meters", None)  # the remote generator keeps its own
    if meters is not None:
        return meters.registry
    return worker_stats_registry(runtime.generator.stats)


async def _serve(runtime: Runtime, stop: asyncio.Event, front_ends: FrontEndFactory, grace_s: float) -> None:
    runners = front_ends(runtime)
    if not runners:
        raise NoFrontEndError("no front-end could be built from the settings")

    def health() -> tuple[bool, dict[str, object]]:
        ready = {fe.name: fe.ready() for fe in runners}
        versions = list(runtime.generator.versions)
        return all(ready.values()) and bool(versions), {"front_ends": ready, "versions": versions}

    if runtime.battles is not None:
        await _restore_promoted(runtime.battles.challengers)
    background = [asyncio.create_task(_purge_periodically(runtime, stop), name="retention-purge")]
    if runtime.battles is not None:
        background.append(
            asyncio.create_task(
                _judge_challengers(runtime, runtime.battles.challengers, stop), name="challengers"
            )
        )
    try:
        async with metrics_server(runtime.settings.metrics, _metrics_registry(runtime), health):
            await _run_front_ends(runtime, runners, stop, grace_s)
    finally:
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _periodically(
    stop: asyncio.Event, interval_s: float, doing: str, job: Callable[[], Awaitable[None]]
) -> None:
    """`job()` now and every `interval_s` until `stop`; a failure is logged and tried again
    next time (a background chore never stops the bot)."""
    while not stop.is_set():
        try:
            await job()
        except Exception:
            log.exception("%s failed; trying again in %.0f s", doing, interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


async def _purge_periodically(runtime: Runtime, stop: asyncio.Event) -> None:
    """The retention purge (`PrivacyDesk.purge`) at start and every `purge_interval_s`."""
    settings = runtime.settings.privacy
    if not settings.retention_days:
        return

    async def purge() -> None:
        counts = await runtime.core.privacy.purge()
        if any(counts.values()):
            log.info("retention purge: %s", ", ".join(f"{n} {what}" for what, n in counts.items() if n))

    await _periodically(stop, settings.purge_interval_s, "the retention purge", purge)


async def _restore_promoted(challengers: Challengers) -> None:
    """Serve the promoted version before the first setup arrives; never stops the start."""
    try:
        await challengers.restore()
    except Exception:
        log.exception("could not restore the promoted version; serving the configured one")


async def _judge_challengers(runtime: Runtime, challengers: Challengers, stop: asyncio.Event) -> None:
    """Serve the challengers `punchline refresh` registered and apply the promotion rule, at
    start and every `LEARNING__REVIEW_INTERVAL_S` (docs/DESIGN.md, decision 12)."""

    async def judge() -> None:
        await challengers.sync()
        for decision in await challengers.review():
            log.info("challenger %s: %s (%s)", decision.challenger, decision.verdict, decision.reason)

    await _periodically(stop, runtime.settings.learning.review_interval_s, "judging challengers", judge)


async def _run_front_ends(
    runtime: Runtime, runners: list[FrontEnd], stop: asyncio.Event, grace_s: float
) -> None:
    """Run every front-end until `stop`; one that fails (a rejected token, say) is logged and
    the others go on serving. Raises the first failure once all have stopped."""
    tasks = {asyncio.create_task(_run(fe, stop), name=fe.name): fe for fe in runners}
    stop_task = asyncio.create_task(stop.wait())
    try:
        log.info("serving %s", ", ".join(fe.name for fe in runners))
        if runtime.battles is not None:
            await _resume_battles_when_ready(runtime, tasks, stop_task)
        await _until_stop_or_all_ended(tasks, stop_task)
        stop.set()
        if runtime.battles is not None:
            await runtime.battles.close()  # timers stop; rounds stay in the database
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        if pending:
            # Closing the generator answers every queued request ("busy, try again"), so the
            # front-ends' handlers finish and they can shut down.
            log.info("closing the generator: %d front-end(s) still have replies in progress", len(pending))
            if isinstance(runtime.generator, ManagedGenerator):
                await runtime.generator.close()
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


async def _until_stop_or_all_ended(
    tasks: dict[asyncio.Task[None], FrontEnd], stop_task: asyncio.Task[Any]
) -> None:
    live = set(tasks)
    while live and not stop_task.done():
        done, _ = await asyncio.wait([*live, stop_task], return_when=asyncio.FIRST_COMPLETED)
        for task in done & live:
            live.discard(task)
            if task.cancelled() or task.exception() is None:
                log.warning("front-end %s stopped", task.get_name())
            else:
                log.error(
                    "front-end %s failed; %s", task.get_name(),
                    f"still serving {', '.join(t.get_name() for t in live)}" if live else "none left",
                    exc_info=task.exception(),
                )  # fmt: skip


async def _run(front_end: FrontEnd, stop: asyncio.Event) -> None:
    await front_end.run(stop)


async def _resume_battles_when_ready(
    runtime: Runtime, tasks: dict[asyncio.Task[None], FrontEnd], stop_task: asyncio.Task[Any]
) -> None:
    """Resume open battle rounds once every running front-end can post (a failed one is not
    waited for), or not at all when serving stops first."""
    assert runtime.battles is not None
    waited = 0.0

    def running() -> list[FrontEnd]:
        return [fe for task, fe in tasks.items() if not task.done()]

    while running() and not all(fe.ready() for fe in running()) and not stop_task.done():
        if waited >= READY_TIMEOUT_S:
            log.warning("front-ends not ready after %.0f s; resuming battles anyway", waited)
            break
        await asyncio.sleep(READY_POLL_S)
        waited += READY_POLL_S
    if running() and not stop_task.done():
        await runtime.battles.resume()


def _raise_first_failure(tasks: list[asyncio.Task[Any]]) -> None:
    failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
    if failed:
        exc = failed[0].exception()
        if isinstance(exc, PunchlineError):
            raise exc
        raise PunchlineError(f"the {failed[0].get_name()} front-end stopped: {exc}") from exc
