"""Who may use the bot where: the optional allow-lists and the bot's admins.

Shared by the core and the battles, so a chat or person outside the lists meets the same door
everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.types import ChatKind, ChatRef, Platform, UserRef
from config.settings import Settings


def _id_in(value: str, allowed: Sequence[int]) -> bool:
    try:
        return int(value) in allowed
    except ValueError:
        return False


class Access:
    """The allow-lists and admin lists of `PUNCHLINE_TELEGRAM__*` and `PUNCHLINE_DISCORD__*`."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def is_admin(self, user: UserRef) -> bool:
        """Admins may use the commands that change the bot. The console user is the owner."""
        if user.platform is Platform.CONSOLE:
            return True
        if user.platform is Platform.TELEGRAM:
            return _id_in(user.user_id, self.settings.telegram.admin_ids)
        if user.platform is Platform.DISCORD:
            return _id_in(user.user_id, self.settings.discord.admin_ids)
        return False

    def is_allowed(self, chat: ChatRef, user: UserRef) -> bool:
        """The optional allow-lists (empty lists allow everyone; admins are always allowed).

        A private chat passes the chat list when the user passes an explicit user list, so
        allowed users can talk to the bot directly.
        """
        if user.platform is Platform.CONSOLE or self.is_admin(user):
            return True
        if user.platform is Platform.TELEGRAM:
            chats, users = self.settings.telegram.allowed_chats, self.settings.telegram.allowed_users
        elif user.platform is Platform.DISCORD:
            chats, users = self.settings.discord.allowed_channels, self.settings.discord.allowed_users
        else:
            return False
        user_ok = not users or _id_in(user.user_id, users)
        chat_ok = (
            not chats
            or _id_in(chat.chat_id, chats)
            or (chat.kind is ChatKind.PRIVATE and bool(users) and user_ok)
        )
        return user_ok and chat_ok
