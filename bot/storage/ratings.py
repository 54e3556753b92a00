"""Ratings: each person's net state per reply and source, anonymous counts, the event log, and
the per-reply tallies that /stats and the export read (tables `reactions`, `reaction_counts`,
`reaction_events`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from bot.storage.connection import Queries
from bot.storage.people import upsert_user
from bot.storage.records import RaterVerdict, RatingValue, ReactionRecord, ReplyTally, db_time
from bot.types import ChatRef, UserRef

# Per-reply tallies over the replies in `scope` (its WHERE clause is filled in by `tallies`);
# reactions are folded per user first, so a person's reaction and button count once.
_TALLY_SQL = """
WITH scope AS (
    SELECT r.id FROM replies r JOIN chats c ON c.id = r.chat_pk {where}
),
per_user AS (
    SELECT x.reply_id, x.user_pk,
           CASE WHEN SUM(x.funniness) > 0 THEN 1 WHEN SUM(x.funniness) < 0 THEN -1 ELSE 0 END AS f,
           MIN(x.appropriateness) AS a
    FROM reactions x JOIN scope ON scope.id = x.reply_id
    GROUP BY x.reply_id, x.user_pk
),
per_reply AS (
    SELECT reply_id,
           SUM(f = 1) AS funny, SUM(f = -1) AS not_funny, SUM(a < 0) AS flagged,
           SUM(f != 0 OR a != 0) AS raters
    FROM per_user GROUP BY reply_id
),
anon AS (
    SELECT n.reply_id,
           SUM(CASE WHEN n.funniness > 0 THEN n.count ELSE 0 END) AS anon_funny,
           SUM(CASE WHEN n.funniness < 0 THEN n.count ELSE 0 END) AS anon_not_funny,
           SUM(CASE WHEN n.appropriateness < 0 THEN n.count ELSE 0 END) AS anon_inappropriate,
           SUM(CASE WHEN n.funniness != 0 OR n.appropriateness != 0 THEN n.count ELSE 0 END)
               AS anon_total
    FROM reaction_counts n JOIN scope ON scope.id = n.reply_id
    GROUP BY n.reply_id
)
SELECT r.id AS reply_id, COALESCE(q.text, '') AS setup, COALESCE(u.user_id, '') AS author_id,
       r.text AS punchline, r.version,
       c.platform, c.chat_id, r.created_at,
       COALESCE(p.funny, 0) AS funny, COALESCE(p.not_funny, 0) AS not_funny,
       COALESCE(p.flagged, 0) AS flagged, COALESCE(p.raters, 0) AS raters,
       COALESCE(a.anon_funny, 0) AS anon_funny, COALESCE(a.anon_not_funny, 0) AS anon_not_funny,
       COALESCE(a.anon_inappropriate, 0) AS anon_inappropriate,
       COALESCE(a.anon_total, 0) AS anon_total
