"""Battle queries on the bot's SQLite database (tables from `bot/migrations/0002_battles.sql`).

Reads use `storage.db`; writes go through `storage.transaction()` so they commit at once and
never interleave with another coroutine's half-done writes. Every query is parameterised.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

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
from bot.storage import Storage
from bot.types import ChatKind, ChatRef, Platform, UserRef


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat()


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


_BATTLE_COLUMNS = (
    "id, platform, chat_id, chat_kind, chat_title, starter_id, starter_name, setup, source, "
    "classic, phase, created_at, entry_deadline, vote_deadline, ended_at, entry_message_id, "
    "vote_message_id, result_message_id, bot_outcome"
)
_ENTRY_COLUMNS = (
    "e.id, e.battle_id, e.kind, e.text, e.created_at, e.updated_at, e.user_id, e.user_name, "
    "e.version, e.reply_id, e.position, b.platform"
)


def _battle(row: Sequence[object]) -> Battle:
    platform = Platform(str(row[1]))
    return Battle(
        id=int(row[0]),  # type: ignore[arg-type]
        chat=ChatRef(platform, str(row[2]), ChatKind(str(row[3])), str(row[4])),
        starter=UserRef(platform, str(row[5]), str(row[6])),
        setup=str(row[7]),
        source=SetupSource(str(row[8])),
        classic=None if row[9] is None else str(row[9]),
        phase=Phase(str(row[10])),
        created_at=_dt(row[11]),  # type: ignore[arg-type]
        entry_deadline=_dt(row[12]),  # type: ignore[arg-type]
        vote_deadline=_dt(row[13]),  # type: ignore[arg-type]
        ended_at=_dt(row[14]),  # type: ignore[arg-type]
        entry_message_id=None if row[15] is None else str(row[15]),
        vote_message_id=None if row[16] is None else str(row[16]),
        result_message_id=None if row[17] is None else str(row[17]),
        bot_outcome=None if row[18] is None else BotOutcome(str(row[18])),
    )


def _entry(row: Sequence[object]) -> Entry:
    kind = AuthorKind(str(row[2]))
    author = None
    if kind is AuthorKind.PERSON:
        author = UserRef(Platform(str(row[11])), str(row[6]), str(row[7]))
    return Entry(
        id=int(row[0]),  # type: ignore[arg-type]
        battle_id=int(row[1]),  # type: ignore[arg-type]
        kind=kind,
        text=str(row[3]),
        created_at=_dt(row[4]),  # type: ignore[arg-type]
        updated_at=_dt(row[5]),  # type: ignore[arg-type]
        author=author,
        version=None if row[8] is None else str(row[8]),
        reply_id=None if row[9] is None else int(row[9]),  # type: ignore[arg-type]
        position=None if row[10] is None else int(row[10]),  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class LeaderRow:
    """One player's totals in a chat; `user_id` None is the bot (all versions together)."""

    user_id: str | None
    name: str
    points: int
    wins: int
    rounds: int


@dataclass(frozen=True, slots=True)
class BotTally:
    """Finished rounds in a chat where people and the bot both played and votes were cast."""

    people: int
    bot: int
    ties: int

    @property
    def rounds(self) -> int:
        return self.people + self.bot + self.ties


@dataclass(frozen=True, slots=True)
class ExportEntryRow:
    """One entry of a finished round, as `punchline ratings export` writes it."""

    battle_id: int
    platform: Platform
    chat_id: str
    setup: str
    setup_source: SetupSource
    finished_at: datetime
    entry_id: int
    author_kind: AuthorKind
    author_id: str | None  # people only
    author_name: str
    version: str | None  # the bot's adapter version
    text: str
    reply_id: int | None
    votes: int
    points: int
    won: bool
    identical: bool


