"""The Discord handlers answering a setup right now, so a shutdown can let them finish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


class InFlight:
    """Tracks the tasks answering setups; `drain` stops new ones and waits for the rest."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stopping = False

    @contextlib.contextmanager
    def tracked(self) -> Iterator[None]:
        """Count the current task as answering a setup for the duration of the block."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def drain(self, timeout: float) -> bool:
        """Stop taking setups and give the ones in progress up to `timeout` s to be answered.

        New setups meanwhile are told to try again in a minute. True when none is left.
        """
        self.stopping = True
        current = asyncio.current_task()
        pending = {task for task in self._tasks if not task.done() and task is not current}
        if not pending:
            return True
        log.info(
            "Discord: waiting for %d repl%s in progress", len(pending), "y" if len(pending) == 1 else "ies"
        )
        _, still = await asyncio.wait(pending, timeout=timeout)
        return not still
