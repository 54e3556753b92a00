"""Rounds, entries, votes and secret entries of joke battles (tables from
`0002_battles.sql`). Results across rounds (leaderboards, Elo, export) are in
`bot.storage.battle_results`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import aiosqlite

from bot.battles.elo import EloRating
from bot.battles.models import (
    AuthorKind,
    Battle,
    BotOutcome,
    Entry,
    Phase,
    RoundScore,
    SetupSource,
    Vote,
)
from bot.battles.scoring import same_text_key
from bot.storage.connection import Queries
from bot.storage.people import upsert_user
from bot.storage.ratings import write_reaction
from bot.storage.records import RatingValue, db_time, from_db_time, maybe_str, maybe_time
from bot.types import ChatKind, ChatRef, Platform, UserRef

_MESSAGE_COLUMNS = {"entry": "entry_message_id", "vote": "vote_message_id", "result": "result_message_id"}
_ENTRY_SQL = (
    "SELECT e.*, b.platform FROM battle_entries e JOIN battles b ON b.id = e.battle_id "
    "WHERE e.battle_id = ?"
)


def battle_from_row(row: sqlite3.Row) -> Battle:
    platform = Platform(row["platform"])
    return Battle(
        id=row["id"],
        chat=ChatRef(platform, row["chat_id"], ChatKind(row["chat_kind"]), row["chat_title"]),
        starter=UserRef(platform, row["starter_id"], row["starter_name"]),
        setup=row["setup"],
        source=SetupSource(row["source"]),
        classic=row["classic"],
        phase=Phase(row["phase"]),
        created_at=from_db_time(row["created_at"]),
        entry_deadline=from_db_time(row["entry_deadline"]),
        vote_deadline=maybe_time(row["vote_deadline"]),
        ended_at=maybe_time(row["ended_at"]),
        entry_message_id=maybe_str(row["entry_message_id"]),
        vote_message_id=maybe_str(row["vote_message_id"]),
        result_message_id=maybe_str(row["result_message_id"]),
        bot_outcome=None if row["bot_outcome"] is None else BotOutcome(row["bot_outcome"]),
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


class BattleQueries(Queries):
    """`storage.battles`: every read and write of a round in play."""

    # -- rounds ---------------------------------------------------------------------------------

    async def create(
        self,
        chat: ChatRef,
        starter: UserRef,
        setup: str,
        source: SetupSource,
        classic: str | None,
        now: datetime,
        entry_deadline: datetime,
    ) -> Battle | None:
        """A new round in its entry phase; None when the chat already has an open round."""
        try:
            async with self.transaction() as db:
                async with db.execute(
                    "INSERT INTO battles (platform, chat_id, chat_kind, chat_title, starter_id, "
                    "starter_name, setup, setup_key, source, classic, phase, created_at, "
                    "entry_deadline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'entry', ?, ?) "
                    "RETURNING id",
                    (
                        str(chat.platform), chat.chat_id, str(chat.kind), chat.title,
                        starter.user_id, starter.name, setup, same_text_key(setup), str(source),
                        classic, db_time(now), db_time(entry_deadline),
                    ),
                ) as cur:
                    row = await cur.fetchone()
        except sqlite3.IntegrityError:
            return None  # the partial unique index: one open round per chat
        assert row is not None
        return await self.get(int(row["id"]))

    async def get(self, battle_id: int) -> Battle | None:
        async with self.db.execute("SELECT * FROM battles WHERE id = ?", (battle_id,)) as cur:
            row = await cur.fetchone()
        return battle_from_row(row) if row else None

    async def open_in_chat(self, platform: Platform, chat_id: str) -> Battle | None:
        async with self.db.execute(
            "SELECT * FROM battles WHERE platform = ? AND chat_id = ? AND phase IN ('entry', 'voting')",
            (str(platform), chat_id),
        ) as cur:
            row = await cur.fetchone()
        return battle_from_row(row) if row else None

    async def open_battles(self, platforms: Iterable[Platform] | None = None) -> list[Battle]:
        """Every round in an open phase, oldest first (optionally only on some platforms)."""
        async with self.db.execute(
            "SELECT * FROM battles WHERE phase IN ('entry', 'voting') ORDER BY id"
        ) as cur:
            battles = [battle_from_row(r) for r in await cur.fetchall()]
        if platforms is not None:
            wanted = set(platforms)
            battles = [b for b in battles if b.chat.platform in wanted]
        return battles

    async def by_message(self, platform: Platform, chat_id: str, message_id: str) -> Battle | None:
        """The round whose announcement, ballot or results is this message."""
        async with self.db.execute(
            "SELECT * FROM battles WHERE platform = ? AND chat_id = ? "
            "AND ? IN (entry_message_id, vote_message_id, result_message_id) "
            "ORDER BY id DESC LIMIT 1",
            (str(platform), chat_id, message_id),
        ) as cur:
            row = await cur.fetchone()
        return battle_from_row(row) if row else None

    async def set_message(self, battle_id: int, which: str, message_id: str | None) -> None:
        """Remember the platform id of the announcement ('entry'), ballot ('vote') or results."""
        column = _MESSAGE_COLUMNS[which]  # a fixed column name, never user input
        async with self.transaction() as db:
            await db.execute(f"UPDATE battles SET {column} = ? WHERE id = ?", (message_id, battle_id))

    async def recent_setup_keys(self, platform: Platform, chat_id: str, limit: int) -> set[str]:
        """Normalised setups of the chat's last `limit` rounds."""
        if limit <= 0:
            return set()
        async with self.db.execute(
            "SELECT setup_key FROM battles WHERE platform = ? AND chat_id = ? ORDER BY id DESC LIMIT ?",
            (str(platform), chat_id, limit),
        ) as cur:
            return {str(r["setup_key"]) for r in await cur.fetchall()}

    # -- phase changes --------------------------------------------------------------------------

    async def open_voting(
        self, battle_id: int, vote_deadline: datetime, positions: Mapping[int, int]
    ) -> bool:
        """Entry → voting with the ballot order; False if the round was not in its entry phase."""
        async with self.transaction() as db:
            async with db.execute(
                "UPDATE battles SET phase = 'voting', vote_deadline = ? WHERE id = ? AND phase = 'entry'",
                (db_time(vote_deadline), battle_id),
            ) as cur:
                if cur.rowcount != 1:
                    return False
            await db.executemany(
                "UPDATE battle_entries SET position = ? WHERE id = ? AND battle_id = ?",
                [(pos, entry_id, battle_id) for entry_id, pos in positions.items()],
            )
            await db.execute("DELETE FROM battle_pending_entries WHERE battle_id = ?", (battle_id,))
        return True

    async def end(self, battle_id: int, phase: Phase, now: datetime, ended_by: str | None = None) -> bool:
        """An open round → cancelled / too_few; False if it was no longer open."""
        if phase not in (Phase.CANCELLED, Phase.TOO_FEW):
            raise ValueError(f"use finish() for {phase}")
        async with self.transaction() as db:
            async with db.execute(
                "UPDATE battles SET phase = ?, ended_at = ?, ended_by = ? "
                "WHERE id = ? AND phase IN ('entry', 'voting')",
                (str(phase), db_time(now), ended_by, battle_id),
            ) as cur:
                changed = cur.rowcount == 1
            await db.execute("DELETE FROM battle_pending_entries WHERE battle_id = ?", (battle_id,))
        return changed

    async def finish(
        self,
        battle_id: int,
        now: datetime,
        score: RoundScore,
        outcome: BotOutcome | None,
        elo: Sequence[EloRating] = (),
    ) -> bool:
        """Voting → finished, with every entry's votes and points and the Elo updates, at once."""
        async with self.transaction() as db:
            async with db.execute(
                "UPDATE battles SET phase = 'finished', ended_at = ?, total_votes = ?, "
                "bot_outcome = ? WHERE id = ? AND phase = 'voting'",
                (db_time(now), score.total_votes, None if outcome is None else str(outcome), battle_id),
            ) as cur:
                if cur.rowcount != 1:
                    return False
            await db.executemany(
                "UPDATE battle_entries SET votes = ?, points = ?, won = ?, identical = ? "
                "WHERE id = ? AND battle_id = ?",
                [
                    (s.votes, s.points, int(s.won), int(s.identical), s.entry_id, battle_id)
                    for s in score.scores
                ],
            )
            await db.executemany(
                "INSERT INTO battle_elo (version, rating, games, wins, draws, losses, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (version) DO UPDATE SET "
                "rating = excluded.rating, games = excluded.games, wins = excluded.wins, "
                "draws = excluded.draws, losses = excluded.losses, updated_at = excluded.updated_at",
                [(r.version, r.rating, r.games, r.wins, r.draws, r.losses, db_time(now)) for r in elo],
            )
        return True

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
                db, replies[chosen], user_pk, source, bot_vote, action="rate", event_payload=payload,
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
                r["battle_id"], UserRef(Platform(r["platform"]), r["voter_id"], r["voter_name"]),
                r["entry_id"], from_db_time(r["created_at"]), from_db_time(r["updated_at"]),
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
