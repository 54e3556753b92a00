"""A core whose help and setup paths blow up, for front-ends that must still answer kindly."""

from __future__ import annotations

from bot.core.service import BotCore
from bot.types import ChatRef, IncomingSetup, OutgoingReply, UserRef


class BrokenCore(BotCore):
    """A core whose help and setup paths blow up: the front-end must still answer kindly."""

    async def help_for(self, chat: ChatRef, user: UserRef) -> str:
        raise RuntimeError("help exploded: /etc/secret")

    async def handle_setup(self, msg: IncomingSetup) -> OutgoingReply | None:
        raise RuntimeError("setup exploded: /etc/secret")
