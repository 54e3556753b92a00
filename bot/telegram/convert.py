"""Translating between python-telegram-bot objects and the core's platform-free types.

Pure functions only: who sent a message, whether it is addressed to the bot, the setup text
without the bot's command or mention, the emoji in a reaction update, the rating keyboard.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from telegram import (
    Chat,
    Message,
    MessageEntity,
    ReactionCount,
    ReactionType,
    ReactionTypeEmoji,
    User,
)

from bot.types import ChatKind, ChatRef, MessageRef, Platform, UserRef
from model.text import clean_text

# Left over after a mention is cut out of "Hey @bot, why ...": separators and doubled spaces.
_LEADING_SEPARATORS = " \t\n,:;"
_MENTION_SEPARATORS = ",:;"
_DOUBLE_SPACE = re.compile(r"[ \t]{2,}")


def chat_kind(chat: Chat) -> ChatKind:
    if chat.type == Chat.PRIVATE:
        return ChatKind.PRIVATE
    if chat.type == Chat.CHANNEL:
        return ChatKind.CHANNEL
    return ChatKind.GROUP  # group and supergroup behave alike for the bot


def chat_ref(chat: Chat) -> ChatRef:
    title = clean_text(chat.title or chat.full_name or chat.username or "")
    return ChatRef(Platform.TELEGRAM, str(chat.id), chat_kind(chat), title)


def user_ref(user: User) -> UserRef:
    """The core's name for a Telegram user; the name is cleaned (`model.text.clean_text`), so
    no bidi override in a name can turn the text around it when it is shown."""
    return UserRef(
        Platform.TELEGRAM, str(user.id), clean_text(user.full_name or user.username or ""), user.is_bot
    )


def actor_chat_ref(chat: Chat) -> UserRef:
    """An anonymous group admin or a channel acting as a user: the chat stands for the person,
    marked anonymous (battles credit no entry or vote to it)."""
    return UserRef(
        Platform.TELEGRAM, str(chat.id), clean_text(chat.title or chat.username or ""), False, True
    )


def message_ref(chat: Chat, message_id: int) -> MessageRef:
    return MessageRef(chat_ref(chat), str(message_id))


def sender(message: Message) -> UserRef | None:
    """The person behind a message, or None when no person wrote it (bots, channels, forwards).

    Anonymous group admins post as the GroupAnonymousBot with the group as sender_chat; they are
    people, represented by the group itself.
    """
    if message.via_bot is not None or message.is_automatic_forward:
        return None
    if message.sender_chat is not None:
        if message.sender_chat.id == message.chat.id:
            return actor_chat_ref(message.chat)
        return None  # a channel writing in a group
    if message.from_user is None or message.from_user.is_bot:
        return None
    return user_ref(message.from_user)


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def _cut(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` without the given (offset, length) spans, which Telegram counts in UTF-16 units."""
    data = _utf16(text)
    for offset, length in sorted(spans, reverse=True):
        data = data[: offset * 2] + data[(offset + length) * 2 :]
    return data.decode("utf-16-le", errors="replace")


def _after(text: str, offset: int, length: int) -> str:
    return _utf16(text)[(offset + length) * 2 :].decode("utf-16-le", errors="replace")


def _mention_spans(message: Message, bot_id: int, bot_username: str) -> list[tuple[int, int]]:
    """Where the bot is mentioned, each span with the "," or ":" right after it ("@bot, why")."""
    text = message.text or ""
    spans = []
    wanted = "@" + bot_username.lower()
    for entity, value in message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION]).items():
        ours = (entity.type == MessageEntity.MENTION and value.lower() == wanted) or (
            entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot_id
        )
        if ours:
            rest = _after(text, entity.offset, entity.length)
            separators = len(rest) - len(rest.lstrip(_MENTION_SEPARATORS))  # one UTF-16 unit each
            spans.append((entity.offset, entity.length + separators))
    return spans


def tidy(text: str) -> str:
    """Whitespace and separators left where a command or mention was cut out."""
    return _DOUBLE_SPACE.sub(" ", text).lstrip(_LEADING_SEPARATORS).rstrip()


def is_reply_to_bot(message: Message, bot_id: int) -> bool:
    replied = message.reply_to_message
    return bool(replied and replied.from_user and replied.from_user.id == bot_id)


def addressed_text(message: Message, bot_id: int, bot_username: str) -> str | None:
    """The setup in a non-command group message addressed to the bot, else None.

    Addressed means a reply to one of the bot's messages or a mention of the bot (``@name`` or a
    text mention); the mention itself is cut out. Unaddressed chatter gives None.
    """
    text = message.text or ""
    spans = _mention_spans(message, bot_id, bot_username)
    if not spans and not is_reply_to_bot(message, bot_id):
        return None
    return tidy(_cut(text, spans))


def private_text(message: Message, bot_id: int, bot_username: str) -> str:
    """The setup in a private message: all of it, minus a mention of the bot if someone typed one."""
    return tidy(_cut(message.text or "", _mention_spans(message, bot_id, bot_username)))


def command_argument(message: Message, bot_id: int, bot_username: str) -> str:
    """The text after a leading ``/command`` (or ``/command@bot``), as written, mention-free."""
    text = message.text or ""
    command = next(
        (e for e in message.entities if e.type == MessageEntity.BOT_COMMAND and e.offset == 0),
        None,
    )
    if command is None:
        return tidy(text)
    rest = _after(text, command.offset, command.length)
    # Drop any further mention of the bot in the argument ("/joke @bot why ...").
    offset = command.offset + command.length
    spans = [
        (start - offset, length)
        for start, length in _mention_spans(message, bot_id, bot_username)
        if start >= offset
    ]
    return tidy(_cut(rest, spans))


def command_target(message: Message) -> str | None:
    """The ``@bot`` a leading command names (``/stats@other_bot`` gives "other_bot"), or None."""
    for entity in message.entities:
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            command = message.parse_entity(entity)
            return command.split("@", 1)[1] if "@" in command else None
    return None


def reaction_emojis(reactions: Sequence[ReactionType]) -> list[str]:
    """The plain emoji among `reactions`; custom emoji and paid stars carry no rating."""
    return [r.emoji for r in reactions if isinstance(r, ReactionTypeEmoji)]


def reaction_counts(reactions: Sequence[ReactionCount]) -> dict[str, int]:
    return {r.type.emoji: r.total_count for r in reactions if isinstance(r.type, ReactionTypeEmoji)}
