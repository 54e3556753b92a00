"""`ChatOutbox`: the Telegram bot's replies, queued per chat and sent in order by one task each.

Telegram limits how fast a bot may post in one chat (about 20 messages a minute in a group), and
PTB's AIORateLimiter waits those limits out inside the send call. A handler that sent its own
reply would hold one of the application's shared update slots for as long as its chat is
throttled, so a flood in one group would stall private chats, buttons and votes everywhere. A
handler therefore hands its reply here and returns; the chat's own task waits out the chat's
limit. Replies to one chat keep their order; chats never wait for each other.

`close()` sends what is queued, bounded in time: what is still waiting then is logged, by
chat, and dropped (the process is stopping).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]

MAX_QUEUED = 200  # replies waiting in one chat; the chat limits keep far below this


class ChatOutbox:
    """Per-chat queues of send jobs, each drained by its own task."""

    def __init__(self, max_queued: int = MAX_QUEUED):
        self.max_queued = max_queued
        self._queues: dict[int, deque[Job]] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._closed = False

    def submit(self, chat_id: int, job: Job) -> bool:
        """Queue `job` (a send and whatever follows it) for `chat_id`; False if not queued
        (closing, or the chat's queue is full: logged)."""
        if self._closed:
            log.warning("reply to chat %s not queued: the bot is stopping", chat_id)
            return False
        queue = self._queues.setdefault(chat_id, deque())
        if len(queue) >= self.max_queued:
            log.warning("reply to chat %s not queued: %d already wait there", chat_id, len(queue))
            return False
        queue.append(job)
        if chat_id not in self._tasks:
            self._tasks[chat_id] = asyncio.create_task(self._drain(chat_id), name=f"outbox-{chat_id}")
        return True

    def pending(self) -> int:
        """Jobs queued or being sent, over all chats."""
        return sum(len(q) for q in self._queues.values()) + len(self._tasks)

    async def _drain(self, chat_id: int) -> None:
        queue = self._queues[chat_id]
        try:
            while queue:
                job = queue.popleft()
                try:
                    await job()
                except Exception:  # one failed reply must not stop the chat's others
                    log.exception("a reply to chat %s failed", chat_id)
        finally:
            self._tasks.pop(chat_id, None)
            if not queue:
                self._queues.pop(chat_id, None)

    async def close(self, timeout_s: float) -> None:
        """Send what is queued for up to `timeout_s`, then cancel the rest (logged)."""
        self._closed = True
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            chat_id = int(task.get_name().removeprefix("outbox-"))
            log.warning(
                "stopping: %d reply(ies) to chat %s not sent in time",
                len(self._queues.get(chat_id, ())) + 1,
                chat_id,
            )
            task.cancel()
        if pending:
            await asyncio.wait(pending)
