"""Where the database keeps people: every table's columns, each said to hold a person (their
id or name), a person's words, or neither.

`/forget` and the retention purge (`bot.storage.privacy`) work from this map, and a test
checks it against the live schema, so a table or column added by a migration must be placed
here before the tests pass: nothing about a person can be forgotten by accident.
"""

from __future__ import annotations

from typing import Final

PERSON: Final = "person"  # a platform user id, a user row, or a person's display name
WORDS: Final = "words"  # text a person wrote (a setup, an entry, a chat's title that is a name)
OTHER: Final = "other"  # the bot's own text, scores, times, ids of the bot's messages

COLUMNS: Final[dict[str, dict[str, str]]] = {
    "users": {
        "id": PERSON, "platform": OTHER, "user_id": PERSON, "name": PERSON, "is_bot": OTHER,
        "first_seen": OTHER, "last_seen": OTHER, "training": OTHER,
    },
    "chats": {
        "id": OTHER, "platform": OTHER, "chat_id": OTHER, "kind": OTHER,
        "title": WORDS,  # a private chat's title is its person's name
        "settings": OTHER, "created_at": OTHER, "updated_at": OTHER,
    },
    "requests": {
        "id": OTHER, "chat_pk": OTHER, "user_pk": PERSON, "message_id": OTHER, "text": WORDS,
        "text_chars": OTHER, "status": OTHER, "detail": OTHER, "created_at": OTHER,
        "finished_at": OTHER,
    },
    "replies": {
        "id": OTHER, "request_id": OTHER, "chat_pk": OTHER, "message_id": OTHER, "text": OTHER,
        "version": OTHER, "score": OTHER, "created_at": OTHER, "sent_at": OTHER,
    },
    "reactions": {
        "reply_id": OTHER, "user_pk": PERSON, "source": OTHER, "emojis": OTHER, "rating": OTHER,
        "funniness": OTHER, "appropriateness": OTHER, "updated_at": OTHER,
    },
    "reaction_counts": {
        "reply_id": OTHER, "emoji": OTHER, "count": OTHER, "funniness": OTHER,
        "appropriateness": OTHER, "updated_at": OTHER,
    },
    "reaction_events": {
        "id": OTHER, "reply_id": OTHER, "user_pk": PERSON, "source": OTHER, "action": OTHER,
        "payload": OTHER, "created_at": OTHER,
    },
    "battles": {
        "id": OTHER, "platform": OTHER, "chat_id": OTHER, "chat_kind": OTHER, "chat_title": OTHER,
        "starter_id": PERSON, "starter_name": PERSON,
        "setup": WORDS,  # a setup given with /battle (the round's prompt; kept, anonymous)
        "setup_key": WORDS, "source": OTHER, "classic": OTHER, "phase": OTHER,
        "created_at": OTHER, "entry_deadline": OTHER, "vote_deadline": OTHER, "ended_at": OTHER,
        "ended_by": PERSON, "entry_message_id": OTHER, "vote_message_id": OTHER,
        "result_message_id": OTHER, "total_votes": OTHER, "bot_outcome": OTHER,
        "entry_token": OTHER,
    },
    "battle_entries": {
        "id": OTHER, "battle_id": OTHER, "kind": OTHER, "user_id": PERSON, "user_name": PERSON,
        "version": OTHER, "text": WORDS, "reply_id": OTHER, "position": OTHER, "votes": OTHER,
        "points": OTHER, "won": OTHER, "identical": OTHER, "created_at": OTHER,
        "updated_at": OTHER,
    },
    "battle_votes": {
        "battle_id": OTHER, "voter_id": PERSON, "voter_name": PERSON, "entry_id": OTHER,
        "created_at": OTHER, "updated_at": OTHER,
    },
    "battle_pending_entries": {
        "platform": OTHER, "user_id": PERSON, "battle_id": OTHER, "created_at": OTHER,
    },
    "battle_elo": {
        "version": OTHER, "rating": OTHER, "games": OTHER, "wins": OTHER, "draws": OTHER,
        "losses": OTHER, "updated_at": OTHER,
    },
    "meta": {"key": OTHER, "value": OTHER},
    "adapter_versions": {
        "version": OTHER, "path": OTHER, "parent": OTHER, "status": OTHER,
        "registered_at": OTHER, "updated_at": OTHER,
    },
    "version_events": {
        "id": OTHER, "version": OTHER, "event": OTHER,
        "actor": OTHER,  # 'auto', 'admin' or 'refresh': a role, never a person's id
        "reason": OTHER, "at": OTHER,
    },
}  # fmt: skip

# An entry of a finished round whose author was forgotten keeps its points (so the others'
# standings stay true) under a user id that names nobody.
FORGOTTEN_PREFIX: Final = "forgotten:"


def columns_holding(kind: str) -> dict[str, list[str]]:
    """Table -> its columns of `kind` (PERSON or WORDS)."""
    return {
        t: [c for c, k in cols.items() if k == kind] for t, cols in COLUMNS.items() if kind in cols.values()
    }
