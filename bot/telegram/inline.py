"""Telegram inline mode: `@bot <setup>` in any chat offers punchlines to pick from.

Telegram sends an inline query on nearly every keystroke. Each person's latest query wins: a
query waits `PUNCHLINE_INLINE__DEBOUNCE_S` for the typing to pause, and one superseded while
it waits or while the model works is never answered (Telegram drops unanswered queries
quietly). The answer is per person and cached briefly. Each result carries the rating buttons,
so Telegram reports which one was sent (`chosen_inline_result`, with BotFather's inline
feedback on) with the inline message's id; the core then stores it as a reply, and presses on
its buttons rate it like any other.

Results are remembered per person until their next answer (bounded), so a chosen id maps back
to its punchline; one chosen after a restart is logged and left unrated.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.core.inline import InlineAnswer
from bot.core.service import BotCore
from bot.telegram.convert import user_ref
from bot.telegram.keyboards import rating_keyboard
from bot.types import ChatKind, ChatRef, MessageRef, Platform
from config.settings import InlineSettings
from model.types import Punchline

log = logging.getLogger(__name__)

# Inline messages belong to no chat the bot is in: their replies and ratings live under this one.
INLINE_CHAT = ChatRef(Platform.TELEGRAM, "inline", ChatKind.GROUP, "inline messages")
MAX_PEOPLE = 10_000  # people whose last results are remembered; the oldest are forgotten
MSG_TRY_SETUP = "Tap to ask it here; type @{bot} {setup} to pick a punchline"


def inline_ref(inline_message_id: str) -> MessageRef:
    """The message a chosen inline result became (where its rating buttons are pressed)."""
    return MessageRef(INLINE_CHAT, inline_message_id)


class TelegramInline:
    """The inline query and chosen-result handlers."""

    def __init__(self, core: BotCore, settings: InlineSettings):
        self.core = core
        self.settings = settings
        self._latest: dict[int, str] = {}  # person -> id of their latest query
        self._tasks: dict[int, asyncio.Task[object]] = {}  # person -> the task answering it
        self._results: OrderedDict[int, dict[str, tuple[str, Punchline]]] = OrderedDict()

    async def on_inline_query(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """One keystroke's query: answered only if it is still the person's latest after the
        debounce and after the model; an older one still waiting or working is cancelled, so it
        neither holds a place in the inline share of the worker nor spends the person's
        allowance. Registered non-blocking: it holds no update slot while it waits."""
        query = update.inline_query
        assert query is not None
        person = query.from_user.id
        self._latest[person] = query.id
        previous = self._tasks.pop(person, None)
        if previous is not None and not previous.done():
            previous.cancel()
        task = asyncio.current_task()
        if task is not None:
            self._tasks[person] = task
        try:
            await asyncio.sleep(self.settings.debounce_s)
            if self._latest.get(person) != query.id:
                return  # typed on: a newer query answers
            answer = await self.core.inline.answer(user_ref(query.from_user), query.query)
            if self._latest.get(person) != query.id:
                return  # superseded while the model worked: let it lapse
            results = self._results_for(person, answer, context.bot.username)
            await query.answer(results, cache_time=self.settings.cache_time_s, is_personal=True)
        except TelegramError as exc:
            # Usually "query is too old": the person moved on. Nothing to tell anyone.
            log.info("inline answer for %s not delivered: %r", person, exc)
        finally:
            if self._latest.get(person) == query.id:
                del self._latest[person]
            if self._tasks.get(person) is task:
                del self._tasks[person]

    def _results_for(self, person: int, answer: InlineAnswer, bot: str) -> list[InlineQueryResultArticle]:
        if answer.suggestions:
            return [_suggestion(setup, bot) for setup in answer.suggestions]
        if not answer.punchlines:
            # One article saying why; sending it posts that line, never the refused setup.
            note = answer.note or "…"
            return [_article("none", note, note, None)]
        remembered: dict[str, tuple[str, Punchline]] = {}
        articles = []
        for punchline in answer.punchlines:
            result_id = secrets.token_hex(8)
            remembered[result_id] = (answer.setup, punchline)
            text = f"{answer.setup}\n\n{punchline.text}"
            articles.append(_article(result_id, punchline.text, text, rating_keyboard(again=False)))
        self._results.pop(person, None)
        self._results[person] = remembered
        while len(self._results) > MAX_PEOPLE:
            self._results.popitem(last=False)
        return articles

    async def on_chosen(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A picked result (BotFather's inline feedback on): stored as a reply, rateable."""
        chosen = update.chosen_inline_result
        assert chosen is not None
        found = self._results.get(chosen.from_user.id, {}).get(chosen.result_id)
        if found is None or chosen.inline_message_id is None:
            log.info(
                "a chosen inline result %s is not ours to store (restart or no feedback id)", chosen.result_id
            )
            return
        setup, punchline = found
        await self.core.inline.chosen(
            inline_ref(chosen.inline_message_id), user_ref(chosen.from_user), setup, punchline
        )


def _article(
    result_id: str, title: str, text: str, markup: InlineKeyboardMarkup | None, description: str | None = None
) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(
        id=result_id,
        title=title[:256],
        input_message_content=InputTextMessageContent(text[:4096]),
        reply_markup=markup,
        description=description,
    )


def _suggestion(setup: str, bot: str) -> InlineQueryResultArticle:
    """A setup to try: sending it asks it in the chat; its button types `@bot <setup>`."""
    button = InlineKeyboardButton("Get punchlines", switch_inline_query_current_chat=setup)
    return _article(
        "s" + secrets.token_hex(7),
        setup,
        setup,
        InlineKeyboardMarkup([[button]]),
        description=MSG_TRY_SETUP.format(bot=bot, setup="…"),
    )
