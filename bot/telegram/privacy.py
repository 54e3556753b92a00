"""People's controls on Telegram: /privacy, /forget (with its confirmation button), /optout,
/optin, and /family for chat admins. The core decides (`bot.core.privacy`, `bot.core.family`);
this module only speaks Telegram.

/forget's confirmation erases whoever presses it, and its answer is a callback alert only that
person sees, so it works in groups as well as in private.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import ContextTypes

from bot.core import texts
from bot.core.service import BotCore
from bot.payloads import ForgetPayload, encode
from bot.telegram.convert import chat_ref, command_argument, sender
from bot.telegram.members import is_chat_admin
from bot.telegram.sender import TelegramSender
from bot.types import ChatKind, UserRef


def forget_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(texts.FORGET_BUTTON, callback_data=encode(ForgetPayload()))]]
    )


class TelegramPrivacyUI:
    def __init__(self, core: BotCore, sender: TelegramSender):
        self.core = core
        self.sender = sender

    async def on_privacy(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = self._asker(update)
        if message is not None:
            self._reply(message, await self.core.privacy.privacy_text(user))

    async def on_forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = self._asker(update)
        if message is None or user is None:
            return
        if user.anonymous:
            self._reply(message, texts.MSG_OPT_NOBODY)
            return
        self.sender.queue(
            message.chat_id, texts.MSG_FORGET_CONFIRM, forget_keyboard(), reply_to=message.message_id
        )

    async def on_optout(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._training(update, opted_in=False)

    async def on_optin(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._training(update, opted_in=True)

    async def on_family(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """`/family [on|off]`; chat admins are asked of Telegram (getChatMember)."""
        message, user = self._asker(update)
        if message is None or user is None:
            return
        argument = command_argument(message, context.bot.id, context.bot.username)
        chat = chat_ref(message.chat)
        admin = (
            bool(argument.strip())
            and chat.kind is ChatKind.GROUP
            and await is_chat_admin(context.bot, message)
        )
        self._reply(message, await self.core.family.command(chat, user, argument, chat_admin=admin))

    async def _training(self, update: Update, *, opted_in: bool) -> None:
        message, user = self._asker(update)
        if message is not None and user is not None:
            self._reply(message, await self.core.privacy.set_training(user, opted_in))

    def _asker(self, update: Update) -> tuple[Message | None, UserRef | None]:
        """The command's message and sender, or (None, None) when the bot does not serve them."""
        message = update.effective_message
        if message is None:
            return None, None
        user = sender(message)
        if user is None or not self.core.access.is_allowed(chat_ref(message.chat), user):
            return None, None
        return message, user

    def _reply(self, message: Message, text: str) -> None:
        self.sender.queue(message.chat_id, text, reply_to=message.message_id)
