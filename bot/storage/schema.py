"""The schema: versioned migration files, applied in order, each in its own transaction.

`bot/storage/migrations/NNNN_name.sql` files whose number is above the database's
`PRAGMA user_version` are applied at start-up, so an older database is upgraded in place and a
failing migration leaves the previous version.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from bot.storage.connection import StorageError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path


def discover_migrations(directory: Path) -> list[Migration]:
    """The migration files in `directory`, in order; gaps and duplicates are errors."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise StorageError(f"migration file {path} is not named NNNN_name.sql")
        number = int(match.group(1))
        if number in found:
            raise StorageError(f"two migrations numbered {number}: {found[number].path} and {path}")
        found[number] = Migration(number, path.stem, path)
    migrations = [found[n] for n in sorted(found)]
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise StorageError(f"migrations must be numbered 1, 2, 3...: {migration.path} is out of order")
    return migrations


async def schema_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def migrate(db: aiosqlite.Connection, path: Path, migrations: Sequence[Migration]) -> None:
    """Apply the migrations newer than the database; refuse a database newer than the code."""
    current = await schema_version(db)
    known = migrations[-1].version if migrations else 0
    if current > known:
        raise StorageError(
            f"the database {path} has schema version {current}, newer than this "
            f"Punchline knows ({known}); upgrade Punchline or use another PUNCHLINE_STORAGE__PATH"
        )
    for migration in migrations:
        if migration.version <= current:
            continue
        script = migration.path.read_text(encoding="utf-8")
        log.info("applying migration %s to %s", migration.path.name, path)
        try:
            await db.executescript(f"BEGIN;\n{script}\n;PRAGMA user_version = {migration.version};\nCOMMIT;")
        except sqlite3.Error as exc:
            await db.rollback()
            raise StorageError(f"migration {migration.path.name} failed: {exc}") from None
