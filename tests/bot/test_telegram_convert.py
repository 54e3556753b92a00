"""Who sent a Telegram message, whether it is addressed to the bot, and what the setup is."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from telegram import Message, ReactionCount, ReactionTypeCustomEmoji, ReactionTypeEmoji, ReactionTypePaid

from bot.payloads import RatePayload, decode
from bot.telegram.convert import (
    addressed_text,
    command_argument,
    command_target,
    private_text,
    reaction_counts,
    reaction_emojis,
    sender,
)
from bot.telegram.keyboards import rating_keyboard
from bot.telegram.sender import fit_message
from bot.types import ChatKind, Rating
from tests.fakes.telegram_api import text_entities

BOT_ID = 123456
BOT_NAME = "punchline_test_bot"
GROUP = {"id": -100123, "type": "supergroup", "title": "Jokers"}
ALICE = {"id": 1001, "is_bot": False, "first_name": "Alice", "last_name": "A."}
BOT = {"id": BOT_ID, "is_bot": True, "first_name": "Punchline", "username": BOT_NAME}


def message(
    text: str, *, chat: dict[str, Any] = GROUP, user: dict[str, Any] | None = ALICE, **extra: Any
) -> Message:
    entities = extra.pop("entities", None) or text_entities(text)
    data: dict[str, Any] = {"message_id": 7, "date": 0, "chat": chat, "text": text, **extra}
    if user is not None:
        data["from"] = user
    if entities:
        data["entities"] = entities
    return Message.de_json(data, None)


def test_mentions_are_cut_out_with_utf16_offsets() -> None:
    # The emoji before the mention takes two UTF-16 units: a naive str slice would cut wrong.
    msg = message(f"🤣🤣 hey @{BOT_NAME}, why is 6 afraid of 7?")
    assert addressed_text(msg, BOT_ID, BOT_NAME) == "🤣🤣 hey why is 6 afraid of 7?"
    assert addressed_text(message(f"@{BOT_NAME.upper()}: knock knock"), BOT_ID, BOT_NAME) == "knock knock"


def test_text_mention_and_reply_address_the_bot() -> None:
    text_mention = message(
        "Punchline why?", entities=[{"type": "text_mention", "offset": 0, "length": 9, "user": BOT}]
    )
    assert addressed_text(text_mention, BOT_ID, BOT_NAME) == "why?"
    bot_message = {"message_id": 5, "date": 0, "chat": GROUP, "from": BOT, "text": "A punchline"}
    assert (
        addressed_text(message("and this one?", reply_to_message=bot_message), BOT_ID, BOT_NAME)
        == "and this one?"
    )


def test_chatter_and_other_mentions_are_not_addressed() -> None:
    assert addressed_text(message("why is the sky blue?"), BOT_ID, BOT_NAME) is None
    assert addressed_text(message("@other_bot why?"), BOT_ID, BOT_NAME) is None
    human_message = {"message_id": 5, "date": 0, "chat": GROUP, "from": ALICE, "text": "hi"}
    assert addressed_text(message("re", reply_to_message=human_message), BOT_ID, BOT_NAME) is None


def test_command_arguments_keep_the_text_as_written() -> None:
    msg = message(f"/joke@{BOT_NAME} Why   did\nthe chicken?")
    assert command_target(msg) == BOT_NAME
    assert command_argument(msg, BOT_ID, BOT_NAME) == "Why did\nthe chicken?"
    assert command_argument(message("/joke"), BOT_ID, BOT_NAME) == ""
    assert command_argument(message(f"/joke @{BOT_NAME} knock?"), BOT_ID, BOT_NAME) == "knock?"
    assert command_target(message("/joke@other_bot hi")) == "other_bot"
    assert command_target(message("/joke hi")) is None


def test_private_text_is_all_of_it() -> None:
    private = {"id": 1001, "type": "private", "first_name": "Alice"}
    assert private_text(message("  Why?  ", chat=private), BOT_ID, BOT_NAME) == "Why?"


def test_sender_is_a_person_or_nobody() -> None:
    person = sender(message("hi"))
    assert person is not None and person.user_id == "1001" and person.name == "Alice A."
    assert sender(message("hi", user={"id": 5, "is_bot": True, "first_name": "B"})) is None
    anonymous_admin = message(
        "hi", user={"id": 1087968824, "is_bot": True, "first_name": "Group"}, sender_chat=GROUP
    )
    admin = sender(anonymous_admin)
    assert admin is not None and admin.user_id == str(GROUP["id"])
    channel = {"id": -100999, "type": "channel", "title": "News"}
    assert (
        sender(
            message(
                "hi",
                user={"id": 777000, "is_bot": False, "first_name": "Telegram"},
                sender_chat=channel,
                is_automatic_forward=True,
            )
        )
        is None
    )


def test_reactions_keep_plain_emoji_only() -> None:
    reactions = [ReactionTypeEmoji("🤣"), ReactionTypeCustomEmoji("538"), ReactionTypePaid()]
    assert reaction_emojis(reactions) == ["🤣"]
    counts = [ReactionCount(ReactionTypeEmoji("🤮"), 2), ReactionCount(ReactionTypePaid(), 9)]
    assert reaction_counts(counts) == {"🤮": 2}


def test_rating_keyboard_round_trips_through_the_payload_codec() -> None:
    buttons = rating_keyboard().inline_keyboard[0]
    assert [decode(b.callback_data) for b in buttons] == [RatePayload(r) for r in Rating]


def test_fit_message_respects_telegram_limits() -> None:
    assert fit_message("   ") == "…"
    assert len(fit_message("x" * 5000)) == 4096


@given(st.text(max_size=80), st.text(max_size=40))
def test_cutting_a_mention_never_breaks_the_text(before: str, after: str) -> None:
    text = f"{before} @{BOT_NAME} {after}"
    result = addressed_text(message(text), BOT_ID, BOT_NAME)
    assert result is not None
    assert f"@{BOT_NAME}" not in result or f"@{BOT_NAME}" in before + after
    result.encode("utf-8")  # no lone surrogates left by a cut in the middle of a pair


def test_chat_kinds() -> None:
    from bot.telegram.convert import chat_kind

    assert chat_kind(message("x").chat) is ChatKind.GROUP
    assert (
        chat_kind(message("x", chat={"id": 1, "type": "private", "first_name": "A"}).chat) is ChatKind.PRIVATE
    )
    assert chat_kind(message("x", chat={"id": -1, "type": "channel", "title": "C"}).chat) is ChatKind.CHANNEL
