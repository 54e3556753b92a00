"""Incoming setups and the bot's punchlines (tables `requests`, `replies`)."""

from __future__ import annotations

from datetime import datetime

from bot.storage.connection import Queries
from bot.storage.people import upsert_chat, upsert_user
from bot.storage.records import ReplyRecord, db_time
from bot.types import ChatRef, MessageRef, Platform, UserRef

# Longer texts are cut before storing (the core refuses them anyway); text_chars keeps the length.
MAX_STORED_CHARS = 4096
REQUEST_STATUSES = ("received", "answered", "refused", "rate_limited", "busy", "error")

REPLY_SQL = """
SELECT r.*, c.platform, c.chat_id FROM replies r JOIN chats c ON c.id = r.chat_pk
"""


class RequestQueries(Queries):
    """`storage.requests`: what people asked and what the bot answered."""

    async def add(self, chat: ChatRef, user: UserRef, text: str, message_id: str | None, at: datetime) -> int:
        """Store an incoming setup (status 'received'); returns its id."""
        async with self.transaction() as db:
            chat_pk = await upsert_chat(db, chat, at)
            user_pk = await upsert_user(db, user, at)
            async with db.execute(
                "INSERT INTO requests (chat_pk, user_pk, message_id, text, text_chars, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (chat_pk, user_pk, message_id, text[:MAX_STORED_CHARS], len(text), db_time(at)),
            ) as cur:
                row = await cur.fetchone()
        assert row is not None
        return int(row["id"])

    async def finish(self, request_id: int, status: str, at: datetime, detail: str = "") -> None:
        """Record what became of a request."""
        if status not in REQUEST_STATUSES:
            raise ValueError(f"unknown request status {status!r}")
        async with self.transaction() as db:
            await db.execute(
                "UPDATE requests SET status = ?, detail = ?, finished_at = ? WHERE id = ?",
                (status, detail[:1000], db_time(at), request_id),
            )

    async def add_reply(
        self,
        request_id: int | None,
        chat: ChatRef,
        text: str,
        version: str,
        score: float | None,
        at: datetime,
        *,
        finish_request: bool = True,
    ) -> int:
        """Store a generated punchline (and mark its request answered, in the same transaction)."""
        async with self.transaction() as db:
            chat_pk = await upsert_chat(db, chat, at)
            async with db.execute(
                "INSERT INTO replies (request_id, chat_pk, text, version, score, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (request_id, chat_pk, text, version, score, db_time(at)),
            ) as cur:
                row = await cur.fetchone()
            if request_id is not None and finish_request:
                await db.execute(
                    "UPDATE requests SET status = 'answered', finished_at = ? WHERE id = ?",
                    (db_time(at), request_id),
                )
        assert row is not None
        return int(row["id"])

    async def set_reply_message(self, reply_id: int, ref: MessageRef, at: datetime) -> bool:
        """Link a reply to the platform message that carries it. False: unknown reply."""
        async with self.transaction() as db:
            chat_pk = await upsert_chat(db, ref.chat, at)
            # A platform message id belongs to one reply: unlink it from any earlier one
            # (e.g. a console or test run reusing ids) so the unique index holds.
            await db.execute(
                "UPDATE replies SET message_id = NULL WHERE chat_pk = ? AND message_id = ? AND id != ?",
                (chat_pk, ref.message_id, reply_id),
            )
            async with db.execute(
                "UPDATE replies SET message_id = ?, sent_at = ? WHERE id = ? AND chat_pk = ?",
                (ref.message_id, db_time(at), reply_id, chat_pk),
            ) as cur:
                return cur.rowcount == 1

    async def find_reply(self, ref: MessageRef) -> ReplyRecord | None:
        """The reply carried by a platform message, or None (not the bot's punchline)."""
        async with self.db.execute(
            REPLY_SQL + " WHERE c.platform = ? AND c.chat_id = ? AND r.message_id = ?",
            (str(ref.chat.platform), ref.chat.chat_id, ref.message_id),
        ) as cur:
            row = await cur.fetchone()
        return ReplyRecord.from_row(row) if row else None

    async def setup_of(self, reply_id: int) -> tuple[str, UserRef] | None:
        """The setup a reply answered and whose words it is; None when unknown or no longer
        kept (purged, forgotten)."""
        async with self.db.execute(
            "SELECT q.text, u.platform, u.user_id FROM replies r JOIN requests q ON q.id = r.request_id "
            "JOIN users u ON u.id = q.user_pk WHERE r.id = ?",
            (reply_id,),
        ) as cur:
            row = await cur.fetchone()
        if not row or not row["text"]:
            return None
        return str(row["text"]), UserRef(Platform(row["platform"]), str(row["user_id"]))

    async def given_for(self, chat: ChatRef, setup: str) -> list[str]:
        """Every punchline the bot gave in `chat` to `setup` (its case ignored), oldest first:
        what "another one" must not repeat."""
        async with self.db.execute(
            "SELECT r.text FROM replies r JOIN requests q ON q.id = r.request_id "
            "JOIN chats c ON c.id = r.chat_pk "
            "WHERE c.platform = ? AND c.chat_id = ? AND lower(q.text) = lower(?) ORDER BY r.id",
            (str(chat.platform), chat.chat_id, setup),
        ) as cur:
            return [str(r["text"]) for r in await cur.fetchall()]

    async def counts(self, chat: ChatRef | None = None) -> dict[str, int]:
        """How many requests ended in each status (all statuses present, zeros included)."""
        sql = "SELECT q.status, COUNT(*) AS n FROM requests q JOIN chats c ON c.id = q.chat_pk"
        params: list[object] = []
        if chat is not None:
            sql += " WHERE c.platform = ? AND c.chat_id = ?"
            params += [str(chat.platform), chat.chat_id]
        sql += " GROUP BY q.status"
        counts = dict.fromkeys(REQUEST_STATUSES, 0)
        async with self.db.execute(sql, params) as cur:
            for row in await cur.fetchall():
                counts[row["status"]] = int(row["n"])
        return counts
