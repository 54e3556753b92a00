"""Entries, votes and secret entries of joke battles (tables `battle_entries`, `battle_votes`,
`battle_pending_entries`). Every write checks the round's phase in the same statement, so an
entry or a vote racing a deadline cannot slip in after the phase changed."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import aiosqlite

from bot.battles.models import AuthorKind, Entry, EntryScore, Vote
from bot.storage.connection import Queries
from bot.storage.people import upsert_user
from bot.storage.ratings import write_reaction
from bot.storage.records import RatingValue, db_time, from_db_time
from bot.types import Platform, UserRef

_ENTRY_SQL = (
    "SELECT e.*, b.platform FROM battle_entries e JOIN battles b ON b.id = e.battle_id WHERE e.battle_id = ?"
)


def entry_from_row(row: sqlite3.Row) -> Entry:
    kind = AuthorKind(row["kind"])
    author = None
    if kind is AuthorKind.PERSON:
        author = UserRef(Platform(row["platform"]), row["user_id"], row["user_name"])
    return Entry(
        id=row["id"],
        battle_id=row["battle_id"],
        kind=kind,
        text=row["text"],
        created_at=from_db_time(row["created_at"]),
        updated_at=from_db_time(row["updated_at"]),
        author=author,
        version=row["version"],
        reply_id=row["reply_id"],
        position=row["position"],
    )


class BattleEntryQueries(Queries):
    """`storage.battle_entries`: what people and the bot entered, and who voted for what."""

    # -- entries --------------------------------------------------------------------------------

    async def put_person_entry(self, battle_id: int, user: UserRef, text: str, now: datetime) -> bool:
        """Store or replace a person's entry while the round takes entries.

        Returns True when it replaced an earlier entry. The phase is checked in the same
        statement, so an entry racing the deadline cannot slip in after the ballot is made.
        Raises LookupError when the round no longer takes entries.
        """
        async with self.transaction() as db:
            async with db.execute(
                "SELECT 1 FROM battle_entries WHERE battle_id = ? AND kind = 'person' AND user_id = ?",
                (battle_id, user.user_id),
            ) as cur:
                existed = await cur.fetchone() is not None
            async with db.execute(
                "INSERT INTO battle_entries (battle_id, kind, user_id, user_name, text, "
                "created_at, updated_at) SELECT ?, 'person', ?, ?, ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM battles WHERE id = ? AND phase = 'entry') "
                "ON CONFLICT (battle_id, user_id) WHERE kind = 'person' DO UPDATE SET "
                "text = excluded.text, user_name = excluded.user_name, "
                "updated_at = excluded.updated_at",
                (battle_id, user.user_id, user.name, text, db_time(now), db_time(now), battle_id),
            ) as cur:
                if cur.rowcount != 1:
                    raise LookupError(f"battle {battle_id} is not taking entries")
        return existed

    async def add_machine_entry(
        self,
        battle_id: int,
        kind: AuthorKind,
        text: str,
        now: datetime,
        version: str | None = None,
        reply_id: int | None = None,
    ) -> bool:
        """The bot's entry (one per version) or the classic; False when already there or the
        round no longer takes entries."""
        if kind is AuthorKind.PERSON:
            raise ValueError("people's entries go through put_person_entry")
        async with self.transaction() as db:
            async with db.execute(
                "INSERT INTO battle_entries (battle_id, kind, version, text, reply_id, "
                "created_at, updated_at) SELECT ?, ?, ?, ?, ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM battles WHERE id = ? AND phase = 'entry') "
                "ON CONFLICT DO NOTHING",
                (battle_id, str(kind), version, text, reply_id, db_time(now), db_time(now), battle_id),
            ) as cur:
                return cur.rowcount == 1

    async def entries(self, battle_id: int) -> list[Entry]:
        """The round's entries: by ballot position once voting opened, else by id."""
        async with self.db.execute(
            _ENTRY_SQL + " ORDER BY COALESCE(e.position, 0), e.id", (battle_id,)
        ) as cur:
            return [entry_from_row(r) for r in await cur.fetchall()]

    async def scores(self, battle_id: int) -> list[EntryScore]:
        """The stored outcome of every entry of a finished round."""
        async with self.db.execute(
            "SELECT id, votes, points, won, identical FROM battle_entries WHERE battle_id = ? AND votes IS NOT NULL",
            (battle_id,),
        ) as cur:
            return [
                EntryScore(
                    r["id"], int(r["votes"]), int(r["points"] or 0), bool(r["won"]), bool(r["identical"])
                )
                for r in await cur.fetchall()
            ]

    # -- votes ----------------------------------------------------------------------------------

    async def put_vote(
        self,
        battle_id: int,
        voter: UserRef,
        entry_id: int,
        now: datetime,
        *,
        bot_vote: RatingValue,
        rating_source: str,
    ) -> int | None:
        """Cast or change a vote while the round is voting; returns the entry id voted before.

        A vote for a bot entry is also a rating of that punchline (`bot_vote`, from
        `rating_source`), and moving the vote away clears it, in the same transaction as the
        vote, so a vote and its rating never disagree. Raises LookupError when the round is not
        voting any more.
        """
        async with self.transaction() as db:
            async with db.execute(
                "SELECT entry_id FROM battle_votes WHERE battle_id = ? AND voter_id = ?",
                (battle_id, voter.user_id),
            ) as cur:
                row = await cur.fetchone()
            before = None if row is None else int(row["entry_id"])
            async with db.execute(
                "INSERT INTO battle_votes (battle_id, voter_id, voter_name, entry_id, created_at, "
                "updated_at) SELECT ?, ?, ?, ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM battles WHERE id = ? AND phase = 'voting') "
                "ON CONFLICT (battle_id, voter_id) DO UPDATE SET entry_id = excluded.entry_id, "
                "voter_name = excluded.voter_name, updated_at = excluded.updated_at",
                (battle_id, voter.user_id, voter.name, entry_id, db_time(now), db_time(now), battle_id),
            ) as cur:
                if cur.rowcount != 1:
                    raise LookupError(f"battle {battle_id} is not voting")
            if before != entry_id:
                await self._rate_bot_entries(db, voter, before, entry_id, bot_vote, rating_source, now)
        return before

    @staticmethod
    async def _rate_bot_entries(
        db: aiosqlite.Connection,
        voter: UserRef,
        before: int | None,
        chosen: int,
        bot_vote: RatingValue,
        source: str,
        now: datetime,
    ) -> None:
        replies = {}
        async with db.execute(
            "SELECT id, reply_id FROM battle_entries WHERE id IN (?, ?) AND kind = 'bot' "
            "AND reply_id IS NOT NULL",
            (before, chosen),
        ) as cur:
            replies = {int(r["id"]): int(r["reply_id"]) for r in await cur.fetchall()}
        if not replies:
            return
        user_pk = await upsert_user(db, voter, now)
        if before in replies:
            cleared = RatingValue(None, 0, 0)
            await write_reaction(
                db, replies[before], user_pk, source, cleared, action="clear", event_payload=[], at=now
            )
        if chosen in replies:
            payload = [bot_vote.rating] if bot_vote.rating else []
            await write_reaction(
                db,
                replies[chosen],
                user_pk,
                source,
                bot_vote,
                action="rate",
                event_payload=payload,
                at=now,
            )

    async def votes(self, battle_id: int) -> list[Vote]:
        async with self.db.execute(
            "SELECT v.*, b.platform FROM battle_votes v JOIN battles b ON b.id = v.battle_id "
            "WHERE v.battle_id = ? ORDER BY v.created_at, v.voter_id",
            (battle_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [
            Vote(
                r["battle_id"],
                UserRef(Platform(r["platform"]), r["voter_id"], r["voter_name"]),
                r["entry_id"],
                from_db_time(r["created_at"]),
                from_db_time(r["updated_at"]),
            )
            for r in rows
        ]

    async def vote_counts(self, battle_id: int) -> dict[int, int]:
        async with self.db.execute(
            "SELECT entry_id, COUNT(*) AS n FROM battle_votes WHERE battle_id = ? GROUP BY entry_id",
            (battle_id,),
        ) as cur:
            return {int(r["entry_id"]): int(r["n"]) for r in await cur.fetchall()}

    # -- secret entries by private message -------------------------------------------------------

    async def set_pending(self, platform: Platform, user_id: str, battle_id: int, now: datetime) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO battle_pending_entries (platform, user_id, battle_id, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (platform, user_id) DO UPDATE SET "
                "battle_id = excluded.battle_id, created_at = excluded.created_at",
                (str(platform), user_id, battle_id, db_time(now)),
            )

    async def pending(self, platform: Platform, user_id: str) -> int | None:
        """The round a person's next private message is meant for."""
        async with self.db.execute(
            "SELECT battle_id FROM battle_pending_entries WHERE platform = ? AND user_id = ?",
            (str(platform), user_id),
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else int(row["battle_id"])

    async def clear_pending(self, platform: Platform, user_id: str) -> None:
        async with self.transaction() as db:
            await db.execute(
                "DELETE FROM battle_pending_entries WHERE platform = ? AND user_id = ?",
                (str(platform), user_id),
            )
