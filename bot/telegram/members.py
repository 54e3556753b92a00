"""Who someone is in a Telegram group, asked with getChatMember: a member (for battle deep
links), an admin (for /cancel and /family). A failed check counts as no."""

from __future__ import annotations

import logging

from telegram import Bot, Chat, ChatMember, Message
from telegram.error import TelegramError

log = logging.getLogger(__name__)


async def is_member(bot: Bot, chat_id: int, user_id: int) -> bool:
    """Whether the person belongs to the group now (a failed check counts as no)."""
    try:
        member = await bot.get_chat_member(chat_id, user_id)
    except TelegramError as exc:
        log.info("could not check membership in %s: %r", chat_id, exc)
        return False
    if member.status == ChatMember.RESTRICTED:
        return bool(getattr(member, "is_member", False))
    return member.status in (ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER)


async def is_chat_admin(bot: Bot, message: Message) -> bool:
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
