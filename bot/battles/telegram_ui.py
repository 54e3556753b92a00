"""Joke battles on Telegram: commands, reply entries, secret entries by deep link, vote buttons.

`install_battles(application, service)` registers the handlers in group -1, ahead of the core's
(group 0); a handler that consumes an update raises `ApplicationHandlerStop` so the core never
sees it, and one that does not (a reply to some other message, a private message with no entry
pending) lets it through.

- `/battle [setup]`, `/cancel`, `/leaderboard` in groups;
- a reply to a round's announcement is an entry; the bot deletes it when it has the right, so
  nobody sees the text before voting;
- the announcement's button is a deep link `https://t.me/<bot>?start=battle_<id>`: `/start
  battle_<id>` in the private chat opens a secret entry, and the next private text is the entry;
- vote buttons carry `battle:<id>:vote:<position>`.
"""

from __future__ import annotations

import logging

from telegram import (
    Bot,
    Chat,
    ChatMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.battles.models import (
    Answer,
    ButtonKind,
    EnterPayload,
    RefusalReason,
    View,
    VotePayload,
    deep_link_argument,
    parse_deep_link,
    parse_payload,
)
from bot.battles.service import REPLACED, BattleService
from bot.telegram_convert import chat_ref, command_argument, fit_message, sender, user_ref
from bot.types import ChatKind, ChatRef, Platform

log = logging.getLogger(__name__)

HANDLER_GROUP = -1  # ahead of the core's handlers (group 0)
VOTES_PER_ROW = 4
MSG_BAD_BUTTON = "That button isn't valid."
MSG_GROUPS_ONLY = "Leaderboards are kept per group: send /leaderboard in a group I'm in."

_NEW = filters.UpdateType.MESSAGE
_TEXT = filters.TEXT & ~filters.COMMAND & _NEW


class TelegramAnnouncer:
    """Posts battle messages with the Bot API; errors (no rights, deleted messages, flood
    limits past the rate limiter's retries) are logged and reported as None / False."""

    def __init__(self, bot: Bot):
        self.bot = bot

    async def _username(self) -> str:
        # Rounds resumed at start-up may close before the application is initialised;
        # initialising the bot here is safe (Application.initialize skips a ready bot).
        try:
            return self.bot.username
        except RuntimeError:
            await self.bot.initialize()
            return self.bot.username

    async def keyboard(self, view: View) -> InlineKeyboardMarkup | None:
        """The view's buttons, None for none: editMessageText without a reply_markup removes
        the old keyboard (an empty markup would be sent as `{}`, which is no keyboard)."""
        if not view.buttons:
            return None
        rows: list[list[InlineKeyboardButton]] = []
        votes: list[InlineKeyboardButton] = []
        for button in view.buttons:
            if button.kind is ButtonKind.ENTER:
                link = f"https://t.me/{await self._username()}?start={deep_link_argument(button.battle_id)}"
                rows.append([InlineKeyboardButton(button.label, url=link)])
            else:
                votes.append(InlineKeyboardButton(button.label, callback_data=button.payload))
        rows += [votes[i : i + VOTES_PER_ROW] for i in range(0, len(votes), VOTES_PER_ROW)]
        return InlineKeyboardMarkup(rows)

    async def post(self, chat: ChatRef, view: View) -> str | None:
        try:
            markup = await self.keyboard(view)
            sent = await self.bot.send_message(int(chat.chat_id), fit_message(view.text), reply_markup=markup)
        except TelegramError as exc:
            log.warning("battle message not sent to %s: %r", chat.chat_id, exc)
            return None
        return str(sent.message_id)

    async def edit(self, chat: ChatRef, message_id: str, view: View) -> bool:
        try:
            markup = await self.keyboard(view)
            await self.bot.edit_message_text(
                fit_message(view.text), chat_id=int(chat.chat_id), message_id=int(message_id),
                reply_markup=markup,
            )
        except TelegramError as exc:
            log.info("battle message %s in %s not edited: %r", message_id, chat.chat_id, exc)
            return False
        return True

    async def delete(self, chat: ChatRef, message_id: str) -> bool:
        try:
            return bool(await self.bot.delete_message(int(chat.chat_id), int(message_id)))
        except TelegramError as exc:
            log.info("message %s in %s not deleted: %r", message_id, chat.chat_id, exc)
            return False


class TelegramBattleUI:
    """The handlers, bound to one service."""

    def __init__(self, service: BattleService):
        self.service = service

    # -- commands -------------------------------------------------------------------------------

    async def on_battle(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        user = sender(message)
        if user is not None:
            setup = command_argument(message, context.bot.id, context.bot.username)
            answer = await self.service.start(chat_ref(message.chat), user, setup or None)
            if not answer.ok:
                await _reply(context.bot, message, answer)
        raise ApplicationHandlerStop

    async def on_cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        user = sender(message)
        if user is None:
            raise ApplicationHandlerStop
        chat = chat_ref(message.chat)
        if chat.kind is ChatKind.PRIVATE:
            answer = await self.service.cancel_secret_entry(Platform.TELEGRAM, user)
            if answer is None:
                return  # nothing of ours to cancel: the core answers the command
        else:
            admin = await _is_chat_admin(context.bot, message)
            answer = await self.service.cancel(chat, user, chat_admin=admin)
        await _reply(context.bot, message, answer)
        raise ApplicationHandlerStop

    async def on_leaderboard(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        chat = chat_ref(message.chat)
        if sender(message) is not None:
            if chat.kind is ChatKind.GROUP:
                text = await self.service.leaderboard_text(chat)
            else:
                text = MSG_GROUPS_ONLY
            await _reply(context.bot, message, Answer(text))
        raise ApplicationHandlerStop

    async def on_start_battle(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """`/start battle_<id>` from the deep link: open a secret entry."""
        message = update.effective_message
        assert message is not None
        user = sender(message)
        battle_id = parse_deep_link(context.args[0] if context.args else None)
        if user is None or battle_id is None:
            return  # an ordinary /start: the core's help answers it
        answer = await self.service.begin_secret_entry(Platform.TELEGRAM, battle_id, user)
        await _reply(context.bot, message, answer)
        raise ApplicationHandlerStop

    # -- entries --------------------------------------------------------------------------------

    async def on_group_reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A reply to a round's announcement is an entry; any other reply is not ours."""
        message = update.effective_message
        assert message is not None
        replied = message.reply_to_message
        user = sender(message)
        if replied is None or user is None or replied.from_user is None:
            return
        if replied.from_user.id != context.bot.id:
            return
        answer = await self.service.submit_reply(
            chat_ref(message.chat), str(replied.message_id), user, message.text
        )
        if answer is None:
            return
        if answer.ok:
            # Hide the text until voting; without the right to delete it stays visible.
            await _delete(context.bot, message)
            if answer.text.startswith(REPLACED):
                await _send(context.bot, message.chat_id, f"{user.name}: {answer.text}")
        elif answer.reason is not RefusalReason.NOT_PERMITTED:
            await _reply(context.bot, message, answer)
        raise ApplicationHandlerStop

    async def on_private_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The message after `/start battle_<id>` is the entry; other messages are setups."""
        message = update.effective_message
        assert message is not None
        user = sender(message)
        if user is None:
            return
        answer = await self.service.submit_secret(Platform.TELEGRAM, user, message.text)
        if answer is None:
            return
        await _reply(context.bot, message, answer)
        raise ApplicationHandlerStop

    # -- buttons --------------------------------------------------------------------------------

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        payload = parse_payload(query.data)
        if isinstance(payload, VotePayload):
            chat = chat_ref(query.message.chat) if query.message is not None else None
            answer = await self.service.vote(
                payload.battle_id, payload.position, user_ref(query.from_user), chat
            )
            text = answer.text
        elif isinstance(payload, EnterPayload):
            text = "Reply to the battle message with your punchline."
        else:
            text = MSG_BAD_BUTTON
        try:
            await query.answer(text)
        except TelegramError as exc:
            log.info("button press not answered: %r", exc)
        raise ApplicationHandlerStop


def install_battles(application: Application, service: BattleService) -> None:  # type: ignore[type-arg]
    """Register the battle handlers (group -1) and the Telegram announcer on `service`."""
    service.attach(Platform.TELEGRAM, TelegramAnnouncer(application.bot))
    ui = TelegramBattleUI(service)
    add = application.add_handler
    g = HANDLER_GROUP
    add(CommandHandler("battle", ui.on_battle, filters=_NEW), g)
    add(CommandHandler("cancel", ui.on_cancel, filters=_NEW), g)
    add(CommandHandler("leaderboard", ui.on_leaderboard, filters=_NEW), g)
    add(CommandHandler("start", ui.on_start_battle, filters=_NEW & filters.ChatType.PRIVATE), g)
    add(MessageHandler(_TEXT & filters.ChatType.GROUPS & filters.REPLY, ui.on_group_reply), g)
    add(MessageHandler(_TEXT & filters.ChatType.PRIVATE, ui.on_private_text), g)
    add(CallbackQueryHandler(ui.on_button, pattern=r"^battle:"), g)


async def _is_chat_admin(bot: Bot, message: Message) -> bool:
    """Whether the sender administers the group (an anonymous admin posts as the group)."""
    if message.sender_chat is not None and message.sender_chat.id == message.chat.id:
        return True
    if message.from_user is None or message.chat.type == Chat.PRIVATE:
        return False
    try:
        member = await bot.get_chat_member(message.chat.id, message.from_user.id)
    except TelegramError as exc:
        log.info("could not check admin status in %s: %r", message.chat.id, exc)
        return False
    return member.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER)


async def _reply(bot: Bot, message: Message, answer: Answer) -> None:
    try:
        await bot.send_message(
            message.chat_id,
            fit_message(answer.text),
            reply_parameters=ReplyParameters(message.message_id, allow_sending_without_reply=True),
        )
    except TelegramError as exc:
        log.info("battle answer not sent to %s: %r", message.chat_id, exc)


async def _send(bot: Bot, chat_id: int, text: str) -> None:
    try:
        await bot.send_message(chat_id, fit_message(text))
    except TelegramError as exc:
        log.info("battle note not sent to %s: %r", chat_id, exc)


async def _delete(bot: Bot, message: Message) -> None:
    try:
        await bot.delete_message(message.chat_id, message.message_id)
    except TelegramError as exc:
        log.info("entry %s in %s not deleted (no right to?): %r", message.message_id, message.chat_id, exc)
