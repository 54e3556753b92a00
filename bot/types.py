"""Typed events between the chat front-ends (Telegram, Discord, console) and the bot core.

Platform ids are strings so that Telegram's integers and Discord's snowflakes travel alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Platform(StrEnum):
    TELEGRAM = "telegram"
    DISCORD = "discord"
    CONSOLE = "console"


class ChatKind(StrEnum):
    PRIVATE = "private"  # every message is a setup
    GROUP = "group"  # only commands, mentions and replies to the bot are setups
    CHANNEL = "channel"  # broadcast channels: anonymous reaction counts only


class Rating(StrEnum):
    """The inline rating buttons, one per axis value (docs/DESIGN.md, decision 3)."""

    FUNNY = "funny"
    MEH = "meh"
    INAPPROPRIATE = "inappropriate"


class ReplyKind(StrEnum):
    PUNCHLINE = "punchline"  # a generated punchline; it can be rated
    REFUSAL = "refusal"  # the text cannot be a setup (empty, too long)
    RATE_LIMITED = "rate_limited"  # too many requests, or one still in flight
    BUSY = "busy"  # the worker is busy or timed out: try again in a moment
    ERROR = "error"  # something failed; said kindly, never a traceback
    INFO = "info"  # help, stats and other plain answers


@dataclass(frozen=True, slots=True)
class ChatRef:
    platform: Platform
    chat_id: str
    kind: ChatKind
    title: str = ""


@dataclass(frozen=True, slots=True)
class UserRef:
    """A person on a platform. `anonymous` is a group acting for an unknown person (Telegram's
    anonymous admins): there is somebody, but nobody to credit an entry or a vote to."""

    platform: Platform
    user_id: str
    name: str = ""
    is_bot: bool = False
    anonymous: bool = False


@dataclass(frozen=True, slots=True)
class IncomingSetup:
    """A message that may be a joke setup.

    `addressed` is the front-end's verdict: a command, a mention, or a reply to the bot. In
    private chats every message is addressed.
    """

    chat: ChatRef
    user: UserRef
    text: str
    addressed: bool
    message_id: str | None = None
    # Whose words the setup is when not the asker's (🔁 on someone's setup, "Punchline this" on
    # someone's message): the stored request belongs to them, so their /forget and opt-out
    # follow their words; limits still apply to `user`.
    author: UserRef | None = None

    @property
    def words_of(self) -> UserRef:
        return self.author or self.user


@dataclass(frozen=True, slots=True)
class OutgoingReply:
    """What the front-end sends back. `reply_id` is set for punchlines, which can be rated."""

    kind: ReplyKind
    text: str
    reply_id: int | None = None
    version: str | None = None

    @property
    def rateable(self) -> bool:
        return self.kind is ReplyKind.PUNCHLINE and self.reply_id is not None


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A message the bot sent, as the platform knows it."""

    chat: ChatRef
    message_id: str
