"""SQLite storage for the bot (DESIGN decision 7): one file, WAL, versioned migrations.

`Storage.open(path)` connects with aiosqlite, turns on WAL and foreign keys and applies the
migration files `bot/migrations/NNNN_name.sql` whose number is above the database's
`PRAGMA user_version`, each in its own transaction, so an older database is upgraded in place.

Every write commits at once, inside `transaction()`: one aiosqlite connection is shared by every
coroutine (core, battles), and the lock keeps one coroutine from committing another's half-done
writes. Other modules with their own tables (battles) use `storage.db` for reads and
`async with storage.transaction() as db:` for writes. Queries are parameterised, always.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from bot.types import ChatKind, ChatRef, MessageRef, Platform, UserRef
from config.errors import PunchlineError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")
# Longer texts are cut before storing (the core refuses them anyway); text_chars keeps the length.
MAX_STORED_CHARS = 4096

REQUEST_STATUSES = ("received", "answered", "refused", "rate_limited", "busy", "error")


class StorageError(PunchlineError):
    """The database cannot be opened, migrated or written."""


# ---------------------------------------------------------------------------------------------
# Records: typed rows.


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    # Fixed width (microseconds always present), so text order is time order in queries.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    platform: Platform
    user_id: str
    name: str
    is_bot: bool
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class ChatRecord:
    id: int
    platform: Platform
    chat_id: str
    kind: ChatKind
    title: str
    settings: Mapping[str, object]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RequestRecord:
    id: int
    chat_pk: int
    user_pk: int
    message_id: str | None
    text: str
    text_chars: int
    status: str
    detail: str
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReplyRecord:
    id: int
    request_id: int | None
    chat_pk: int
    platform: Platform
    chat_id: str
    message_id: str | None
    text: str
    version: str
    score: float | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReactionRecord:
    """The net rating state of one user on one reply from one source."""

    reply_id: int
    user_pk: int
    source: str
    emojis: tuple[str, ...]
    rating: str | None
    funniness: int
    appropriateness: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ReplyTally:
    """Everything the ratings of one reply add up to (scores are computed in `bot.ratings`).

    Per user, the sources (reaction, button, ...) are folded first so nobody counts twice:
    their funniness is the sign of the sum over sources, and they flag a reply as
    inappropriate if any source does.
    """

    reply_id: int
    setup: str
    punchline: str
    version: str
    platform: Platform
    chat_id: str
    created_at: datetime
    funny: int  # raters whose net funniness is +1
    not_funny: int  # raters whose net funniness is -1
    flagged: int  # raters who flagged it inappropriate
    raters: int  # users with any rating on either axis
    anon_funny: int = 0  # anonymous reaction counts, by axis
    anon_not_funny: int = 0
    anon_inappropriate: int = 0
    anon_total: int = 0  # anonymous reactions on mapped emoji

    @property
    def rated(self) -> bool:
        return self.raters > 0 or self.anon_total > 0


@dataclass(frozen=True, slots=True)
class ChatTotals:
    replies: int
    ratings: int  # rating entries: users' net states plus anonymous reactions


# ---------------------------------------------------------------------------------------------
# Migrations.


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


# ---------------------------------------------------------------------------------------------


# Per-reply tallies over the replies in `scope` (its WHERE clause is filled in by `tallies`);
# reactions are folded per user first, so a person's reaction and button count once.
_TALLY_SQL = """
WITH scope AS (
    SELECT r.id FROM replies r JOIN chats c ON c.id = r.chat_pk {where}
),
per_user AS (
    SELECT x.reply_id, x.user_pk,
           CASE WHEN SUM(x.funniness) > 0 THEN 1 WHEN SUM(x.funniness) < 0 THEN -1 ELSE 0 END AS f,
           MIN(x.appropriateness) AS a
    FROM reactions x JOIN scope ON scope.id = x.reply_id
    GROUP BY x.reply_id, x.user_pk
),
per_reply AS (
    SELECT reply_id,
           SUM(f = 1) AS funny, SUM(f = -1) AS not_funny, SUM(a < 0) AS flagged,
           SUM(f != 0 OR a != 0) AS raters
    FROM per_user GROUP BY reply_id
),
anon AS (
    SELECT n.reply_id,
           SUM(CASE WHEN n.funniness > 0 THEN n.count ELSE 0 END) AS anon_funny,
           SUM(CASE WHEN n.funniness < 0 THEN n.count ELSE 0 END) AS anon_not_funny,
           SUM(CASE WHEN n.appropriateness < 0 THEN n.count ELSE 0 END) AS anon_inappropriate,
           SUM(CASE WHEN n.funniness != 0 OR n.appropriateness != 0 THEN n.count ELSE 0 END)
               AS anon_total
    FROM reaction_counts n JOIN scope ON scope.id = n.reply_id
    GROUP BY n.reply_id
)
SELECT r.id, COALESCE(q.text, ''), r.text, r.version, c.platform, c.chat_id, r.created_at,
       COALESCE(p.funny, 0), COALESCE(p.not_funny, 0), COALESCE(p.flagged, 0),
       COALESCE(p.raters, 0), COALESCE(a.anon_funny, 0), COALESCE(a.anon_not_funny, 0),
       COALESCE(a.anon_inappropriate, 0), COALESCE(a.anon_total, 0)
