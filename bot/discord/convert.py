"""Translate discord.py objects into the core's platform-free references and setup text.

Shared by the Discord handlers and the battles' Discord UI, so both name chats and users the
same way. Snowflakes travel as strings (see `bot.types`); names are cleaned with
`model.text.clean_text`, so no bidi override in a name can turn the text around it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord

from bot.types import ChatKind, ChatRef, MessageRef, Platform, UserRef
from model.text import clean_text

log = logging.getLogger(__name__)

# Discord's hard limit on a message's content.
MAX_MESSAGE_CHARS = 2000

_USER_MENTION = re.compile(r"<@!?(\d+)>")


def chat_kind(guild_id: int | None) -> ChatKind:
    """DMs are private chats (every message is a setup); guild channels and threads are groups."""
    return ChatKind.PRIVATE if guild_id is None else ChatKind.GROUP


def chat_ref(channel_id: int, guild_id: int | None, title: str = "") -> ChatRef:
    """The core's name for a Discord channel (a DM channel, a guild text channel or a thread)."""
    return ChatRef(Platform.DISCORD, str(channel_id), chat_kind(guild_id), title)


def chat_ref_for_channel(channel: object, guild_id: int | None) -> ChatRef:
    """`chat_ref` for a discord.py channel object of any kind (named or not)."""
    title = getattr(channel, "name", None) or ("DM" if guild_id is None else "")
    return chat_ref(getattr(channel, "id"), guild_id, clean_text(str(title)))


def chat_ref_for_message(message: discord.Message) -> ChatRef:
    guild_id = message.guild.id if message.guild is not None else None
    return chat_ref_for_channel(message.channel, guild_id)


def chat_ref_for_interaction(interaction: discord.Interaction[Any]) -> ChatRef:
    channel = interaction.channel
    if channel is None:  # never in practice; Discord always names the channel
        return chat_ref(interaction.channel_id or 0, interaction.guild_id)
    return chat_ref_for_channel(channel, interaction.guild_id)


def user_ref(user: discord.abc.User) -> UserRef:
    """The core's name for a Discord user; the display name is only for people to read."""
    return UserRef(Platform.DISCORD, str(user.id), clean_text(user.display_name), bool(user.bot))


def message_ref(chat: ChatRef, message_id: int) -> MessageRef:
    return MessageRef(chat, str(message_id))


def interaction_message_ref(interaction: discord.Interaction[Any]) -> MessageRef | None:
    """The message whose button was pressed, None for interactions without one."""
    if interaction.message is None:
        return None
    return message_ref(chat_ref_for_interaction(interaction), interaction.message.id)


def strip_bot_mentions(content: str, bot_id: int, bot_role_id: int | None = None) -> str:
    """The text with every mention of the bot (user mention or its managed role) removed.

    Front-ends strip their own addressing syntax so the core sees only the setup.
    """
    text = re.sub(rf"<@!?{bot_id}>", " ", content)
    if bot_role_id is not None:
        text = text.replace(f"<@&{bot_role_id}>", " ")
    return " ".join(text.split())


def readable_mentions(content: str, names: dict[int, str]) -> str:
    """Other users' mentions as `@name`, so the model reads a name rather than a snowflake."""

    def name_for(match: re.Match[str]) -> str:
        name = names.get(int(match.group(1)))
        return f"@{name}" if name else match.group(0)

    return _USER_MENTION.sub(name_for, content)


def fit(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Text that Discord accepts: never empty, never over the limit (cut with an ellipsis)."""
    text = text.strip() or "…"
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def answer_ephemeral(interaction: discord.Interaction[Any], text: str) -> None:
    """Answer an interaction privately, whether or not it was answered or deferred already."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(fit(text), ephemeral=True)
        else:
            await interaction.response.send_message(fit(text), ephemeral=True)
    except discord.HTTPException:
        log.warning("cannot answer an interaction", exc_info=True)
