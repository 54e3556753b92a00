"""`TypingIndicator`: "typing…" in a chat while the model works, within a budget.

Telegram shows the action for about 5 s, so it is renewed every `typing_interval` while an
answer is being made. It is cosmetic, and python-telegram-bot's AIORateLimiter counts it like a
message (against the bot's ~30 a second, and a group's 20 a minute), so it gives way to
replies: one action per chat per interval however many answers that chat awaits, at most
`typing_per_second` in all, and none while replies wait in the outbox to go out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiolimiter import AsyncLimiter
from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.telegram.outbox import ChatOutbox
from config.settings import TelegramSettings

log = logging.getLogger(__name__)

PRUNE_AT = 10_000  # chats remembered; older entries go past this


class TypingIndicator:
    def __init__(self, bot: Bot, settings: TelegramSettings, outbox: ChatOutbox):
        self.bot = bot
        self.interval = settings.typing_interval
        self.outbox = outbox
        self._budget = AsyncLimiter(settings.typing_per_second, 1.0)
        self._shown: dict[int, float] = {}  # chat id -> monotonic time of its last action

    @contextlib.asynccontextmanager
    async def showing(self, chat_id: int, thread_id: int | None = None) -> AsyncIterator[None]:
        """Keep "typing…" up in the chat for as long as the block runs."""
        task = asyncio.create_task(self._keep(chat_id, thread_id))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep(self, chat_id: int, thread_id: int | None) -> None:
        while True:
            if self._due(chat_id):
                await self._budget.acquire()
                try:
                    await self.bot.send_chat_action(chat_id, ChatAction.TYPING, message_thread_id=thread_id)
                except TelegramError as exc:  # cosmetic: never worth failing the reply
                    log.debug("typing action in chat %s failed: %r", chat_id, exc)
            await asyncio.sleep(self.interval)

    def _due(self, chat_id: int) -> bool:
        now = time.monotonic()
        if now - self._shown.get(chat_id, -self.interval) < self.interval * 0.9:
            return False  # another answer for this chat renewed it just now
        if self.outbox.pending() or not self._budget.has_capacity():
            return False
        if len(self._shown) > PRUNE_AT:
            self._shown = {c: t for c, t in self._shown.items() if now - t < self.interval}
        self._shown[chat_id] = now
        return True
