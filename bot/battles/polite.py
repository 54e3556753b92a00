"""One way to turn an unexpected error in a battle command into a polite answer.

Commands refuse bad input with `Answer(ok=False)` themselves; this decorator is for what they
did not foresee (a database error, a bug): it logs the traceback and returns the command's
fallback, so a person always gets an answer and never a traceback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar, cast

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger("bot.battles")


def polite(fallback: object, doing: str) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Decorate an async command: on an unexpected error, log "could not <doing>" and return
    `fallback` (an `Answer`, a text, or None where the caller then stays quiet); it must be a
    value the command itself could return."""

    def decorate(command: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(command)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await command(*args, **kwargs)
            except Exception:
                log.exception("could not %s", doing)
                return cast(T, fallback)

        return wrapper

    return decorate
