"""Every message the Telegram bot sends, edits or deletes goes through here: one implementation
of resending, for the core's answers and the battles alike.

429 flood limits are waited out and retried by PTB's AIORateLimiter underneath. A 5xx answer
or a dropped connection is resent `send_retries` times with a doubling delay. A timeout is not
resent (the message may have arrived), nor is an error that would repeat (a bad request, a user
who blocked the bot). Failures are logged and reported as None / False, never raised: a message
that cannot be delivered must not break what the bot was doing.

Text is always sent without a parse mode, so user text never renders as markup.

Replies from update handlers go through `queue` (a per-chat `ChatOutbox`): the handler returns
at once and the chat's own task waits out that chat's flood limit, so no shared update slot is
held while one busy group is throttled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import Bot, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import MessageLimit
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.telegram.outbox import ChatOutbox
from config.settings import TelegramSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


def fit_message(text: str) -> str:
    """Text Telegram accepts: not empty and at most 4096 characters."""
    text = text.strip() or "…"
    limit = MessageLimit.MAX_TEXT_LENGTH
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TelegramSender:
    """Sends through one `Bot` with the retry rules above."""

    def __init__(self, bot: Bot, settings: TelegramSettings, outbox: ChatOutbox | None = None):
        self.bot = bot
        self.settings = settings
        self.outbox = outbox or ChatOutbox()

    def queue(
        self,
        chat_id: int,
        text: str,
        markup: InlineKeyboardMarkup | None = None,
        reply_to: int | None = None,
        then: Callable[[Message], Awaitable[object]] | None = None,
    ) -> bool:
        """Send `text` from the chat's outbox, then `then(message)` once it is delivered;
        returns at once (False: not queued, logged)."""

        async def job() -> None:
            sent = await self.send(chat_id, text, markup, reply_to)
            if sent is not None and then is not None:
                await then(sent)

        return self.outbox.submit(chat_id, job)

    async def send(
        self,
        chat_id: int,
        text: str,
        markup: InlineKeyboardMarkup | None = None,
        reply_to: int | None = None,
    ) -> Message | None:
        """Send `text` (as a reply to `reply_to` when given); None when it was not delivered."""
        reply = (
            ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
            if reply_to is not None
            else None
        )
        return await self._with_retries(
            f"message to chat {chat_id}",
            lambda: self.bot.send_message(
                chat_id, fit_message(text), reply_parameters=reply, reply_markup=markup
            ),
        )

    async def edit(
        self, chat_id: int, message_id: int, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> bool:
        """Replace a message's text and keyboard (None takes the keyboard off)."""
        done = await self._with_retries(
            f"edit of message {message_id} in chat {chat_id}",
            lambda: self.bot.edit_message_text(
                fit_message(text), chat_id=chat_id, message_id=message_id, reply_markup=markup
            ),
        )
        return done is not None

    async def delete(self, chat_id: int, message_id: int) -> bool:
        """Delete a message; False without the right to (or when it is gone already)."""
        done = await self._with_retries(
            f"deletion of message {message_id} in chat {chat_id}",
            lambda: self.bot.delete_message(chat_id, message_id),
        )
        return bool(done)

    async def _with_retries(self, what: str, call: Callable[[], Awaitable[T]]) -> T | None:
        delay = self.settings.send_retry_delay
        for attempt in range(self.settings.send_retries + 1):
            try:
                return await call()
            except (BadRequest, Forbidden, TimedOut, RetryAfter) as exc:
                log.info("%s not done: %r", what, exc)
                return None
            except NetworkError as exc:
                if attempt == self.settings.send_retries:
                    log.warning("%s not done after %d tries: %r", what, attempt + 1, exc)
                    return None
                log.info("%s failed (%r); retrying in %.1f s", what, exc, delay)
                await asyncio.sleep(delay)
                delay *= 2
            except TelegramError as exc:
                log.warning("%s not done: %r", what, exc)
                return None
        return None
