"""What finished battles add up to: a chat's leaderboard, people against the bot, the Elo
table of adapter versions, and the rows `punchline ratings export` writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.battles.elo import EloRating
from bot.battles.models import AuthorKind, SetupSource
from bot.storage.connection import Queries
from bot.storage.personal import FORGOTTEN_PREFIX
from bot.storage.records import db_time, from_db_time
from bot.types import Platform


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
    starter_id: str  # who started the round ("" once forgotten)
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


class BattleResultQueries(Queries):
    """`storage.battle_results`: totals over finished rounds."""

    async def leaderboard(self, platform: Platform, chat_id: str, limit: int = 10) -> list[LeaderRow]:
        """Points over the chat's finished rounds, people one by one and the bot as one row;
        forgotten people's entries keep their points in the rounds but have no row here."""
        async with self.db.execute(
            "SELECT CASE WHEN e.kind = 'person' THEN e.user_id END AS who, "
            "MAX(CASE WHEN e.kind = 'person' THEN e.user_name ELSE 'the bot' END) AS name, "
            "SUM(e.points) AS points, SUM(e.won) AS wins, COUNT(DISTINCT e.battle_id) AS rounds "
            "FROM battle_entries e JOIN battles b ON b.id = e.battle_id "
            "WHERE b.platform = ? AND b.chat_id = ? AND b.phase = 'finished' "
            "AND e.kind IN ('person', 'bot') AND NOT (e.kind = 'person' AND e.user_id LIKE ?) "
            "GROUP BY who ORDER BY SUM(e.points) DESC, SUM(e.won) DESC, who LIMIT ?",
            (str(platform), chat_id, FORGOTTEN_PREFIX + "%", limit),
        ) as cur:
            rows = await cur.fetchall()
        return [
            LeaderRow(r["who"], r["name"], int(r["points"] or 0), int(r["wins"] or 0), int(r["rounds"]))
            for r in rows
        ]

    async def bot_tally(self, platform: Platform, chat_id: str) -> BotTally:
        async with self.db.execute(
            "SELECT bot_outcome, COUNT(*) AS n FROM battles WHERE platform = ? AND chat_id = ? "
            "AND phase = 'finished' AND bot_outcome IS NOT NULL GROUP BY bot_outcome",
            (str(platform), chat_id),
        ) as cur:
            counts = {str(r["bot_outcome"]): int(r["n"]) for r in await cur.fetchall()}
        return BotTally(counts.get("people", 0), counts.get("bot", 0), counts.get("tie", 0))

    async def elo_table(self) -> list[EloRating]:
        async with self.db.execute(
            "SELECT version, rating, games, wins, draws, losses FROM battle_elo ORDER BY rating DESC, version"
        ) as cur:
            rows = await cur.fetchall()
        return [
            EloRating(r["version"], r["rating"], r["games"], r["wins"], r["draws"], r["losses"]) for r in rows
        ]

    async def votes(self, battle_ids: Sequence[int]) -> list[tuple[int, str, int]]:
        """(battle id, voter id, entry id) of every vote still held in these rounds."""
        if not battle_ids:
            return []
        async with self.db.execute(
            f"SELECT battle_id, voter_id, entry_id FROM battle_votes WHERE battle_id IN ({', '.join('?' * len(battle_ids))})",
            tuple(battle_ids),
        ) as cur:
            return [
                (int(r["battle_id"]), str(r["voter_id"]), int(r["entry_id"])) for r in await cur.fetchall()
            ]

    async def export_rows(self, since: datetime | None = None) -> list[ExportEntryRow]:
        """Every entry of every finished round (optionally finished since `since`), in order."""
        sql = (
            "SELECT b.id AS battle_id, b.platform, b.chat_id, b.setup, b.source, b.starter_id, b.ended_at, "
            "e.id AS entry_id, e.kind, e.user_id, e.user_name, e.version, e.text, e.reply_id, "
            "e.votes, e.points, e.won, e.identical "
            "FROM battle_entries e JOIN battles b ON b.id = e.battle_id WHERE b.phase = 'finished'"
        )
        params: list[object] = []
        if since is not None:
            sql += " AND b.ended_at >= ?"
            params.append(db_time(since))
        sql += " ORDER BY b.id, e.position, e.id"
        async with self.db.execute(sql, params) as cur:
            rows = await cur.fetchall()
        out = []
        for r in rows:
            kind = AuthorKind(r["kind"])
            out.append(
                ExportEntryRow(
                    battle_id=r["battle_id"],
                    platform=Platform(r["platform"]),
                    chat_id=r["chat_id"],
                    setup=r["setup"],
                    setup_source=SetupSource(r["source"]),
                    starter_id=r["starter_id"],
                    finished_at=from_db_time(r["ended_at"]),
                    entry_id=r["entry_id"],
                    author_kind=kind,
                    author_id=r["user_id"],
                    author_name=r["user_name"] if kind is AuthorKind.PERSON else str(kind),
                    version=r["version"],
                    text=r["text"],
                    reply_id=r["reply_id"],
                    votes=int(r["votes"] or 0),
                    points=int(r["points"] or 0),
                    won=bool(r["won"]),
                    identical=bool(r["identical"]),
                )
            )
        return out
