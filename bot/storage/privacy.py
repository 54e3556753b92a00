"""People's control of their data: training choices, forgetting a person, the retention purge,
the export's salt (docs/DESIGN.md, decision 10). Which columns hold a person is
`bot.storage.personal`.

`forget` and `purge` each run in one transaction, so a crash leaves all or nothing, and both are
idempotent: a second run finds nothing left to remove.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from bot.storage.connection import Queries
from bot.storage.people import upsert_user
from bot.storage.personal import FORGOTTEN_PREFIX
from bot.storage.records import db_time
from bot.types import Platform, UserRef

TRAINING_IN, TRAINING_OUT = "in", "out"
SALT_KEY = "export_salt"
SCORED = ("finished",)  # rounds whose entries carry points others' standings depend on


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class PrivacyQueries(Queries):
    """`storage.privacy`."""

    async def training_choice(self, user: UserRef) -> str | None:
        """'in', 'out', or None when the person never chose (the setting's default applies)."""
        async with self.db.execute(
            "SELECT training FROM users WHERE platform = ? AND user_id = ?",
            (str(user.platform), user.user_id),
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else row["training"]

    async def choices(self) -> dict[tuple[str, str], str]:
        """Everyone who chose: (platform, user id) -> 'in' / 'out'."""
        async with self.db.execute(
            "SELECT platform, user_id, training FROM users WHERE training IS NOT NULL"
        ) as cur:
            return {(r["platform"], r["user_id"]): r["training"] for r in await cur.fetchall()}

    async def set_training(self, user: UserRef, choice: str, at: datetime) -> None:
        """Record /optin ('in') or /optout ('out')."""
        if choice not in (TRAINING_IN, TRAINING_OUT):
            raise ValueError(f"training choice must be {TRAINING_IN!r} or {TRAINING_OUT!r}")
        async with self.transaction() as db:
            pk = await upsert_user(db, user, at)
            await db.execute("UPDATE users SET training = ? WHERE id = ?", (choice, pk))

    async def salt(self) -> str:
        """The export's salt kept in the database, created on first use."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (SALT_KEY, secrets.token_hex(16)),
            )
            async with db.execute("SELECT value FROM meta WHERE key = ?", (SALT_KEY,)) as cur:
                row = await cur.fetchone()
        assert row is not None
        return str(row["value"])

    # -- forgetting -----------------------------------------------------------------------------

    async def forget(self, platform: Platform, user_id: str) -> dict[str, int]:
        """Remove everything held about one person; what was removed, by kind (all zero when
        nothing was held).

        Their setups go with the punchlines answering them (and those punchlines' ratings),
        their private chats with everything in them; their ratings, votes, pending entries and
        their user row go. An entry of a finished round stays, anonymous, so the other players'
        points and the leaderboard stay true; entries of open or unscored rounds go (with the
        votes for them).
        """
        counts: dict[str, int] = {}
        async with self.transaction() as db:
            user_pk = await _user_pk(db, platform, user_id)
            if user_pk is not None:
                counts.update(await _forget_requests(db, user_pk))
                counts["ratings"] = await _delete(db, "DELETE FROM reactions WHERE user_pk = ?", user_pk)
                await _delete(db, "DELETE FROM reaction_events WHERE user_pk = ?", user_pk)
                await _delete(db, "DELETE FROM users WHERE id = ?", user_pk)
            counts.update(await _forget_in_battles(db, platform, user_id))
        return {k: v for k, v in counts.items() if v}

    # -- retention ------------------------------------------------------------------------------

    async def purge(self, before: datetime) -> dict[str, int]:
        """Blank setup texts and display names older than `before` (ratings and battle results
        stay, anonymous); counts by kind."""
        cutoff = db_time(before)
        statements = {
            "setups": "UPDATE requests SET text = '', text_chars = 0 WHERE created_at < ? AND text != ''",
            "names": "UPDATE users SET name = '' WHERE last_seen < ? AND name != ''",
            "private chat titles": (
                "UPDATE chats SET title = '' WHERE kind = 'private' AND updated_at < ? AND title != ''"
            ),
            "battle names": (
                "UPDATE battle_entries SET user_name = '' WHERE created_at < ? AND user_name != ''"
            ),
            "voter names": "UPDATE battle_votes SET voter_name = '' WHERE created_at < ? AND voter_name != ''",
            "starter names": (
                "UPDATE battles SET starter_name = '' WHERE created_at < ? AND starter_name != ''"
            ),
        }
        counts: dict[str, int] = {}
        async with self.transaction() as db:
            for what, sql in statements.items():
                counts[what] = await _delete(db, sql, cutoff)
        return counts


async def _user_pk(db: aiosqlite.Connection, platform: Platform, user_id: str) -> int | None:
    async with db.execute(
        "SELECT id FROM users WHERE platform = ? AND user_id = ?", (str(platform), user_id)
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else int(row["id"])


async def _delete(db: aiosqlite.Connection, sql: str, *params: object) -> int:
    async with db.execute(sql, params) as cur:
        return max(0, cur.rowcount)


async def _ids(db: aiosqlite.Connection, sql: str, params: Sequence[object]) -> list[int]:
    async with db.execute(sql, tuple(params)) as cur:
        return [int(r[0]) for r in await cur.fetchall()]


async def _forget_requests(db: aiosqlite.Connection, user_pk: int) -> dict[str, int]:
    """Their setups, the punchlines to them, and everything in their private chats."""
    private = await _ids(
        db,
        "SELECT DISTINCT c.id FROM requests q JOIN chats c ON c.id = q.chat_pk "
        "WHERE q.user_pk = ? AND c.kind = 'private'",
        [user_pk],
    )
    requests = await _ids(db, "SELECT id FROM requests WHERE user_pk = ?", [user_pk])
    if private:
        requests += await _ids(
            db, f"SELECT id FROM requests WHERE chat_pk IN ({_marks(len(private))})", private
        )
    requests = sorted(set(requests))
    replies: list[int] = []
    if requests:
        replies = await _ids(
            db, f"SELECT id FROM replies WHERE request_id IN ({_marks(len(requests))})", requests
        )
    if private:
        replies += await _ids(
            db, f"SELECT id FROM replies WHERE chat_pk IN ({_marks(len(private))})", private
        )
    replies = sorted(set(replies))
    if replies:  # their ratings cascade (reactions, counts, events)
        await db.execute(f"DELETE FROM replies WHERE id IN ({_marks(len(replies))})", replies)
    if requests:
        await db.execute(f"DELETE FROM requests WHERE id IN ({_marks(len(requests))})", requests)
    if private:
        await db.execute(f"DELETE FROM chats WHERE id IN ({_marks(len(private))})", private)
    return {"setups": len(requests), "punchlines": len(replies), "private chats": len(private)}


async def _forget_in_battles(db: aiosqlite.Connection, platform: Platform, user_id: str) -> dict[str, int]:
    p = str(platform)
    in_platform = "battle_id IN (SELECT id FROM battles WHERE platform = ?)"
    scored = await _ids(
        db,
        f"SELECT e.id FROM battle_entries e JOIN battles b ON b.id = e.battle_id "
        f"WHERE b.platform = ? AND e.kind = 'person' AND e.user_id = ? AND b.phase IN ({_marks(len(SCORED))})",
        [p, user_id, *SCORED],
    )
    for entry_id in scored:
        await db.execute(
            "UPDATE battle_entries SET user_id = ?, user_name = '' WHERE id = ?",
            (f"{FORGOTTEN_PREFIX}{entry_id}", entry_id),
        )
    dropped = await _ids(
        db,
        f"SELECT id FROM battle_entries WHERE kind = 'person' AND user_id = ? AND {in_platform}",
        [user_id, p],
    )
    if dropped:
        marks = _marks(len(dropped))
        await db.execute(f"DELETE FROM battle_votes WHERE entry_id IN ({marks})", dropped)
        await db.execute(f"DELETE FROM battle_entries WHERE id IN ({marks})", dropped)
    votes = await _delete(db, f"DELETE FROM battle_votes WHERE voter_id = ? AND {in_platform}", user_id, p)
    pending = await _delete(
        db, "DELETE FROM battle_pending_entries WHERE platform = ? AND user_id = ?", p, user_id
    )
    started = await _delete(
        db,
        "UPDATE battles SET starter_id = '', starter_name = '' WHERE platform = ? AND starter_id = ?",
        p,
        user_id,
    )
    await db.execute("UPDATE battles SET ended_by = NULL WHERE platform = ? AND ended_by = ?", (p, user_id))
    return {
        "battle entries removed": len(dropped),
        "battle entries made anonymous": len(scored),
        "votes": votes,
        "secret entries waiting": pending,
        "battles started": started,
    }