FROM scope
JOIN replies r ON r.id = scope.id
JOIN chats c ON c.id = r.chat_pk
LEFT JOIN requests q ON q.id = r.request_id
LEFT JOIN users u ON u.id = q.user_pk
LEFT JOIN per_reply p ON p.reply_id = r.id
LEFT JOIN anon a ON a.reply_id = r.id
{rated}
ORDER BY r.id
"""


async def write_reaction(
    db: aiosqlite.Connection,
    reply_id: int,
    user_pk: int,
    source: str,
    value: RatingValue,
    *,
    emojis: Sequence[str] = (),
    action: str,
    event_payload: Sequence[str],
    at: datetime,
) -> None:
    """Inside a transaction: replace one person's net state on a reply from one source and log
    the event. An empty state (no emoji, no rating) deletes the row: it counts nothing."""
    if not emojis and value.rating is None:
        await db.execute(
            "DELETE FROM reactions WHERE reply_id = ? AND user_pk = ? AND source = ?",
            (reply_id, user_pk, source),
        )
    else:
        await db.execute(
            "INSERT INTO reactions (reply_id, user_pk, source, emojis, rating, funniness, "
            "appropriateness, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (reply_id, user_pk, source) DO UPDATE SET emojis = excluded.emojis, "
            "rating = excluded.rating, funniness = excluded.funniness, "
            "appropriateness = excluded.appropriateness, updated_at = excluded.updated_at",
            (
                reply_id,
                user_pk,
                source,
                json.dumps(list(emojis), ensure_ascii=False),
                value.rating,
                value.funniness,
                value.appropriateness,
                db_time(at),
            ),
        )
    await db.execute(
        "INSERT INTO reaction_events (reply_id, user_pk, source, action, payload, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (reply_id, user_pk, source, action, json.dumps(list(event_payload), ensure_ascii=False), db_time(at)),
    )


class RatingQueries(Queries):
    """`storage.ratings`: how people rated the bot's punchlines."""

    async def get_reaction(self, reply_id: int, user: UserRef, source: str) -> ReactionRecord | None:
        async with self.db.execute(
            "SELECT x.* FROM reactions x JOIN users u ON u.id = x.user_pk "
            "WHERE x.reply_id = ? AND u.platform = ? AND u.user_id = ? AND x.source = ?",
            (reply_id, str(user.platform), user.user_id, source),
        ) as cur:
            row = await cur.fetchone()
        return ReactionRecord.from_row(row) if row else None

    async def put_reaction(
        self,
        reply_id: int,
        user: UserRef,
        source: str,
        *,
        emojis: Sequence[str],
        rating: str | None,
        funniness: int,
        appropriateness: int,
        action: str,
        event_payload: Sequence[str],
        at: datetime,
    ) -> None:
        """Replace one user's net rating state on a reply from one source, and log the event.

        An empty state (no emoji, no rating) deletes the row: a removed reaction counts nothing.
        """
        async with self.transaction() as db:
            user_pk = await upsert_user(db, user, at)
            await write_reaction(
                db,
                reply_id,
                user_pk,
                source,
                RatingValue(rating, funniness, appropriateness),
                emojis=emojis,
                action=action,
                event_payload=event_payload,
                at=at,
            )

    async def replace_counts(
        self, reply_id: int, counts: Sequence[tuple[str, int, int, int]], at: datetime
    ) -> None:
        """Replace a reply's anonymous counts with `(emoji, count, funniness, appropriateness)`."""
        async with self.transaction() as db:
            await db.execute("DELETE FROM reaction_counts WHERE reply_id = ?", (reply_id,))
            await db.executemany(
                "INSERT INTO reaction_counts (reply_id, emoji, count, funniness, appropriateness, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(reply_id, e, c, f, a, db_time(at)) for e, c, f, a in counts if c > 0],
            )
            await db.execute(
                "INSERT INTO reaction_events (reply_id, user_pk, source, action, payload, created_at) "
                "VALUES (?, NULL, 'anonymous', 'counts', ?, ?)",
                (reply_id, json.dumps({e: c for e, c, _, _ in counts}, ensure_ascii=False), db_time(at)),
            )

    async def rater_verdicts(self, since: datetime | None = None) -> list[RaterVerdict]:
        """Each person's net verdict per reply (created at or after `since`), sources folded as
        in the tallies; verdicts that say nothing on either axis are left out."""
        async with self.db.execute(
            "SELECT x.reply_id, v.user_id AS rater_id, "
            "CASE WHEN SUM(x.funniness) > 0 THEN 1 WHEN SUM(x.funniness) < 0 THEN -1 ELSE 0 END AS f, "
            "MIN(x.appropriateness) AS a "
            "FROM reactions x JOIN replies r ON r.id = x.reply_id JOIN users v ON v.id = x.user_pk "
            "WHERE r.created_at >= ? GROUP BY x.reply_id, x.user_pk HAVING f != 0 OR a != 0 "
            "ORDER BY x.reply_id, v.user_id",
            (db_time(since) if since is not None else "",),
        ) as cur:
            return [RaterVerdict.from_row(r) for r in await cur.fetchall()]

    async def tallies(
        self,
        *,
        chat: ChatRef | None = None,
        since: datetime | None = None,
        rated_only: bool = False,
        reply_id: int | None = None,
    ) -> list[ReplyTally]:
        """Per-reply rating tallies, oldest first; filtered by chat, creation time, reply."""
        where: list[str] = []
        params: list[object] = []
        if chat is not None:
            where += ["c.platform = ?", "c.chat_id = ?"]
            params += [str(chat.platform), chat.chat_id]
        if since is not None:
            where.append("r.created_at >= ?")
            params.append(db_time(since))
        if reply_id is not None:
            where.append("r.id = ?")
            params.append(reply_id)
        # Only fixed clauses are spliced in; every value travels as a parameter.
        sql = _TALLY_SQL.format(
            where="WHERE " + " AND ".join(where) if where else "",
            rated="WHERE COALESCE(p.raters, 0) > 0 OR COALESCE(a.anon_total, 0) > 0" if rated_only else "",
        )
        async with self.db.execute(sql, params) as cur:
            return [ReplyTally.from_row(row) for row in await cur.fetchall()]