FROM scope
JOIN replies r ON r.id = scope.id
JOIN chats c ON c.id = r.chat_pk
LEFT JOIN requests q ON q.id = r.request_id
LEFT JOIN per_reply p ON p.reply_id = r.id
LEFT JOIN anon a ON a.reply_id = r.id
{rated}
ORDER BY r.id
"""

_REPLY_SQL = """
SELECT r.id, r.request_id, r.chat_pk, c.platform, c.chat_id, r.message_id, r.text, r.version,
       r.score, r.created_at, r.sent_at
FROM replies r JOIN chats c ON c.id = r.chat_pk
"""


class Storage:
    """The bot's SQLite database. Build it with `await Storage.open(path)`."""

    def __init__(self, db: aiosqlite.Connection, path: Path):
        self.db = db
        self.path = path
        self._write_lock = asyncio.Lock()

    # -- lifecycle ------------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path | str, migrations_dir: Path | None = None) -> Storage:
        """Open (creating if needed) and migrate the database at `path`.

        `migrations_dir` defaults to `bot/migrations`; tests pass another to check upgrades.
        Raises `StorageError` with the path when the file cannot be used.
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
        storage = cls(db, path)
        try:
            await storage._configure()
            await storage._migrate(migrations)
        except BaseException:
            await db.close()
            raise
        return storage

    async def close(self) -> None:
        """Close the connection (waits for a write in progress)."""
        async with self._write_lock:
            await self.db.close()

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _configure(self) -> None:
        try:
            # WAL lets readers (e.g. `punchline ratings export`) run while the bot writes.
            await self.db.execute("PRAGMA journal_mode = WAL")
            await self.db.execute("PRAGMA foreign_keys = ON")
            await self.db.execute("PRAGMA busy_timeout = 5000")
            await self.db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path} is not a usable SQLite database: {exc}") from None

    async def schema_version(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def journal_mode(self) -> str:
        async with self.db.execute("PRAGMA journal_mode") as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else ""

    async def _migrate(self, migrations: Sequence[Migration]) -> None:
        current = await self.schema_version()
        known = migrations[-1].version if migrations else 0
        if current > known:
            raise StorageError(
                f"the database {self.path} has schema version {current}, newer than this "
                f"Punchline knows ({known}); upgrade Punchline or use another PUNCHLINE_STORAGE__PATH"
            )
        for migration in migrations:
            if migration.version <= current:
                continue
            script = migration.path.read_text(encoding="utf-8")
            log.info("applying migration %s to %s", migration.path.name, self.path)
            try:
                # One transaction per file: a failing migration leaves the previous version.
                await self.db.executescript(
                    f"BEGIN;\n{script}\n;PRAGMA user_version = {migration.version};\nCOMMIT;"
                )
            except sqlite3.Error as exc:
                await self.db.rollback()
                raise StorageError(f"migration {migration.path.name} failed: {exc}") from None

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

    # -- users and chats ------------------------------------------------------------------------

    async def ensure_user(self, user: UserRef, at: datetime) -> int:
        """The row id of `user`, created or refreshed (name, last seen)."""
        async with self.transaction() as db:
            return await self._ensure_user(db, user, at)

    @staticmethod
    async def _ensure_user(db: aiosqlite.Connection, user: UserRef, at: datetime) -> int:
        now = _ts(at)
        async with db.execute(
            "INSERT INTO users (platform, user_id, name, is_bot, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (platform, user_id) DO UPDATE SET "
            "name = CASE WHEN excluded.name != '' THEN excluded.name ELSE users.name END, "
            "last_seen = excluded.last_seen RETURNING id",
            (str(user.platform), user.user_id, user.name, int(user.is_bot), now, now),
        ) as cur:
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def ensure_chat(self, chat: ChatRef, at: datetime) -> int:
        """The row id of `chat`, created or refreshed (kind, title)."""
        async with self.transaction() as db:
            return await self._ensure_chat(db, chat, at)

    @staticmethod
    async def _ensure_chat(db: aiosqlite.Connection, chat: ChatRef, at: datetime) -> int:
        now = _ts(at)
        async with db.execute(
            "INSERT INTO chats (platform, chat_id, kind, title, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (platform, chat_id) DO UPDATE SET kind = excluded.kind, "
            "title = CASE WHEN excluded.title != '' THEN excluded.title ELSE chats.title END, "
            "updated_at = excluded.updated_at RETURNING id",
            (str(chat.platform), chat.chat_id, str(chat.kind), chat.title, now, now),
        ) as cur:
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def get_user(self, platform: Platform, user_id: str) -> UserRecord | None:
        async with self.db.execute(
            "SELECT id, platform, user_id, name, is_bot, first_seen, last_seen FROM users "
            "WHERE platform = ? AND user_id = ?",
            (str(platform), user_id),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return UserRecord(
            int(row[0]), Platform(row[1]), row[2], row[3], bool(row[4]), _dt(row[5]), _dt(row[6])  # type: ignore[arg-type]
        )

    async def get_chat(self, platform: Platform, chat_id: str) -> ChatRecord | None:
        async with self.db.execute(
            "SELECT id, platform, chat_id, kind, title, settings, created_at FROM chats "
            "WHERE platform = ? AND chat_id = ?",
            (str(platform), chat_id),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return ChatRecord(
            int(row[0]), Platform(row[1]), row[2], ChatKind(row[3]), row[4], json.loads(row[5]), _dt(row[6])  # type: ignore[arg-type]
        )

    async def get_chat_setting(self, chat: ChatRef, key: str, default: object = None) -> object:
        """One per-chat setting or flag (JSON value), `default` when unset or chat unknown."""
        record = await self.get_chat(chat.platform, chat.chat_id)
        if record is None:
            return default
        return record.settings.get(key, default)

    async def set_chat_setting(self, chat: ChatRef, key: str, value: object, at: datetime) -> None:
        """Set one per-chat setting (any JSON-serialisable value)."""
        encoded = json.dumps(value)
        async with self.transaction() as db:
            chat_pk = await self._ensure_chat(db, chat, at)
            await db.execute(
                "UPDATE chats SET settings = json_set(settings, '$.' || json_quote(?), json(?)), "
                "updated_at = ? WHERE id = ?",
                (key, encoded, _ts(at), chat_pk),
            )

    async def claim_chat_flag(self, chat: ChatRef, key: str, at: datetime) -> bool:
        """Set a boolean per-chat flag; True only for the call that set it (e.g. say once)."""
        async with self.transaction() as db:
            chat_pk = await self._ensure_chat(db, chat, at)
            async with db.execute(
                "UPDATE chats SET settings = json_set(settings, '$.' || json_quote(?), json('true')), "
                "updated_at = ? WHERE id = ? "
                "AND COALESCE(json_extract(settings, '$.' || json_quote(?)), 0) = 0",
                (key, _ts(at), chat_pk, key),
            ) as cur:
                return cur.rowcount == 1

    # -- requests and replies -------------------------------------------------------------------

    async def add_request(
        self, chat: ChatRef, user: UserRef, text: str, message_id: str | None, at: datetime
    ) -> int:
        """Store an incoming setup (status 'received'); returns its id."""
        async with self.transaction() as db:
            chat_pk = await self._ensure_chat(db, chat, at)
            user_pk = await self._ensure_user(db, user, at)
            async with db.execute(
                "INSERT INTO requests (chat_pk, user_pk, message_id, text, text_chars, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (chat_pk, user_pk, message_id, text[:MAX_STORED_CHARS], len(text), _ts(at)),
            ) as cur:
                row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def finish_request(self, request_id: int, status: str, at: datetime, detail: str = "") -> None:
        """Record what became of a request."""
        if status not in REQUEST_STATUSES:
            raise ValueError(f"unknown request status {status!r}")
        async with self.transaction() as db:
            await db.execute(
                "UPDATE requests SET status = ?, detail = ?, finished_at = ? WHERE id = ?",
                (status, detail[:1000], _ts(at), request_id),
            )

    async def get_request(self, request_id: int) -> RequestRecord | None:
        async with self.db.execute(
            "SELECT id, chat_pk, user_pk, message_id, text, text_chars, status, detail, "
            "created_at, finished_at FROM requests WHERE id = ?",
            (request_id,),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return RequestRecord(
            int(row[0]), int(row[1]), int(row[2]), row[3], row[4], int(row[5]), row[6], row[7],
            _dt(row[8]), _dt(row[9]),  # type: ignore[arg-type]
        )

    async def add_reply(
        self,
        request_id: int | None,
        chat: ChatRef,
        text: str,
        version: str,
        score: float | None,
        at: datetime,
        *,
        finish_request: bool = True,
    ) -> int:
        """Store a generated punchline (and mark its request answered, in the same transaction)."""
        async with self.transaction() as db:
            chat_pk = await self._ensure_chat(db, chat, at)
            async with db.execute(
                "INSERT INTO replies (request_id, chat_pk, text, version, score, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (request_id, chat_pk, text, version, score, _ts(at)),
            ) as cur:
                row = await cur.fetchone()
            if request_id is not None and finish_request:
                await db.execute(
                    "UPDATE requests SET status = 'answered', finished_at = ? WHERE id = ?",
                    (_ts(at), request_id),
                )
        assert row is not None
        return int(row[0])

    async def set_reply_message(self, reply_id: int, ref: MessageRef, at: datetime) -> bool:
        """Link a reply to the platform message that carries it. False: unknown reply."""
        async with self.transaction() as db:
            chat_pk = await self._ensure_chat(db, ref.chat, at)
            # A platform message id belongs to one reply: unlink it from any earlier one
            # (e.g. a console or test run reusing ids) so the unique index holds.
            await db.execute(
                "UPDATE replies SET message_id = NULL WHERE chat_pk = ? AND message_id = ? AND id != ?",
                (chat_pk, ref.message_id, reply_id),
            )
            async with db.execute(
                "UPDATE replies SET message_id = ?, sent_at = ? WHERE id = ? AND chat_pk = ?",
                (ref.message_id, _ts(at), reply_id, chat_pk),
            ) as cur:
                return cur.rowcount == 1

    async def get_reply(self, reply_id: int) -> ReplyRecord | None:
        async with self.db.execute(_REPLY_SQL + " WHERE r.id = ?", (reply_id,)) as cur:
            row = await cur.fetchone()
        return _reply(row) if row else None

    async def find_reply(self, ref: MessageRef) -> ReplyRecord | None:
        """The reply carried by a platform message, or None (not the bot's punchline)."""
        async with self.db.execute(
            _REPLY_SQL + " WHERE c.platform = ? AND c.chat_id = ? AND r.message_id = ?",
            (str(ref.chat.platform), ref.chat.chat_id, ref.message_id),
        ) as cur:
            row = await cur.fetchone()
        return _reply(row) if row else None

    # -- ratings --------------------------------------------------------------------------------

    async def get_reaction(self, reply_id: int, user: UserRef, source: str) -> ReactionRecord | None:
        async with self.db.execute(
            "SELECT x.reply_id, x.user_pk, x.source, x.emojis, x.rating, x.funniness, "
            "x.appropriateness, x.updated_at FROM reactions x JOIN users u ON u.id = x.user_pk "
            "WHERE x.reply_id = ? AND u.platform = ? AND u.user_id = ? AND x.source = ?",
            (reply_id, str(user.platform), user.user_id, source),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return ReactionRecord(
            int(row[0]), int(row[1]), row[2], tuple(json.loads(row[3])), row[4], int(row[5]),
            int(row[6]), _dt(row[7]),  # type: ignore[arg-type]
        )

    async def reactions_for(self, reply_id: int) -> list[ReactionRecord]:
        async with self.db.execute(
            "SELECT reply_id, user_pk, source, emojis, rating, funniness, appropriateness, "
            "updated_at FROM reactions WHERE reply_id = ? ORDER BY user_pk, source",
            (reply_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [
            ReactionRecord(
                int(r[0]), int(r[1]), r[2], tuple(json.loads(r[3])), r[4], int(r[5]), int(r[6]), _dt(r[7])  # type: ignore[arg-type]
            )
            for r in rows
        ]

    async def put_reaction(
        self,
        reply_id: int,
        user: UserRef,
        source: str,
        *,
        emojis: Sequence[str],
        rating: str | None,
        funniness: int,
        appropriateness: int,
        action: str,
        event_payload: Sequence[str],
        at: datetime,
    ) -> None:
        """Replace one user's net rating state on a reply from one source, and log the event.

        An empty state (no emoji, no rating) deletes the row: a removed reaction counts nothing.
        """
        async with self.transaction() as db:
            user_pk = await self._ensure_user(db, user, at)
            if not emojis and rating is None:
                await db.execute(
                    "DELETE FROM reactions WHERE reply_id = ? AND user_pk = ? AND source = ?",
                    (reply_id, user_pk, source),
                )
            else:
                await db.execute(
                    "INSERT INTO reactions (reply_id, user_pk, source, emojis, rating, funniness, "
                    "appropriateness, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (reply_id, user_pk, source) DO UPDATE SET emojis = excluded.emojis, "
                    "rating = excluded.rating, funniness = excluded.funniness, "
                    "appropriateness = excluded.appropriateness, updated_at = excluded.updated_at",
                    (reply_id, user_pk, source, json.dumps(list(emojis), ensure_ascii=False), rating,
                     funniness, appropriateness, _ts(at)),
                )
            await db.execute(
                "INSERT INTO reaction_events (reply_id, user_pk, source, action, payload, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (reply_id, user_pk, source, action,
                 json.dumps(list(event_payload), ensure_ascii=False), _ts(at)),
            )

    async def replace_reaction_counts(
        self, reply_id: int, counts: Sequence[tuple[str, int, int, int]], at: datetime
    ) -> None:
        """Replace a reply's anonymous counts with `(emoji, count, funniness, appropriateness)`."""
        async with self.transaction() as db:
            await db.execute("DELETE FROM reaction_counts WHERE reply_id = ?", (reply_id,))
            await db.executemany(
                "INSERT INTO reaction_counts (reply_id, emoji, count, funniness, appropriateness, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(reply_id, e, c, f, a, _ts(at)) for e, c, f, a in counts if c > 0],
            )
            await db.execute(
                "INSERT INTO reaction_events (reply_id, user_pk, source, action, payload, created_at) "
                "VALUES (?, NULL, 'anonymous', 'counts', ?, ?)",
                (reply_id, json.dumps({e: c for e, c, _, _ in counts}, ensure_ascii=False), _ts(at)),
            )

    async def reaction_counts(self, reply_id: int) -> dict[str, int]:
        async with self.db.execute(
            "SELECT emoji, count FROM reaction_counts WHERE reply_id = ? ORDER BY emoji", (reply_id,)
        ) as cur:
            return {row[0]: int(row[1]) for row in await cur.fetchall()}

    async def count_events(self, reply_id: int) -> int:
        async with self.db.execute(
            "SELECT COUNT(*) FROM reaction_events WHERE reply_id = ?", (reply_id,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # -- aggregates -----------------------------------------------------------------------------

    async def tallies(
        self,
        *,
        chat: ChatRef | None = None,
        since: datetime | None = None,
        rated_only: bool = False,
        reply_id: int | None = None,
    ) -> list[ReplyTally]:
        """Per-reply rating tallies, oldest first; filtered by chat, creation time, reply."""
        where: list[str] = []
        params: list[object] = []
        if chat is not None:
            where += ["c.platform = ?", "c.chat_id = ?"]
            params += [str(chat.platform), chat.chat_id]
        if since is not None:
            where.append("r.created_at >= ?")
            params.append(_ts(since))
        if reply_id is not None:
            where.append("r.id = ?")
            params.append(reply_id)
        # Only fixed clauses are spliced in; every value travels as a parameter.
        sql = _TALLY_SQL.format(
            where="WHERE " + " AND ".join(where) if where else "",
            rated="WHERE COALESCE(p.raters, 0) > 0 OR COALESCE(a.anon_total, 0) > 0" if rated_only else "",
        )
        async with self.db.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return [
            ReplyTally(
                reply_id=int(r[0]), setup=r[1], punchline=r[2], version=r[3],
                platform=Platform(r[4]), chat_id=r[5], created_at=_dt(r[6]),  # type: ignore[arg-type]
                funny=int(r[7]), not_funny=int(r[8]), flagged=int(r[9]), raters=int(r[10]),
                anon_funny=int(r[11]), anon_not_funny=int(r[12]),
                anon_inappropriate=int(r[13]), anon_total=int(r[14]),
            )
            for r in rows
        ]

    async def request_counts(self, chat: ChatRef | None = None) -> dict[str, int]:
        """How many requests ended in each status (all statuses present, zeros included)."""
        sql = "SELECT q.status, COUNT(*) FROM requests q JOIN chats c ON c.id = q.chat_pk"
        params: list[object] = []
        if chat is not None:
            sql += " WHERE c.platform = ? AND c.chat_id = ?"
            params += [str(chat.platform), chat.chat_id]
        sql += " GROUP BY q.status"
        counts = dict.fromkeys(REQUEST_STATUSES, 0)
        async with self.db.execute(sql, params) as cur:
            for status, n in await cur.fetchall():
                counts[status] = int(n)
        return counts

    async def integrity_problems(self) -> list[str]:
        """`PRAGMA integrity_check` and `foreign_key_check` findings; empty when all is well."""
        problems: list[str] = []
        async with self.db.execute("PRAGMA integrity_check") as cur:
            problems += [row[0] for row in await cur.fetchall() if row[0] != "ok"]
        async with self.db.execute("PRAGMA foreign_key_check") as cur:
            problems += [f"foreign key: {tuple(row)}" for row in await cur.fetchall()]
        return problems


def _reply(row: Sequence[object]) -> ReplyRecord:
    return ReplyRecord(
        id=int(row[0]),  # type: ignore[arg-type]
        request_id=None if row[1] is None else int(row[1]),  # type: ignore[arg-type]
        chat_pk=int(row[2]),  # type: ignore[arg-type]
        platform=Platform(row[3]),
        chat_id=str(row[4]),
        message_id=None if row[5] is None else str(row[5]),
        text=str(row[6]),
        version=str(row[7]),
        score=None if row[8] is None else float(row[8]),  # type: ignore[arg-type]
        created_at=_dt(row[9]),  # type: ignore[arg-type]
        sent_at=_dt(row[10]),  # type: ignore[arg-type]
    )
