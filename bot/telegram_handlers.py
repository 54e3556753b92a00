"""What the Telegram bot does with each update: setups, commands, buttons, reactions, membership.

`TelegramHandlers` holds its dependencies (the core and the Telegram settings) and registers its
callbacks on a python-telegram-bot `Application` in handler group 0 (battles sit in group -1).
Group manners (DESIGN decision 5): in private chats every text is a setup; in groups only
``/joke``, replies to the bot and mentions of it are; other chatter is never read further.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from telegram import Chat, ChatMember, InlineKeyboardMarkup, Message, ReplyParameters, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    MessageReactionHandler,
    filters,
)

from bot.core import MSG_ERROR, BotCore, parse_rating_payload
from bot.telegram_convert import (
    actor_chat_ref,
    addressed_text,
    chat_kind,
    chat_ref,
    command_argument,
    command_target,
    fit_message,
    message_ref,
    private_text,
    rating_keyboard,
    reaction_counts,
    reaction_emojis,
    sender,
    user_ref,
)
from bot.types import ChatKind, IncomingSetup, Platform
from config.settings import TelegramSettings

log = logging.getLogger(__name__)

HANDLER_GROUP = 0  # battles install theirs in group -1, ahead of these

MSG_JOKE_USAGE = "Usage: /joke <setup> — for example: /joke Why do Yoda's jokes always suck?"
MSG_UNKNOWN_COMMAND = "I don't know that command. Send me a joke setup, or see /help."
MSG_STALE_BUTTON = "Sorry, that button doesn't work any more."
MSG_REACTION_HINT = (
    "Tip: I can't see emoji reactions in this group yet. To count them as ratings, make me an "
    "admin of the group (no special rights needed). The buttons under my replies work either way."
)
MSG_HELLO = (
    "Hi! I answer joke setups with punchlines. Here: /joke <setup>, mention me, or reply to one "
    "of my messages. /help tells more."
)

# Per-chat flag in the core's chat settings: the reaction hint is said once per chat, ever.
REACTION_HINT_FLAG = "reaction_hint_sent"
# In this process, whether the bot's admin status in a chat is known (PTB's per-chat chat_data,
# so one getChatMember per chat and run; my_chat_member updates keep it current).
_ADMIN_CHECKED = "punchline.admin_checked"
_ADMIN_STATUSES = (ChatMember.ADMINISTRATOR, ChatMember.OWNER)
_MEMBER_STATUSES = (ChatMember.MEMBER, ChatMember.RESTRICTED, *_ADMIN_STATUSES)

# New messages only: edited messages are ignored on purpose (the answer was already given).
_NEW_MESSAGE = filters.UpdateType.MESSAGE


class TelegramHandlers:
    """The bot's update callbacks, bound to one core."""

    def __init__(self, core: BotCore, settings: TelegramSettings):
        self.core = core
        self.settings = settings

    def install(self, application: Application) -> None:  # type: ignore[type-arg]
        """Register every callback (group 0) and the error handler on `application`."""
        add = application.add_handler
        g = HANDLER_GROUP
        add(CommandHandler(("start", "help"), self.on_help, filters=_NEW_MESSAGE), g)
        add(CommandHandler("stats", self.on_stats, filters=_NEW_MESSAGE), g)
        add(CommandHandler("joke", self.on_joke, filters=_NEW_MESSAGE), g)
        # Admin-only, so not in the command menu everyone sees; the core checks who asks.
        add(CommandHandler("reload", self.on_reload, filters=_NEW_MESSAGE), g)
        add(MessageHandler(filters.COMMAND & _NEW_MESSAGE, self.on_unknown_command), g)
        text = filters.TEXT & ~filters.COMMAND & _NEW_MESSAGE
        add(MessageHandler(text & filters.ChatType.PRIVATE, self.on_private_text), g)
        add(MessageHandler(text & filters.ChatType.GROUPS, self.on_group_text), g)
        add(CallbackQueryHandler(self.on_rating_button, pattern=r"^rate:"), g)
        add(CallbackQueryHandler(self.on_other_button), g)
        add(
            MessageReactionHandler(
                self.on_reaction,
                message_reaction_types=MessageReactionHandler.MESSAGE_REACTION_UPDATED,
            ),
            g,
        )
        add(
            MessageReactionHandler(
                self.on_reaction_count,
                message_reaction_types=MessageReactionHandler.MESSAGE_REACTION_COUNT_UPDATED,
            ),
            g,
        )
        add(ChatMemberHandler(self.on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER), g)
        application.add_error_handler(self.on_error)

    # ------------------------------------------------------------------------------ setups
    async def on_private_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        await self._answer_setup(message, context, private_text(message, context.bot.id, context.bot.username))

    async def on_group_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        text = addressed_text(message, context.bot.id, context.bot.username)
        if text is None:
            return  # unaddressed chatter: not ours to read
        await self._answer_setup(message, context, text)

    async def on_joke(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        text = command_argument(message, context.bot.id, context.bot.username)
        if not text:
            if self._allowed_sender(message):
                await self._send(context, message, MSG_JOKE_USAGE)
            return
        await self._answer_setup(message, context, text)

    async def _answer_setup(
        self, message: Message, context: ContextTypes.DEFAULT_TYPE, text: str
    ) -> None:
        user = sender(message)
        chat = chat_ref(message.chat)
        if user is None or chat.kind is ChatKind.CHANNEL or not self.core.is_allowed(chat, user):
            return
        try:
            setup = IncomingSetup(chat, user, text, addressed=True, message_id=str(message.message_id))
            async with self._typing(context, message):
                reply = await self.core.handle_setup(setup)
            if reply is None:
                return
            markup = rating_keyboard(reply.reply_id) if reply.rateable else None
            sent = await self._send(context, message, reply.text, markup)
            if sent is not None and reply.reply_id is not None and reply.rateable:
                await self.core.reply_sent(reply.reply_id, message_ref(sent.chat, sent.message_id))
        except Exception:
            # The core never raises; this is the front-end failing. Say so kindly, log the rest.
            log.exception("answering a setup in chat %s failed", message.chat_id)
            await self._send(context, message, MSG_ERROR)
            return
        if chat.kind is ChatKind.GROUP:
            await self._reaction_hint_if_needed(context, message.chat)

    # ---------------------------------------------------------------------------- commands
    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        user = sender(message)
        if user is not None and self.core.is_allowed(chat_ref(message.chat), user):
            text = self.core.help_text(
                Platform.TELEGRAM, chat_kind(message.chat), admin=self.core.is_admin(user)
            )
            await self._send(context, message, text)

    async def on_stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        if self._allowed_sender(message):
            await self._send(context, message, await self.core.stats_text(chat_ref(message.chat)))

    async def on_reload(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/reload [adapter_dir]``: an admin swaps the adapter; others get a polite no."""
        message = update.effective_message
        assert message is not None
        user = sender(message)
        if user is None or not self.core.is_allowed(chat_ref(message.chat), user):
            return
        adapter_dir = command_argument(message, context.bot.id, context.bot.username)
        # Loading an adapter takes a while (seconds to a minute): show "typing…" meanwhile.
        busy = self._typing(context, message) if self.core.is_admin(user) else contextlib.nullcontext()
        async with busy:
            text = await self.core.reload_adapter(user, adapter_dir or None)
        await self._send(context, message, text)

    async def on_unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Private chats get a help line; groups only for ``/cmd@thisbot`` (others may be meant
        for other bots); commands for other bots are ignored everywhere."""
        message = update.effective_message
        assert message is not None
        target = command_target(message)
        if target is not None and target.lower() != (context.bot.username or "").lower():
            return
        if message.chat.type != Chat.PRIVATE and target is None:
            return
        if self._allowed_sender(message):
            await self._send(context, message, MSG_UNKNOWN_COMMAND)

    def _allowed_sender(self, message: Message) -> bool:
        user = sender(message)
        return user is not None and self.core.is_allowed(chat_ref(message.chat), user)

    # ----------------------------------------------------------------------------- buttons
    async def on_rating_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        parsed = parse_rating_payload(query.data)
        if parsed is None:
            await query.answer(MSG_STALE_BUTTON)
            return
        reply_id, rating = parsed
        text = await self.core.rate(reply_id, user_ref(query.from_user), rating)
        await query.answer(text)

    async def on_other_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button nobody handles (old keyboards, forged data): a polite answer, no spinner."""
        query = update.callback_query
        assert query is not None
        await query.answer(MSG_STALE_BUTTON)

    # --------------------------------------------------------------------------- reactions
    async def on_reaction(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A person's reaction set changed: the new list is the net state (DESIGN decision 3)."""
        change = update.message_reaction
        assert change is not None
        if change.user is not None:
            if change.user.is_bot:
                return
            who = user_ref(change.user)
        elif change.actor_chat is not None:
            who = actor_chat_ref(change.actor_chat)
        else:
            return
        old, new = reaction_emojis(change.old_reaction), reaction_emojis(change.new_reaction)
        if not old and not new:
            return  # only custom emoji or paid stars changed: no rating either way
        await self.core.set_reactions(message_ref(change.chat, change.message_id), who, new)

    async def on_reaction_count(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Anonymous reactions (channels): the totals replace the earlier ones."""
        change = update.message_reaction_count
        assert change is not None
        await self.core.set_reaction_counts(
            message_ref(change.chat, change.message_id), reaction_counts(change.reactions)
        )

    # ------------------------------------------------------------------ membership, hints
    async def on_my_chat_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Added to a group: say hello (and how to enable reactions). Demoted: the hint, once."""
        change = update.my_chat_member
        assert change is not None
        if change.chat.type not in (Chat.GROUP, Chat.SUPERGROUP):
            return
        old, new = change.old_chat_member.status, change.new_chat_member.status
        if context.chat_data is not None:
            context.chat_data[_ADMIN_CHECKED] = True  # the update told us the status
        if new not in _MEMBER_STATUSES:
            return  # left or kicked: nothing can be said
        if not self.core.is_allowed(chat_ref(change.chat), user_ref(change.from_user)):
            return  # added to a chat it does not serve: stay quiet
        added = old not in _MEMBER_STATUSES
        hint = new not in _ADMIN_STATUSES and await self.core.first_time(
            chat_ref(change.chat), REACTION_HINT_FLAG
        )
        lines = ([MSG_HELLO] if added else []) + ([MSG_REACTION_HINT] if hint else [])
        if lines:
            await self._send_to(context, change.chat.id, "\n\n".join(lines))

    async def _reaction_hint_if_needed(self, context: ContextTypes.DEFAULT_TYPE, chat: Chat) -> None:
        """After answering in a group: if the bot is no admin there, say once how to fix it."""
        if context.chat_data is None or context.chat_data.get(_ADMIN_CHECKED):
            return
        context.chat_data[_ADMIN_CHECKED] = True
        try:
            member = await context.bot.get_chat_member(chat.id, context.bot.id)
        except TelegramError as exc:
            context.chat_data.pop(_ADMIN_CHECKED, None)  # ask again next time
            log.info("could not read my status in chat %s: %s", chat.id, exc)
            return
        if member.status in _ADMIN_STATUSES:
            return
        if await self.core.first_time(chat_ref(chat), REACTION_HINT_FLAG):
            await self._send_to(context, chat.id, MSG_REACTION_HINT)

    # ------------------------------------------------------------------------------ errors
    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the fault; tell the person kindly where one is waiting. Never a traceback."""
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("handling Telegram update %s failed", update_id, exc_info=context.error)
        if not isinstance(update, Update):
            return
        with contextlib.suppress(TelegramError):
            if update.callback_query is not None:
                await update.callback_query.answer(MSG_ERROR)
            elif update.message is not None and self._expects_answer(update.message, context):
                await self._send(context, update.message, MSG_ERROR)

    def _expects_answer(self, message: Message, context: ContextTypes.DEFAULT_TYPE) -> bool:
        if sender(message) is None:
            return False
        if message.chat.type == Chat.PRIVATE:
            return True
        target = command_target(message)
        is_command = bool(message.text and message.text.startswith("/"))
        return (is_command and target in (None, context.bot.username)) or (
            addressed_text(message, context.bot.id, context.bot.username) is not None
        )

    # ----------------------------------------------------------------------------- sending
    async def _send(
        self,
        context: ContextTypes.DEFAULT_TYPE,
        message: Message,
        text: str,
        markup: InlineKeyboardMarkup | None = None,
    ) -> Message | None:
        """Reply to `message`; None when it could not be delivered (logged)."""
        return await self._send_to(context, message.chat_id, text, markup, reply_to=message.message_id)

    async def _send_to(
        self,
        context: ContextTypes.DEFAULT_TYPE,
        chat_id: int,
        text: str,
        markup: InlineKeyboardMarkup | None = None,
        reply_to: int | None = None,
    ) -> Message | None:
        """Send, resending after a 5xx or a dropped connection.

        429s are retried by the AIORateLimiter underneath. A timeout is not resent (the message
        may have arrived), nor are errors that would repeat (bad request, blocked by the user).
        """
        reply = (
            ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
            if reply_to is not None
            else None
        )
        delay = self.settings.send_retry_delay
        for attempt in range(self.settings.send_retries + 1):
            try:
                return await context.bot.send_message(
                    chat_id, fit_message(text), reply_parameters=reply, reply_markup=markup
                )
            except (BadRequest, Forbidden, TimedOut, RetryAfter) as exc:
                log.warning("message to chat %s not sent: %r", chat_id, exc)
                return None
            except NetworkError as exc:
                if attempt == self.settings.send_retries:
                    log.warning("message to chat %s not sent after %d tries: %r", chat_id, attempt + 1, exc)
                    return None
                log.info("sending to chat %s failed (%r); retrying in %.1f s", chat_id, exc, delay)
                await asyncio.sleep(delay)
                delay *= 2
            except TelegramError as exc:
                log.warning("message to chat %s not sent: %r", chat_id, exc)
                return None
        return None

    @contextlib.asynccontextmanager
    async def _typing(
        self, context: ContextTypes.DEFAULT_TYPE, message: Message
    ) -> AsyncIterator[None]:
        """Show "typing…" while the model works, renewed every `typing_interval` seconds."""
        thread_id = message.message_thread_id if message.is_topic_message else None

        async def keep_typing() -> None:
            while True:
                try:
                    await context.bot.send_chat_action(
                        message.chat_id, ChatAction.TYPING, message_thread_id=thread_id
                    )
                except TelegramError as exc:  # cosmetic: never worth failing the reply
                    log.debug("typing action in chat %s failed: %r", message.chat_id, exc)
                await asyncio.sleep(self.settings.typing_interval)

        task = asyncio.create_task(keep_typing())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
