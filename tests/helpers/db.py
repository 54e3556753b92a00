"""Reads of the bot's SQLite file that only tests make (the bot itself never needs them)."""

from __future__ import annotations

import json
from datetime import datetime

from bot.storage import Storage
from bot.storage.people import upsert_chat, upsert_user
from bot.storage.records import ReactionRecord, ReplyRecord, RequestRecord, UserRecord
from bot.storage.requests import REPLY_SQL
from bot.types import ChatRef, Platform, UserRef


async def count(storage: Storage, table: str) -> int:
    """Rows in one of the bot's tables (`table` is one of our own names, never input)."""
    async with storage.db.execute(f"SELECT COUNT(*) FROM {table}") as cur:  # noqa: S608
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def reactions_for(storage: Storage, reply_id: int) -> list[ReactionRecord]:
    async with storage.db.execute(
        "SELECT * FROM reactions WHERE reply_id = ? ORDER BY user_pk, source", (reply_id,)
    ) as cur:
        return [ReactionRecord.from_row(r) for r in await cur.fetchall()]


async def reaction_counts(storage: Storage, reply_id: int) -> dict[str, int]:
    async with storage.db.execute(
        "SELECT emoji, count FROM reaction_counts WHERE reply_id = ? ORDER BY emoji", (reply_id,)
    ) as cur:
        return {row["emoji"]: int(row["count"]) for row in await cur.fetchall()}


async def count_events(storage: Storage, reply_id: int) -> int:
    async with storage.db.execute(
        "SELECT COUNT(*) FROM reaction_events WHERE reply_id = ?", (reply_id,)
    ) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def event_payloads(storage: Storage, reply_id: int) -> list[object]:
    async with storage.db.execute(
        "SELECT payload FROM reaction_events WHERE reply_id = ? ORDER BY id", (reply_id,)
    ) as cur:
        return [json.loads(r["payload"]) for r in await cur.fetchall()]


async def get_request(storage: Storage, request_id: int) -> RequestRecord | None:
    async with storage.db.execute("SELECT * FROM requests WHERE id = ?", (request_id,)) as cur:
        row = await cur.fetchone()
    return RequestRecord.from_row(row) if row else None


async def get_reply(storage: Storage, reply_id: int) -> ReplyRecord | None:
    async with storage.db.execute(REPLY_SQL + " WHERE r.id = ?", (reply_id,)) as cur:
        row = await cur.fetchone()
    return ReplyRecord.from_row(row) if row else None


async def get_user(storage: Storage, platform: Platform, user_id: str) -> UserRecord | None:
    async with storage.db.execute(
        "SELECT * FROM users WHERE platform = ? AND user_id = ?", (str(platform), user_id)
    ) as cur:
        row = await cur.fetchone()
    return UserRecord.from_row(row) if row else None


async def ensure_user(storage: Storage, user: UserRef, at: datetime) -> int:
    async with storage.database.transaction() as conn:
        return await upsert_user(conn, user, at)


async def ensure_chat(storage: Storage, chat: ChatRef, at: datetime) -> int:
    async with storage.database.transaction() as conn:
        return await upsert_chat(conn, chat, at)


async def request_statuses(storage: Storage) -> list[str]:
    async with storage.db.execute("SELECT status FROM requests ORDER BY id") as cur:
        return [r["status"] for r in await cur.fetchall()]
