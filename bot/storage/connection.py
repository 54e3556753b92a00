"""The shared aiosqlite connection and its write lock; every query object writes through it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import aiosqlite

from config.errors import PunchlineError


class StorageError(PunchlineError):
    """The database cannot be opened, migrated or written."""


def existing_database(path: Path) -> Path:
    """`path`, for commands that read a database the bot made (they never create one).
    Raises `StorageError` naming the setting when there is none."""
    if not path.is_file():
        raise StorageError(f"no database at {path}; set PUNCHLINE_STORAGE__PATH or --db")
    return path


class Database:
    """One connection shared by every coroutine of the process (core, battles, front-ends).

    Writes go through `transaction()`, which commits at once; the lock keeps one coroutine from
    committing another's half-done writes. Reads use `db` directly (WAL: they never block).
    """

    def __init__(self, db: aiosqlite.Connection, path: Path):
        self.db = db
        self.path = path
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Write in one transaction, committed on exit (rolled back on error)."""
        async with self._write_lock:
            try:
                yield self.db
            except BaseException:
                await self.db.rollback()
                raise
            else:
                await self.db.commit()

    async def close(self) -> None:
        """Close the connection (waits for a write in progress)."""
        async with self._write_lock:
            await self.db.close()


class Queries:
    """Base of the query objects (`storage.people`, `storage.requests`, ...)."""

    def __init__(self, database: Database):
        self.database = database

    @property
    def db(self) -> aiosqlite.Connection:
        return self.database.db

    def transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        return self.database.transaction()
