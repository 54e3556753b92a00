"""Rounds of joke battles: their phases, deadlines and messages (table `battles`).

Entries, votes and secret entries are in `bot.storage.battle_entries`; results across rounds
(leaderboards, Elo, export) in `bot.storage.battle_results`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from bot.battles.elo import EloRating
from bot.battles.models import (
    Battle,
    BotOutcome,
    Phase,
    RoundScore,
    SetupSource,
    new_entry_token,
)
from bot.storage.connection import Queries
from bot.storage.records import db_time, from_db_time, maybe_str, maybe_time
from bot.types import ChatKind, ChatRef, Platform, UserRef
from model.text import same_text_key

_MESSAGE_COLUMNS = {"entry": "entry_message_id", "vote": "vote_message_id", "result": "result_message_id"}


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
        entry_token=row["entry_token"],
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
                    "entry_deadline, entry_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'entry', ?, ?, ?) "
                    "RETURNING id",
                    (
                        str(chat.platform),
                        chat.chat_id,
                        str(chat.kind),
                        chat.title,
                        starter.user_id,
                        starter.name,
                        setup,
                        same_text_key(setup),
                        str(source),
                        classic,
                        db_time(now),
                        db_time(entry_deadline),
                        new_entry_token(),
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

    async def by_token(self, token: str) -> Battle | None:
        """The round a private deep link names."""
        async with self.db.execute("SELECT * FROM battles WHERE entry_token = ?", (token,)) as cur:
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

    async def unannounced_results(self, since: datetime) -> list[Battle]:
        """Rounds finished since `since` whose results were never posted."""
        async with self.db.execute(
            "SELECT * FROM battles WHERE phase = 'finished' AND result_message_id IS NULL AND ended_at >= ? ORDER BY id",
            (db_time(since),),
        ) as cur:
            return [battle_from_row(r) for r in await cur.fetchall()]

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
