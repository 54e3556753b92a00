"""`Storage`: the bot's SQLite file, opened, migrated, and its queries by concern.

    storage = await Storage.open("punchline.db")
    chat_pk = await storage.people.ensure_chat(chat, now)      # users, chats, per-chat settings
    request_id = await storage.requests.add(chat, user, text, message_id, now)  # requests, replies
    await storage.ratings.put_reaction(...)                    # reactions, counts, tallies
    battle = await storage.battles.get(battle_id)              # rounds: phases, deadlines
    await storage.battle_entries.put_vote(...)                 # entries, votes, secret entries
    rows = await storage.battle_results.leaderboard(...)       # leaderboards, Elo, export rows
    await storage.privacy.forget(platform, user_id)            # opt-outs, /forget, retention
    await storage.versions.register(version, path, ...)        # challengers, promotions
    await storage.close()

WAL lets readers (e.g. `punchline ratings export`) run while the bot writes; rows are read by
column name. See `bot.storage.connection` for how writes are serialised.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

from bot.storage.battle_entries import BattleEntryQueries
from bot.storage.battle_results import BattleResultQueries
from bot.storage.battles import BattleQueries
from bot.storage.connection import Database, StorageError
from bot.storage.people import PeopleQueries
from bot.storage.privacy import PrivacyQueries
from bot.storage.ratings import RatingQueries
from bot.storage.requests import RequestQueries
from bot.storage.schema import MIGRATIONS_DIR, discover_migrations, migrate, schema_version
from bot.storage.versions import VersionQueries


class Storage:
    """The bot's database. Build it with `await Storage.open(path)`; close it with `close()`."""

    def __init__(self, database: Database):
        self.database = database
        self.people = PeopleQueries(database)
        self.requests = RequestQueries(database)
        self.ratings = RatingQueries(database)
        self.battles = BattleQueries(database)
        self.battle_entries = BattleEntryQueries(database)
        self.battle_results = BattleResultQueries(database)
        self.privacy = PrivacyQueries(database)
        self.versions = VersionQueries(database)

    @property
    def db(self) -> aiosqlite.Connection:
        """The connection, for reads (writes go through a query object's transaction)."""
        return self.database.db

    @property
    def path(self) -> Path:
        return self.database.path

    @classmethod
    async def open(
        cls, path: Path | str, migrations_dir: Path | None = None, *, synchronous: str = "NORMAL"
    ) -> Storage:
        """Open (creating if needed), check and migrate the database at `path`.

        `migrations_dir` defaults to `bot/storage/migrations`; tests pass another to check
        upgrades. `synchronous` is SQLite's: NORMAL (the default) or FULL (see
        `StorageSettings`). Raises `StorageError` with the path when the file cannot be used or
        is corrupt.
        """
        path = Path(path)
        migrations = discover_migrations(migrations_dir or MIGRATIONS_DIR)
        if str(path) != ":memory:":
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create the folder for the database {path}: {exc}") from None
            if path.is_dir():
                raise StorageError(f"the database path {path} is a folder, not a file")
        try:
            db = await aiosqlite.connect(path)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open the database {path}: {exc}") from None
        db.row_factory = sqlite3.Row
        try:
            await _configure(db, path, synchronous)
            await _check_integrity(db, path)
            await migrate(db, path, migrations)
        except BaseException:
            await db.close()
            raise
        return cls(Database(db, path))

    async def close(self) -> None:
        """Close the connection (waits for a write in progress)."""
        await self.database.close()

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def schema_version(self) -> int:
        return await schema_version(self.db)

    async def journal_mode(self) -> str:
        async with self.db.execute("PRAGMA journal_mode") as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else ""

    async def integrity_problems(self) -> list[str]:
        """`PRAGMA integrity_check` and `foreign_key_check` findings; empty when all is well."""
        problems: list[str] = []
        async with self.db.execute("PRAGMA integrity_check") as cur:
            problems += [row[0] for row in await cur.fetchall() if row[0] != "ok"]
        async with self.db.execute("PRAGMA foreign_key_check") as cur:
            problems += [f"foreign key: {tuple(row)}" for row in await cur.fetchall()]
        return problems


async def _configure(db: aiosqlite.Connection, path: Path, synchronous: str) -> None:
    if synchronous not in ("NORMAL", "FULL"):
        raise StorageError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
    try:
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA busy_timeout = 5000")
        await db.execute(f"PRAGMA synchronous = {synchronous}")  # one of two fixed words
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{path} is not a usable SQLite database: {exc}") from None


async def _check_integrity(db: aiosqlite.Connection, path: Path) -> None:
    """`PRAGMA quick_check` at every start: a corrupt file stops start-up with one clear line
    instead of failing requests one by one later."""
    try:
        async with db.execute("PRAGMA quick_check") as cur:
            found = [str(row[0]) for row in await cur.fetchall()]
    except sqlite3.DatabaseError as exc:
        found = [str(exc)]
    if found != ["ok"]:
        raise StorageError(
            f"the database {path} is corrupt ({found[0]}); restore a backup, or move it aside to start afresh"
        )
