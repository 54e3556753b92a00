"""Telegram objects as the fake builds them (JSON), and the checks it applies to parameters."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

JSON = dict[str, Any]

# How long wait_for / wait_fetched wait by default. Generous on purpose: a loaded CI machine can
# be slow, and a wait ends as soon as its call arrives, so only a failing test ever waits this long.
WAIT_TIMEOUT_S = 30.0

# Update types Telegram sends only when a bot lists them in allowed_updates.
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# Parameters that are always strings on the wire; everything else PTB sends JSON-encoded.
STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "callback_query_id",
        "parse_mode",
        "action",
        "url",
        "name",
        "title",
        "description",
        "short_description",
        "language_code",
        "inline_message_id",
        "business_connection_id",
        "secret_token",
    }
)
MENTION_RE = re.compile(r"@[A-Za-z0-9_]{3,32}")
COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?")
ADMIN_RIGHTS = (
    "can_be_edited",
    "is_anonymous",
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_pin_messages",
)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def text_entities(text: str) -> list[JSON]:
    """The entities Telegram would attach: a leading ``/command`` and every ``@mention``."""
    entities: list[JSON] = []
    command = COMMAND_RE.match(text)
    if command:
        entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(command.group())})
    for mention in MENTION_RE.finditer(text):
        if command and mention.start() < command.end():
            continue  # the /command@bot suffix belongs to the command entity
        entities.append(
            {
                "type": "mention",
                "offset": utf16_len(text[: mention.start()]),
                "length": utf16_len(mention.group()),
            }
        )
    return entities


def chat_member(chat_id: int, user: Mapping[str, Any], status: str) -> JSON:
    """A ChatMember object with the fields Telegram sends for `status`."""
    member: JSON = {"status": status, "user": dict(user)}
    if status in ("administrator", "creator"):
        member["is_anonymous"] = False
    if status == "administrator":
        member.update({right: right != "is_anonymous" for right in ADMIN_RIGHTS})
        member["can_be_edited"] = False
    if status == "restricted":
        member.update(
            is_member=True,
            until_date=0,
            can_change_info=False,
            can_invite_users=False,
            can_pin_messages=False,
            can_send_messages=True,
            can_send_polls=False,
            can_send_other_messages=False,
            can_add_web_page_previews=False,
            can_manage_topics=False,
            can_send_audios=False,
            can_send_documents=False,
            can_send_photos=False,
            can_send_videos=False,
            can_send_video_notes=False,
            can_send_voice_notes=False,
            can_edit_tag=False,
            can_react_to_messages=True,
        )
    if status == "kicked":
        member["until_date"] = 0
    return member


class BadRequest(Exception):
    """A 400 answer (what Telegram calls a Bad Request), raised by a method."""


def inline_markup(params: JSON, *, inline_only: bool = True) -> JSON | None:
    """The inline keyboard `params` attach, as Telegram stores it; None for none.

    A Message's ``reply_markup`` is only ever an InlineKeyboardMarkup with at least one button
    (python-telegram-bot reads ``reply_markup["inline_keyboard"]`` unconditionally), so what the
    fake hands back must have that shape: no markup, ``{}`` or ``{"inline_keyboard": []}`` leave
    the message without a keyboard, and a reply keyboard (``keyboard``, ``remove_keyboard``,
    ``force_reply``) is accepted by sendMessage but never shows up in the Message. Markup that is
    not a JSON object, or a keyboard of the wrong shape, is refused with 400 like Telegram does.
    """
    raw = params.get("reply_markup")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, Mapping):
        raise BadRequest("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in raw:
        if raw and inline_only:
            raise BadRequest("inline keyboard expected")
        return None
    rows = raw["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise BadRequest('field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays')
    for row in rows:
        for button in row:
            if not isinstance(button, Mapping) or not button.get("text"):
                raise BadRequest("can't parse inline keyboard button: text is required")
    if not any(rows):
        return None
    # A copy: the stored message must not share objects with the recorded call's params.
    return json.loads(json.dumps({"inline_keyboard": rows}))


def set_markup(message: JSON, markup: JSON | None) -> None:
    if markup is None:
        message.pop("reply_markup", None)
    else:
        message["reply_markup"] = markup


def required(params: JSON, name: str) -> Any:
    if params.get(name) in (None, ""):
        raise BadRequest(f"parameter {name} is required")
    return params[name]


def reaction_type(item: str | Mapping[str, Any]) -> JSON:
    if isinstance(item, str):
        return {"type": "emoji", "emoji": item}
    return dict(item)


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