class BattleStore:
    """Every battle read and write."""

    def __init__(self, storage: Storage):
        self.storage = storage

    @property
    def db(self) -> aiosqlite.Connection:
        return self.storage.db

    # -- battles ------------------------------------------------------------------------------

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
            async with self.storage.transaction() as db:
                async with db.execute(
                    "INSERT INTO battles (platform, chat_id, chat_kind, chat_title, starter_id, "
                    "starter_name, setup, setup_key, source, classic, phase, created_at, "
                    "entry_deadline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'entry', ?, ?) "
                    "RETURNING id",
                    (
                        str(chat.platform), chat.chat_id, str(chat.kind), chat.title,
                        starter.user_id, starter.name, setup, same_text_key(setup), str(source),
                        classic, _ts(now), _ts(entry_deadline),
                    ),
                ) as cur:
                    row = await cur.fetchone()
        except sqlite3.IntegrityError:
            return None  # the partial unique index: one open round per chat
        assert row is not None
        return await self.get(int(row[0]))

    async def get(self, battle_id: int) -> Battle | None:
        async with self.db.execute(
            f"SELECT {_BATTLE_COLUMNS} FROM battles WHERE id = ?", (battle_id,)
        ) as cur:
            row = await cur.fetchone()
        return _battle(row) if row else None

    async def open_in_chat(self, platform: Platform, chat_id: str) -> Battle | None:
        async with self.db.execute(
            f"SELECT {_BATTLE_COLUMNS} FROM battles WHERE platform = ? AND chat_id = ? "
            "AND phase IN ('entry', 'voting')",
            (str(platform), chat_id),
        ) as cur:
            row = await cur.fetchone()
        return _battle(row) if row else None

    async def open_battles(self, platforms: Iterable[Platform] | None = None) -> list[Battle]:
        """Every round in an open phase, oldest first (optionally only on some platforms)."""
        async with self.db.execute(
            f"SELECT {_BATTLE_COLUMNS} FROM battles WHERE phase IN ('entry', 'voting') ORDER BY id"
        ) as cur:
            rows = await cur.fetchall()
        battles = [_battle(r) for r in rows]
        if platforms is not None:
            wanted = set(platforms)
            battles = [b for b in battles if b.chat.platform in wanted]
        return battles

    async def by_message(self, platform: Platform, chat_id: str, message_id: str) -> Battle | None:
        """The round whose announcement, ballot or results is this message."""
        async with self.db.execute(
            f"SELECT {_BATTLE_COLUMNS} FROM battles WHERE platform = ? AND chat_id = ? "
            "AND ? IN (entry_message_id, vote_message_id, result_message_id) "
            "ORDER BY id DESC LIMIT 1",
            (str(platform), chat_id, message_id),
        ) as cur:
            row = await cur.fetchone()
        return _battle(row) if row else None

    async def set_message(self, battle_id: int, which: str, message_id: str | None) -> None:
        """Remember the platform id of the announcement ('entry'), ballot ('vote') or results."""
        column = {
            "entry": "entry_message_id",
            "vote": "vote_message_id",
            "result": "result_message_id",
        }[which]  # a fixed column name, never user input
        async with self.storage.transaction() as db:
            await db.execute(
                f"UPDATE battles SET {column} = ? WHERE id = ?", (message_id, battle_id)
            )

    async def recent_setup_keys(self, platform: Platform, chat_id: str, limit: int) -> set[str]:
        """Normalised setups of the chat's last `limit` rounds."""
        if limit <= 0:
            return set()
        async with self.db.execute(
            "SELECT setup_key FROM battles WHERE platform = ? AND chat_id = ? "
            "ORDER BY id DESC LIMIT ?",
            (str(platform), chat_id, limit),
        ) as cur:
            return {str(r[0]) for r in await cur.fetchall()}

    # -- phase changes --------------------------------------------------------------------------

    async def open_voting(
        self, battle_id: int, vote_deadline: datetime, positions: Mapping[int, int]
    ) -> bool:
        """Entry → voting with the ballot order; False if the round was not in its entry phase."""
        async with self.storage.transaction() as db:
            async with db.execute(
                "UPDATE battles SET phase = 'voting', vote_deadline = ? "
                "WHERE id = ? AND phase = 'entry'",
                (_ts(vote_deadline), battle_id),
            ) as cur:
                if cur.rowcount != 1:
                    return False
            await db.executemany(
                "UPDATE battle_entries SET position = ? WHERE id = ? AND battle_id = ?",
                [(pos, entry_id, battle_id) for entry_id, pos in positions.items()],
            )
            await db.execute(
                "DELETE FROM battle_pending_entries WHERE battle_id = ?", (battle_id,)
            )
        return True

    async def end(
        self, battle_id: int, phase: Phase, now: datetime, ended_by: str | None = None
    ) -> bool:
        """An open round → cancelled / too_few; False if it was no longer open."""
        if phase not in (Phase.CANCELLED, Phase.TOO_FEW):
            raise ValueError(f"use finish() for {phase}")
        async with self.storage.transaction() as db:
            async with db.execute(
                "UPDATE battles SET phase = ?, ended_at = ?, ended_by = ? "
                "WHERE id = ? AND phase IN ('entry', 'voting')",
                (str(phase), _ts(now), ended_by, battle_id),
            ) as cur:
                changed = cur.rowcount == 1
            await db.execute(
                "DELETE FROM battle_pending_entries WHERE battle_id = ?", (battle_id,)
            )
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
        async with self.storage.transaction() as db:
            async with db.execute(
                "UPDATE battles SET phase = 'finished', ended_at = ?, total_votes = ?, "
                "bot_outcome = ? WHERE id = ? AND phase = 'voting'",
                (_ts(now), score.total_votes, None if outcome is None else str(outcome), battle_id),
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
                "draws = excluded.draws, losses = excluded.losses, "
                "updated_at = excluded.updated_at",
                [
                    (r.version, r.rating, r.games, r.wins, r.draws, r.losses, _ts(now))
                    for r in elo
                ],
            )
        return True

    # -- entries --------------------------------------------------------------------------------

    async def put_person_entry(
        self, battle_id: int, user: UserRef, text: str, now: datetime
    ) -> bool:
        """Store or replace a person's entry while the round takes entries.

        Returns True when it replaced an earlier entry. The phase is checked in the same
        statement, so an entry racing the deadline cannot slip in after the ballot is made.
        """
        async with self.storage.transaction() as db:
            async with db.execute(
                "SELECT 1 FROM battle_entries WHERE battle_id = ? AND kind = 'person' "
                "AND user_id = ?",
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
                (battle_id, user.user_id, user.name, text, _ts(now), _ts(now), battle_id),
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
        async with self.storage.transaction() as db:
            async with db.execute(
                "INSERT INTO battle_entries (battle_id, kind, version, text, reply_id, "
                "created_at, updated_at) SELECT ?, ?, ?, ?, ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM battles WHERE id = ? AND phase = 'entry') "
                "ON CONFLICT DO NOTHING",
                (battle_id, str(kind), version, text, reply_id, _ts(now), _ts(now), battle_id),
            ) as cur:
                return cur.rowcount == 1

    async def entries(self, battle_id: int) -> list[Entry]:
        """The round's entries: by ballot position once voting opened, else by id."""
        async with self.db.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM battle_entries e JOIN battles b ON b.id = e.battle_id "
            "WHERE e.battle_id = ? ORDER BY COALESCE(e.position, 0), e.id",
            (battle_id,),
        ) as cur:
            return [_entry(r) for r in await cur.fetchall()]

    # -- votes ----------------------------------------------------------------------------------

    async def put_vote(self, battle_id: int, voter: UserRef, entry_id: int, now: datetime) -> int | None:
        """Cast or change a vote while the round is voting; returns the entry id voted before.

        Raises LookupError when the round is not voting any more.
        """
        async with self.storage.transaction() as db:
            async with db.execute(
                "SELECT entry_id FROM battle_votes WHERE battle_id = ? AND voter_id = ?",
                (battle_id, voter.user_id),
            ) as cur:
                row = await cur.fetchone()
            async with db.execute(
                "INSERT INTO battle_votes (battle_id, voter_id, voter_name, entry_id, created_at, "
                "updated_at) SELECT ?, ?, ?, ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM battles WHERE id = ? AND phase = 'voting') "
                "ON CONFLICT (battle_id, voter_id) DO UPDATE SET entry_id = excluded.entry_id, "
                "voter_name = excluded.voter_name, updated_at = excluded.updated_at",
                (battle_id, voter.user_id, voter.name, entry_id, _ts(now), _ts(now), battle_id),
            ) as cur:
                if cur.rowcount != 1:
                    raise LookupError(f"battle {battle_id} is not voting")
        return None if row is None else int(row[0])

    async def votes(self, battle_id: int) -> list[Vote]:
        async with self.db.execute(
            "SELECT v.battle_id, b.platform, v.voter_id, v.voter_name, v.entry_id, v.created_at, "
            "v.updated_at FROM battle_votes v JOIN battles b ON b.id = v.battle_id "
            "WHERE v.battle_id = ? ORDER BY v.created_at, v.voter_id",
            (battle_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [
            Vote(
                int(r[0]), UserRef(Platform(r[1]), str(r[2]), str(r[3])), int(r[4]),
                _dt(r[5]), _dt(r[6]),  # type: ignore[arg-type]
            )
            for r in rows
        ]

    async def vote_counts(self, battle_id: int) -> dict[int, int]:
        async with self.db.execute(
            "SELECT entry_id, COUNT(*) FROM battle_votes WHERE battle_id = ? GROUP BY entry_id",
            (battle_id,),
        ) as cur:
            return {int(r[0]): int(r[1]) for r in await cur.fetchall()}

    # -- secret entries by private message -------------------------------------------------------

    async def set_pending(self, platform: Platform, user_id: str, battle_id: int, now: datetime) -> None:
        async with self.storage.transaction() as db:
            await db.execute(
                "INSERT INTO battle_pending_entries (platform, user_id, battle_id, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (platform, user_id) DO UPDATE SET "
                "battle_id = excluded.battle_id, created_at = excluded.created_at",
                (str(platform), user_id, battle_id, _ts(now)),
            )

    async def pending(self, platform: Platform, user_id: str) -> int | None:
        """The round a person's next private message is meant for."""
        async with self.db.execute(
            "SELECT battle_id FROM battle_pending_entries WHERE platform = ? AND user_id = ?",
            (str(platform), user_id),
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else int(row[0])

    async def clear_pending(self, platform: Platform, user_id: str) -> None:
        async with self.storage.transaction() as db:
            await db.execute(
                "DELETE FROM battle_pending_entries WHERE platform = ? AND user_id = ?",
                (str(platform), user_id),
            )

    # -- aggregates -----------------------------------------------------------------------------

    async def leaderboard(self, platform: Platform, chat_id: str, limit: int = 10) -> list[LeaderRow]:
        """Points over the chat's finished rounds, people one by one and the bot as one row."""
        async with self.db.execute(
            "SELECT CASE WHEN e.kind = 'person' THEN e.user_id END AS who, "
            "MAX(CASE WHEN e.kind = 'person' THEN e.user_name ELSE 'the bot' END), "
            "SUM(e.points), SUM(e.won), COUNT(DISTINCT e.battle_id) "
            "FROM battle_entries e JOIN battles b ON b.id = e.battle_id "
            "WHERE b.platform = ? AND b.chat_id = ? AND b.phase = 'finished' "
            "AND e.kind IN ('person', 'bot') "
            "GROUP BY who ORDER BY SUM(e.points) DESC, SUM(e.won) DESC, who LIMIT ?",
            (str(platform), chat_id, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [
            LeaderRow(None if r[0] is None else str(r[0]), str(r[1]), int(r[2] or 0),
                      int(r[3] or 0), int(r[4]))
            for r in rows
        ]

    async def bot_tally(self, platform: Platform, chat_id: str) -> BotTally:
        async with self.db.execute(
            "SELECT bot_outcome, COUNT(*) FROM battles WHERE platform = ? AND chat_id = ? "
            "AND phase = 'finished' AND bot_outcome IS NOT NULL GROUP BY bot_outcome",
            (str(platform), chat_id),
        ) as cur:
            counts = {str(r[0]): int(r[1]) for r in await cur.fetchall()}
        return BotTally(counts.get("people", 0), counts.get("bot", 0), counts.get("tie", 0))

    async def elo_table(self) -> list[EloRating]:
        async with self.db.execute(
            "SELECT version, rating, games, wins, draws, losses FROM battle_elo "
            "ORDER BY rating DESC, version"
        ) as cur:
            rows = await cur.fetchall()
        return [
            EloRating(str(r[0]), float(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]))
            for r in rows
        ]

    async def export_rows(self, since: datetime | None = None) -> list[ExportEntryRow]:
        """Every entry of every finished round (optionally finished since `since`), in order."""
        sql = (
            "SELECT b.id, b.platform, b.chat_id, b.setup, b.source, b.ended_at, e.id, e.kind, "
            "e.user_id, e.user_name, e.version, e.text, e.reply_id, e.votes, e.points, e.won, "
            "e.identical FROM battle_entries e JOIN battles b ON b.id = e.battle_id "
            "WHERE b.phase = 'finished'"
        )
        params: list[object] = []
        if since is not None:
            sql += " AND b.ended_at >= ?"
            params.append(_ts(since))
        sql += " ORDER BY b.id, e.position, e.id"
        async with self.db.execute(sql, params) as cur:
            rows = await cur.fetchall()
        out = []
        for r in rows:
            kind = AuthorKind(str(r[7]))
            name = str(r[9]) if kind is AuthorKind.PERSON else str(kind)
            out.append(
                ExportEntryRow(
                    battle_id=int(r[0]), platform=Platform(str(r[1])), chat_id=str(r[2]),
                    setup=str(r[3]), setup_source=SetupSource(str(r[4])),
                    finished_at=_dt(r[5]),  # type: ignore[arg-type]
                    entry_id=int(r[6]), author_kind=kind,
                    author_id=None if r[8] is None else str(r[8]), author_name=name,
                    version=None if r[10] is None else str(r[10]), text=str(r[11]),
                    reply_id=None if r[12] is None else int(r[12]), votes=int(r[13] or 0),
                    points=int(r[14] or 0), won=bool(r[15]), identical=bool(r[16]),
                )
            )
        return out
