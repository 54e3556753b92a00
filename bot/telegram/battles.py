"""Joke battles on Telegram: commands, reply entries, secret entries by deep link, vote buttons.

`bot.telegram.app.register_handlers` registers these in group -1, ahead of the core's (group
0); a handler that consumes an update raises `ApplicationHandlerStop` so the core never sees
it, and one that does not (a reply to some other message, a private message with no entry
pending) lets it through.

- `/battle [setup]`, `/cancel`, `/leaderboard` in groups;
- a reply to a round's announcement is an entry; the bot deletes it when it has the right, so
  nobody sees the text before voting;
- the announcement's button is a deep link `https://t.me/<bot>?start=b_<token>` (a random token
  per round): `/start b_<token>` in the private chat opens a secret entry for members of that
  group, and the next private text is the entry;
- the ballot's vote buttons carry `bot.payloads.VotePayload`; the ballot message names the round.
"""

from __future__ import annotations

import logging

from telegram import CallbackQuery, Message, Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.battles.models import Answer, RefusalReason, View, parse_deep_link
from bot.battles.service import BattleService
from bot.payloads import EnterPayload, VotePayload
from bot.telegram.convert import chat_ref, command_argument, sender, user_ref
from bot.telegram.keyboards import battle_keyboard
from bot.telegram.members import is_chat_admin, is_member
from bot.telegram.sender import TelegramSender
from bot.types import ChatKind, ChatRef, Platform, UserRef

log = logging.getLogger(__name__)

MSG_GROUPS_ONLY = "Leaderboards are kept per group: send /leaderboard in a group I'm in."
MSG_HOW_TO_ENTER = "Reply to the battle message with your punchline."


class TelegramAnnouncer:
    """Posts battle messages through the sender (errors are logged, reported as None/False)."""

    def __init__(self, sender: TelegramSender):
        self.sender = sender

    async def _username(self) -> str:
        # Rounds resumed at start-up may close before the application is initialised;
        # initialising the bot here is safe (Application.initialize skips a ready bot).
        bot = self.sender.bot
        try:
            return bot.username
        except RuntimeError:
            await bot.initialize()
            return bot.username

    async def post(self, chat: ChatRef, view: View) -> str | None:
        markup = battle_keyboard(view, await self._username())
        sent = await self.sender.send(int(chat.chat_id), view.text, markup)
        return None if sent is None else str(sent.message_id)

    async def edit(self, chat: ChatRef, message_id: str, view: View) -> bool:
        markup = battle_keyboard(view, await self._username())
        return await self.sender.edit(int(chat.chat_id), int(message_id), view.text, markup)

    async def delete(self, chat: ChatRef, message_id: str) -> bool:
        return await self.sender.delete(int(chat.chat_id), int(message_id))


class TelegramBattleUI:
    """The battle handlers, bound to one service."""

    def __init__(self, service: BattleService, sender: TelegramSender):
        self.service = service
        self.sender = sender

    # -- commands -------------------------------------------------------------------------------

    async def on_battle(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        user = sender(message)
        if user is not None:
            setup = command_argument(message, context.bot.id, context.bot.username)
            answer = await self.service.start(chat_ref(message.chat), user, setup or None)
            if not answer.ok:
                self._reply(message, answer)
        raise ApplicationHandlerStop

    async def on_cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        user = sender(message)
        if user is None:
            raise ApplicationHandlerStop
        chat = chat_ref(message.chat)
        if chat.kind is ChatKind.PRIVATE:
            answer = await self.service.entries.cancel_secret_entry(Platform.TELEGRAM, user)
            if answer is None:
                return  # nothing of ours to cancel: the core answers the command
        else:
            admin = await is_chat_admin(context.bot, message)
            answer = await self.service.cancel(chat, user, chat_admin=admin)
        self._reply(message, answer)
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
            self._reply(message, Answer(text))
        raise ApplicationHandlerStop

    async def on_promote(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """`/promote [version]` (the bot's admins): where each challenger stands, or promote one."""
        message = update.effective_message
        assert message is not None
        user = sender(message)
        if user is not None:
            argument = command_argument(message, context.bot.id, context.bot.username)
            self._reply(message, Answer(await self.service.promote(chat_ref(message.chat), user, argument)))
        raise ApplicationHandlerStop

    async def on_start_battle(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """`/start b_<token>` from the deep link: open a secret entry (members of the round's
        group only; getChatMember says who is)."""
        message = update.effective_message
        assert message is not None
        user = sender(message)
        token = parse_deep_link(context.args[0] if context.args else None)
        if user is None or token is None:
            return  # an ordinary /start: the core's help answers it

        async def member(chat: ChatRef, person: UserRef) -> bool:
            return await is_member(context.bot, int(chat.chat_id), int(person.user_id))

        answer = await self.service.entries.begin_secret_entry(Platform.TELEGRAM, token, user, member)
        self._reply(message, answer)
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
        answer = await self.service.entries.submit_reply(
            chat_ref(message.chat), str(replied.message_id), user, message.text, message.date
        )
        if answer is None:
            return
        if answer.ok:
            # Hide the text until voting; without the right to delete it stays visible.
            await self.sender.delete(message.chat_id, message.message_id)
            if answer.replaced:
                self.sender.queue(message.chat_id, f"{user.name}: {answer.text}")
        elif answer.reason is RefusalReason.FAMILY:
            # Withheld in a family chat: out of sight, and the author alone is told (a private
            # message reaches them if they ever started the bot; otherwise it is logged).
            await self.sender.delete(message.chat_id, message.message_id)
            self.sender.queue(int(user.user_id), answer.text)
        elif answer.reason is not RefusalReason.NOT_PERMITTED:
            self._reply(message, answer)
        raise ApplicationHandlerStop

    async def on_private_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The message after `/start battle_<id>` is the entry; other messages are setups."""
        message = update.effective_message
        assert message is not None
        user = sender(message)
        if user is None:
            return
        answer = await self.service.entries.submit_secret(Platform.TELEGRAM, user, message.text, message.date)
        if answer is None:
            return
        self._reply(message, answer)
        raise ApplicationHandlerStop

    # -- buttons --------------------------------------------------------------------------------

    async def on_button(self, query: CallbackQuery, payload: VotePayload | EnterPayload) -> str:
        """A battle button (routed here by the core handlers); the text to answer it with."""
        if isinstance(payload, EnterPayload) or query.message is None:
            return MSG_HOW_TO_ENTER
        chat = chat_ref(query.message.chat)
        answer = await self.service.vote(
            chat, str(query.message.message_id), payload.position, user_ref(query.from_user)
        )
        return answer.text

    def _reply(self, message: Message, answer: Answer) -> None:
        """Answer from the chat's outbox: a throttled group must not hold an update slot."""
        self.sender.queue(message.chat_id, answer.text, reply_to=message.message_id)
