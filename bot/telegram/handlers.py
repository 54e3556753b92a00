"""What the Telegram bot does with each update: setups, commands, buttons, reactions, membership.

`TelegramHandlers` holds its dependencies (the core, the Telegram settings, the sender, and the
battle UI for battle buttons); `bot.telegram.app.register_handlers` is where its callbacks are
registered. Group manners (docs/DESIGN.md, decision 5): in private chats every text is a setup;
in groups only ``/joke``, replies to the bot and mentions of it are; other chatter is never
read further.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from telegram import CallbackQuery, Chat, ChatMember, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.core.service import BotCore
from bot.core.texts import MSG_ERROR
from bot.payloads import AgainPayload, EnterPayload, ForgetPayload, RatePayload, VotePayload, decode
from bot.telegram.convert import (
    actor_chat_ref,
    addressed_text,
    chat_ref,
    command_argument,
    command_target,
    message_ref,
    private_text,
    reaction_counts,
    reaction_emojis,
    sender,
    user_ref,
)
from bot.telegram.inline import inline_ref
from bot.telegram.keyboards import rating_keyboard
from bot.telegram.sender import TelegramSender
from bot.telegram.typing import TypingIndicator
from bot.types import ChatKind, IncomingSetup, OutgoingReply
from config.settings import TelegramSettings

if TYPE_CHECKING:
    from bot.telegram.battles import TelegramBattleUI

log = logging.getLogger(__name__)

MSG_ANOTHER_COMING = "🔁 Another one, coming up."
MSG_ANOTHER_LATER = "Not so fast — try again in a moment."
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


class TelegramHandlers:
    """The bot's update callbacks, bound to one core."""

    def __init__(
        self,
        core: BotCore,
        settings: TelegramSettings,
        sender: TelegramSender,
        battle_ui: TelegramBattleUI | None = None,
    ):
        self.core = core
        self.settings = settings
        self.sender = sender
        self.battle_ui = battle_ui  # battle buttons are routed there
        self.typing = TypingIndicator(sender.bot, settings, sender.outbox)

    # ------------------------------------------------------------------------------ setups
    async def on_private_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        await self._answer_setup(
            message, context, private_text(message, context.bot.id, context.bot.username)
        )

    async def on_group_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        text = addressed_text(message, context.bot.id, context.bot.username)
        if text is None:
            return  # unaddressed chatter: not ours to read
        await self._answer_setup(message, context, text)

    async def on_joke(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """`/joke <setup>`; `/joke` alone answers a setup the bot picks (shown with it)."""
        message = update.effective_message
        assert message is not None
        text = command_argument(message, context.bot.id, context.bot.username)
        if text:
            await self._answer_setup(message, context, text)
            return
        user, chat = sender(message), chat_ref(message.chat)
        if user is None or chat.kind is ChatKind.CHANNEL or not self.core.access.is_allowed(chat, user):
            return
        await self._answer(message, context, self.core.joke_on_request(chat, user, str(message.message_id)))

    async def _answer_setup(self, message: Message, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
        user = sender(message)
        chat = chat_ref(message.chat)
        if user is None or chat.kind is ChatKind.CHANNEL or not self.core.access.is_allowed(chat, user):
            return
        setup = IncomingSetup(chat, user, text, addressed=True, message_id=str(message.message_id))
        await self._answer(message, context, self.core.handle_setup(setup))

    async def _answer(
        self,
        message: Message,
        context: ContextTypes.DEFAULT_TYPE,
        answering: Awaitable[OutgoingReply | None],
    ) -> None:
        """Show "typing…" while the core answers, then reply to `message` with the rating
        buttons under a punchline, linked to the reply once sent."""
        try:
            async with self._typing(message):
                reply = await answering
        except Exception:
            # The core never raises; this is the front-end failing. Say so kindly, log the rest.
            log.exception("answering a setup in chat %s failed", message.chat_id)
            self._reply(message, MSG_ERROR)
            return
        if reply is not None:
            self._send_reply(message, context, reply)

    def _send_reply(self, message: Message, context: ContextTypes.DEFAULT_TYPE, reply: OutgoingReply) -> None:
        chat = chat_ref(message.chat)
        reply_id = reply.reply_id if reply.rateable else None

        async def link(sent: Message) -> None:
            if reply_id is not None:
                await self.core.reply_sent(reply_id, message_ref(sent.chat, sent.message_id))
            if chat.kind is ChatKind.GROUP:
                await self._reaction_hint_if_needed(context, message.chat)

        self._reply(message, reply.text, rating_keyboard() if reply.rateable else None, then=link)

    async def _another(
        self, query: CallbackQuery, message: Message, context: ContextTypes.DEFAULT_TYPE
    ) -> str:
        """🔁: a new punchline to the same setup, as a reply to the punchline pressed; the
        toast says what happened."""
        if not self.core.access.is_allowed(chat_ref(message.chat), user_ref(query.from_user)):
            return MSG_STALE_BUTTON
        reply = await self.core.another(
            message_ref(message.chat, message.message_id), user_ref(query.from_user)
        )
        if reply is None:
            return MSG_ANOTHER_LATER
        if not reply.rateable:
            return reply.text  # out of new ones, busy, slow down: said in the toast only
        self._send_reply(message, context, reply)
        return MSG_ANOTHER_COMING

    # ---------------------------------------------------------------------------- commands
    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        user = sender(message)
        chat = chat_ref(message.chat)
        if user is not None and self.core.access.is_allowed(chat, user):
            self._reply(message, await self.core.help_for(chat, user))

    async def on_stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        if self._allowed_sender(message):
            self._reply(message, await self.core.stats_text(chat_ref(message.chat)))

    async def on_reload(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/reload [adapter_dir]``: an admin swaps the adapter; others get a polite no."""
        message = update.effective_message
        assert message is not None
        user = sender(message)
        if user is None or not self.core.access.is_allowed(chat_ref(message.chat), user):
            return
        adapter_dir = command_argument(message, context.bot.id, context.bot.username)
        # Loading an adapter takes a while (seconds to a minute): show "typing…" meanwhile.
        busy = self._typing(message) if self.core.access.is_admin(user) else contextlib.nullcontext()
        async with busy:
            text = await self.core.admin.reload_adapter(user, adapter_dir or None)
        self._reply(message, text)

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
            self._reply(message, MSG_UNKNOWN_COMMAND)

    def _allowed_sender(self, message: Message) -> bool:
        user = sender(message)
        return user is not None and self.core.access.is_allowed(chat_ref(message.chat), user)

    # ----------------------------------------------------------------------------- buttons
    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Every inline button: rating buttons rate the punchline they sit on; battle buttons
        go to the battle UI; anything else (old keyboards, forged data) gets a polite answer,
        never a spinner that does not stop."""
        query = update.callback_query
        assert query is not None
        payload = decode(query.data)
        message = query.message
        alert = False
        if isinstance(payload, RatePayload) and (message is not None or query.inline_message_id):
            # A chosen inline result has no chat message: Telegram names the inline message.
            ref = (
                message_ref(message.chat, message.message_id)
                if message
                else inline_ref(query.inline_message_id or "")
            )
            text = await self.core.ratings.rate(ref, user_ref(query.from_user), payload.rating)
        elif isinstance(payload, AgainPayload) and isinstance(message, Message):
            text = await self._another(query, message, context)
        elif isinstance(payload, ForgetPayload):
            # Erases whoever pressed it; the alert is seen by that person only.
            text, alert = await self.core.privacy.forget(user_ref(query.from_user)), True
        elif isinstance(payload, (VotePayload, EnterPayload)) and self.battle_ui is not None:
            text = await self.battle_ui.on_button(query, payload)
        else:
            text = MSG_STALE_BUTTON
        try:
            await query.answer(text[:200], show_alert=alert)  # Telegram shows at most 200 characters
        except TelegramError as exc:
            log.info("button press not answered: %r", exc)

    # --------------------------------------------------------------------------- reactions
    async def on_reaction(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A person's reaction set changed: the new list is the net state (docs/DESIGN.md, decision 3)."""
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
        await self.core.ratings.set_reactions(message_ref(change.chat, change.message_id), who, new)

    async def on_reaction_count(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Anonymous reactions (channels): the totals replace the earlier ones."""
        change = update.message_reaction_count
        assert change is not None
        await self.core.ratings.set_reaction_counts(
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
        if not self.core.access.is_allowed(chat_ref(change.chat), user_ref(change.from_user)):
            return  # added to a chat it does not serve: stay quiet
        added = old not in _MEMBER_STATUSES
        hint = new not in _ADMIN_STATUSES and await self.core.first_time(
            chat_ref(change.chat), REACTION_HINT_FLAG
        )
        lines = ([MSG_HELLO] if added else []) + ([MSG_REACTION_HINT] if hint else [])
        if lines:
            self.sender.queue(change.chat.id, "\n\n".join(lines))

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
            await self.sender.send(chat.id, MSG_REACTION_HINT)  # already in the chat's outbox

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
                self._reply(update.message, MSG_ERROR)

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
    def _reply(
        self,
        message: Message,
        text: str,
        markup: InlineKeyboardMarkup | None = None,
        then: Callable[[Message], Awaitable[object]] | None = None,
    ) -> None:
        """Reply to `message` from its chat's outbox (`TelegramSender.queue`), then `then`."""
        self.sender.queue(message.chat_id, text, markup, reply_to=message.message_id, then=then)

    def _typing(self, message: Message) -> contextlib.AbstractAsyncContextManager[None]:
        """Show "typing…" in the message's chat (its topic) while the model works."""
        thread_id = message.message_thread_id if message.is_topic_message else None
        return self.typing.showing(message.chat_id, thread_id)
