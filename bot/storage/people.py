"""Users, chats and per-chat settings (table `users`, `chats`)."""

from __future__ import annotations

import json
from datetime import datetime

import aiosqlite

from bot.storage.connection import Queries
from bot.storage.records import ChatRecord, db_time
from bot.types import ChatRef, Platform, UserRef


async def upsert_user(db: aiosqlite.Connection, user: UserRef, at: datetime) -> int:
    """The row id of `user`, created or refreshed (name, last seen), inside a transaction."""
    now = db_time(at)
    async with db.execute(
        "INSERT INTO users (platform, user_id, name, is_bot, first_seen, last_seen) "
        "VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (platform, user_id) DO UPDATE SET "
        "name = CASE WHEN excluded.name != '' THEN excluded.name ELSE users.name END, "
        "last_seen = excluded.last_seen RETURNING id",
        (str(user.platform), user.user_id, user.name, int(user.is_bot), now, now),
    ) as cur:
        row = await cur.fetchone()
    assert row is not None
    return int(row["id"])


async def upsert_chat(db: aiosqlite.Connection, chat: ChatRef, at: datetime) -> int:
    """The row id of `chat`, created or refreshed (kind, title), inside a transaction."""
    now = db_time(at)
    async with db.execute(
        "INSERT INTO chats (platform, chat_id, kind, title, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (platform, chat_id) DO UPDATE SET kind = excluded.kind, "
        "title = CASE WHEN excluded.title != '' THEN excluded.title ELSE chats.title END, "
        "updated_at = excluded.updated_at RETURNING id",
        (str(chat.platform), chat.chat_id, str(chat.kind), chat.title, now, now),
    ) as cur:
        row = await cur.fetchone()
    assert row is not None
    return int(row["id"])


class PeopleQueries(Queries):
    """`storage.people`: who talks to the bot, and where."""

    async def get_chat(self, platform: Platform, chat_id: str) -> ChatRecord | None:
        async with self.db.execute(
            "SELECT * FROM chats WHERE platform = ? AND chat_id = ?", (str(platform), chat_id)
        ) as cur:
            row = await cur.fetchone()
        return ChatRecord.from_row(row) if row else None

    async def get_chat_setting(self, chat: ChatRef, key: str, default: object = None) -> object:
        """One per-chat setting or flag (JSON value), `default` when unset or chat unknown."""
        record = await self.get_chat(chat.platform, chat.chat_id)
        if record is None:
            return default
        return record.settings.get(key, default)

    async def set_chat_setting(self, chat: ChatRef, key: str, value: object, at: datetime) -> None:
        """Set one per-chat setting (any JSON-serialisable value)."""
        encoded = json.dumps(value)
        async with self.transaction() as db:
            chat_pk = await upsert_chat(db, chat, at)
            await db.execute(
                "UPDATE chats SET settings = json_set(settings, '$.' || json_quote(?), json(?)), "
                "updated_at = ? WHERE id = ?",
                (key, encoded, db_time(at), chat_pk),
            )

    async def claim_chat_flag(self, chat: ChatRef, key: str, at: datetime) -> bool:
        """Set a boolean per-chat flag; True only for the call that set it (e.g. say once)."""
        async with self.transaction() as db:
            chat_pk = await upsert_chat(db, chat, at)
            async with db.execute(
                "UPDATE chats SET settings = json_set(settings, '$.' || json_quote(?), json('true')), "
                "updated_at = ? WHERE id = ? "
                "AND COALESCE(json_extract(settings, '$.' || json_quote(?)), 0) = 0",
                (key, db_time(at), chat_pk, key),
            ) as cur:
                return cur.rowcount == 1
