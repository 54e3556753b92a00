"""Adapter versions and their history (tables `adapter_versions`, `version_events`), and the
games between versions that battles produced (for Bradley–Terry)."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from bot.storage.connection import Queries
from bot.storage.records import db_time, from_db_time

CHALLENGER, CURRENT, FORMER, RETIRED = "challenger", "current", "former", "retired"
LAST_REFRESH_KEY = "refresh.last_at"  # in `meta`: when `punchline refresh` last used the feedback


@dataclass(frozen=True, slots=True)
class VersionRecord:
    version: str
    path: str
    parent: str | None
    status: str
    registered_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewFeedback:
    """Feedback given after an instant: people's ratings of replies and battle votes."""

    ratings: int
    votes: int

    @property
    def total(self) -> int:
        return self.ratings + self.votes


@dataclass(frozen=True, slots=True)
class VersionEvent:
    version: str
    event: str
    actor: str
    reason: str
    at: datetime


class VersionQueries(Queries):
    """`storage.versions`: the registry of adapter versions and its history. Every method
    raises only what the database raises (`aiosqlite.Error`)."""

    async def register(self, version: str, path: str, parent: str | None, actor: str, at: datetime) -> bool:
        """A challenger; False when the version is known already (nothing changes)."""
        now = db_time(at)
        async with self.transaction() as db:
            async with db.execute(
                "INSERT INTO adapter_versions (version, path, parent, status, registered_at, updated_at) "
                "VALUES (?, ?, ?, 'challenger', ?, ?) ON CONFLICT (version) DO NOTHING",
                (version, path, parent, now, now),
            ) as cur:
                added = cur.rowcount == 1
            if added:
                await _event(db, version, "registered", actor, f"aligned from {parent or 'nothing'}", now)
        return added

    async def relocate(self, version: str, path: str, at: datetime) -> None:
        """The directory `version` is loaded from now (a /reload from another place)."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE adapter_versions SET path = ?, updated_at = ? WHERE version = ?",
                (path, db_time(at), version),
            )

    async def get(self, version: str) -> VersionRecord | None:
        """The registry's row for `version`, None when unknown."""
        async with self.db.execute("SELECT * FROM adapter_versions WHERE version = ?", (version,)) as cur:
            row = await cur.fetchone()
        return _record(row) if row else None

    async def all(self) -> list[VersionRecord]:
        """Every registered version, oldest first."""
        async with self.db.execute("SELECT * FROM adapter_versions ORDER BY registered_at, version") as cur:
            return [_record(r) for r in await cur.fetchall()]

    async def current(self) -> VersionRecord | None:
        """The version recorded as serving everyone (None before the first was recorded)."""
        async with self.db.execute("SELECT * FROM adapter_versions WHERE status = 'current'") as cur:
            row = await cur.fetchone()
        return _record(row) if row else None

    async def promote(
        self, version: str, previous: str | None, actor: str, reason: str, at: datetime
    ) -> None:
        """`version` (registered already: otherwise no version is left current) serves
        everyone now; the previous current one becomes former."""
        now = db_time(at)
        async with self.transaction() as db:
            await db.execute(
                "UPDATE adapter_versions SET status = 'former', updated_at = ? WHERE status = 'current'",
                (now,),
            )
            await db.execute(
                "UPDATE adapter_versions SET status = 'current', updated_at = ? WHERE version = ?",
                (now, version),
            )
            await _event(
                db, version, "promoted", actor, reason + (f" (was {previous})" if previous else ""), now
            )

    async def retire(self, version: str, actor: str, reason: str, at: datetime) -> None:
        """`version` is no longer served or judged; recorded with why and by whom."""
        now = db_time(at)
        async with self.transaction() as db:
            await db.execute(
                "UPDATE adapter_versions SET status = 'retired', updated_at = ? WHERE version = ?",
                (now, version),
            )
            await _event(db, version, "retired", actor, reason, now)

    async def note(self, version: str, event: str, actor: str, reason: str, at: datetime) -> None:
        """A 'loaded' or 'failed' event (serving a challenger worked or did not)."""
        async with self.transaction() as db:
            await _event(db, version, event, actor, reason, db_time(at))

    async def events(self, version: str | None = None) -> list[VersionEvent]:
        """The history of one version (None: of all), oldest first."""
        sql = "SELECT * FROM version_events" + (" WHERE version = ?" if version else "") + " ORDER BY id"
        async with self.db.execute(sql, (version,) if version else ()) as cur:
            return [
                VersionEvent(r["version"], r["event"], r["actor"], r["reason"], from_db_time(r["at"]))
                for r in await cur.fetchall()
            ]

    async def new_feedback(self, since: datetime | None) -> NewFeedback:
        """Ratings set and votes cast in finished rounds after `since` (None: ever). A rating
        changed later counts again: it is new information."""
        after = db_time(since) if since else ""
        ratings = await self._count(
            "SELECT count(*) FROM reactions WHERE source != 'battle' AND updated_at > ?", after
        )
        votes = await self._count(
            "SELECT count(*) FROM battle_votes v JOIN battles b ON b.id = v.battle_id "
            "WHERE b.phase = 'finished' AND v.updated_at > ?",
            after,
        )
        return NewFeedback(ratings, votes)

    async def _count(self, sql: str, after: str) -> int:
        async with self.db.execute(sql, (after,)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def last_refresh(self) -> datetime | None:
        """When `punchline refresh` last used the feedback (None: never)."""
        async with self.db.execute("SELECT value FROM meta WHERE key = ?", (LAST_REFRESH_KEY,)) as cur:
            row = await cur.fetchone()
        return from_db_time(row["value"]) if row else None

    async def mark_refresh(self, at: datetime) -> None:
        """The feedback up to `at` was used (the next refresh counts what came after)."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (LAST_REFRESH_KEY, db_time(at)),
            )

    async def round_points(self) -> list[dict[str, int]]:
        """Per finished round where two or more bot versions played: version -> points."""
        async with self.db.execute(
            "SELECT e.battle_id, e.version, e.points FROM battle_entries e JOIN battles b ON b.id = e.battle_id "
            "WHERE b.phase = 'finished' AND e.kind = 'bot' ORDER BY e.battle_id"
        ) as cur:
            rows = await cur.fetchall()
        rounds: dict[int, dict[str, int]] = defaultdict(dict)
        for r in rows:
            rounds[int(r["battle_id"])][str(r["version"])] = int(r["points"] or 0)
        return [points for points in rounds.values() if len(points) >= 2]


async def _event(
    db: aiosqlite.Connection, version: str, event: str, actor: str, reason: str, at: str
) -> None:
    await db.execute(
        "INSERT INTO version_events (version, event, actor, reason, at) VALUES (?, ?, ?, ?, ?)",
        (version, event, actor, reason, at),
    )


def _record(row: sqlite3.Row) -> VersionRecord:
    return VersionRecord(
        row["version"],
        row["path"],
        row["parent"],
        row["status"],
        from_db_time(row["registered_at"]),
        from_db_time(row["updated_at"]),
    )
