"""The SQLite storage: WAL, foreign keys, migrations that upgrade in place, atomic writes."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest

from bot.storage import MIGRATIONS_DIR, Storage, StorageError, discover_migrations
from bot.types import ChatKind, ChatRef, MessageRef, Platform, UserRef

CHAT = ChatRef(Platform.TELEGRAM, "-100", ChatKind.GROUP, "Jokers")
USER = UserRef(Platform.TELEGRAM, "42", "Ann")
from tests.helpers import db


def _core_only_migrations(tmp_path: Path) -> Path:
    """A migrations folder with just the core migration (an 'older release')."""
    folder = tmp_path / "migrations_v1"
    folder.mkdir()
    shutil.copy(MIGRATIONS_DIR / "0001_core.sql", folder / "0001_core.sql")
    return folder


async def test_open_sets_wal_foreign_keys_and_schema_version(storage: Storage) -> None:
    assert await storage.journal_mode() == "wal"
    async with storage.db.execute("PRAGMA foreign_keys") as cur:
        assert (await cur.fetchone())[0] == 1
    assert await storage.schema_version() == len(discover_migrations(MIGRATIONS_DIR))
    assert await storage.integrity_problems() == []


async def test_data_survives_reopen_and_migrations_are_not_reapplied(tmp_path: Path, clock) -> None:
    path = tmp_path / "bot.db"
    s = await Storage.open(path)
    request_id = await s.requests.add(CHAT, USER, "Why?", "7", clock.now())
    version = await s.schema_version()
    await s.close()

    s = await Storage.open(path)
    try:
        assert await s.schema_version() == version
        record = await db.get_request(s, request_id)
        assert record is not None and record.text == "Why?" and record.message_id == "7"
    finally:
        await s.close()


async def test_an_older_database_is_upgraded_in_place(tmp_path: Path, clock) -> None:
    v1 = _core_only_migrations(tmp_path)
    path = tmp_path / "old.db"
    s = await Storage.open(path, migrations_dir=v1)
    assert await s.schema_version() == 1
    reply_id = await s.requests.add_reply(None, CHAT, "Because.", "v1", 0.5, clock.now())
    await s.close()

    v2 = tmp_path / "migrations_v2"
    shutil.copytree(v1, v2)
    (v2 / "0002_extra.sql").write_text(
        "ALTER TABLE replies ADD COLUMN flagged INTEGER NOT NULL DEFAULT 0;\n"
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n",
        encoding="utf-8",
    )
    s = await Storage.open(path, migrations_dir=v2)
    try:
        assert await s.schema_version() == 2
        async with s.db.execute("SELECT text, flagged FROM replies WHERE id = ?", (reply_id,)) as cur:
            assert tuple(await cur.fetchone()) == ("Because.", 0)
        async with s.db.execute("SELECT COUNT(*) FROM notes") as cur:
            assert (await cur.fetchone())[0] == 0
    finally:
        await s.close()


async def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    v1 = _core_only_migrations(tmp_path)
    path = tmp_path / "bot.db"
    await (await Storage.open(path, migrations_dir=v1)).close()
    (v1 / "0002_broken.sql").write_text(
        "CREATE TABLE half (id INTEGER);\nINSERT INTO no_such_table VALUES (1);\n", encoding="utf-8"
    )
    with pytest.raises(StorageError, match="0002_broken.sql"):
        await Storage.open(path, migrations_dir=v1)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "half" not in tables and "replies" in tables


async def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    await (await Storage.open(path)).close()
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA user_version = 99")
    with pytest.raises(StorageError, match="newer"):
        await Storage.open(path)


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["0001_a.sql", "0003_c.sql"], "order"),
        (["0001_a.sql", "1_b.sql"], "NNNN"),
        (["0001_a.sql", "0001_b.sql"], "two migrations"),
    ],
)
def test_migration_files_must_be_numbered_in_sequence(tmp_path: Path, names, problem) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;", encoding="utf-8")
    with pytest.raises(StorageError, match=problem):
        discover_migrations(tmp_path)


async def test_unusable_paths_give_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="folder"):
        await Storage.open(tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="junk.db"):
        await Storage.open(junk)


async def test_foreign_keys_are_enforced(storage: Storage, clock) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        await storage.ratings.put_reaction(
            999,
            USER,
            "button",
            emojis=(),
            rating="funny",
            funniness=1,
            appropriateness=0,
            action="rate",
            event_payload=["funny"],
            at=clock.now(),
        )
    # The failed transaction left nothing behind, not even the user it created on the way.
    assert await db.get_user(storage, Platform.TELEGRAM, "42") is None


async def test_text_is_stored_verbatim_through_parameters(storage: Storage, clock) -> None:
    nasty = 'Robert\'); DROP TABLE requests;-- "quoted" ?'
    request_id = await storage.requests.add(CHAT, USER, nasty, None, clock.now())
    record = await db.get_request(storage, request_id)
    assert record is not None and record.text == nasty
    assert await storage.integrity_problems() == []


async def test_huge_texts_are_capped_but_their_length_kept(storage: Storage, clock) -> None:
    request_id = await storage.requests.add(CHAT, USER, "a" * 50_000, None, clock.now())
    record = await db.get_request(storage, request_id)
    assert record is not None and len(record.text) == 4096 and record.text_chars == 50_000


async def test_transactions_do_not_commit_each_others_half_done_writes(storage: Storage, clock) -> None:
    entered = asyncio.Event()

    async def failing_writer() -> None:
        async with storage.database.transaction() as db:
            await db.execute(
                "INSERT INTO users (platform, user_id, first_seen, last_seen) VALUES (?, ?, ?, ?)",
                ("telegram", "doomed", "t", "t"),
            )
            entered.set()
            await asyncio.sleep(0.05)  # another coroutine writes meanwhile
            raise RuntimeError("boom")

    async def other_writer() -> None:
        await entered.wait()
        await db.ensure_user(storage, USER, clock.now())

    results = await asyncio.gather(failing_writer(), other_writer(), return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and results[1] is None
    assert await db.get_user(storage, Platform.TELEGRAM, "doomed") is None
    assert await db.get_user(storage, Platform.TELEGRAM, "42") is not None


async def test_users_and_chats_are_upserted(storage: Storage, clock) -> None:
    first = await db.ensure_user(storage, USER, clock.now())
    clock.advance(60)
    again = await db.ensure_user(storage, UserRef(Platform.TELEGRAM, "42", "Ann B."), clock.now())
    assert first == again
    record = await db.get_user(storage, Platform.TELEGRAM, "42")
    assert record is not None and record.name == "Ann B." and record.last_seen > record.first_seen
    # Same id on another platform is another user.
    assert await db.ensure_user(storage, UserRef(Platform.DISCORD, "42"), clock.now()) != first


async def test_chat_settings_and_once_only_flags(storage: Storage, clock) -> None:
    assert await storage.people.get_chat_setting(CHAT, "lang", "en") == "en"
    await storage.people.set_chat_setting(CHAT, "lang", "de", clock.now())
    await storage.people.set_chat_setting(CHAT, "limits", {"burst": 3}, clock.now())
    assert await storage.people.get_chat_setting(CHAT, "lang") == "de"
    assert await storage.people.get_chat_setting(CHAT, "limits") == {"burst": 3}
    assert await storage.people.claim_chat_flag(CHAT, "reaction_hint_sent", clock.now()) is True
    assert await storage.people.claim_chat_flag(CHAT, "reaction_hint_sent", clock.now()) is False
    other = ChatRef(Platform.TELEGRAM, "-200", ChatKind.GROUP)
    assert await storage.people.claim_chat_flag(other, "reaction_hint_sent", clock.now()) is True


async def test_reply_message_links(storage: Storage, clock) -> None:
    request_id = await storage.requests.add(CHAT, USER, "Why?", "10", clock.now())
    reply_id = await storage.requests.add_reply(request_id, CHAT, "Because.", "v3", -0.2, clock.now())
    assert (await db.get_request(storage, request_id)).status == "answered"  # type: ignore[union-attr]
    ref = MessageRef(CHAT, "11")
    assert await storage.requests.find_reply(ref) is None
    assert await storage.requests.set_reply_message(reply_id, ref, clock.now()) is True
    found = await storage.requests.find_reply(ref)
    assert found is not None and found.id == reply_id and found.version == "v3"
    # The same message id in another chat is another message.
    assert (
        await storage.requests.find_reply(MessageRef(ChatRef(Platform.TELEGRAM, "5", ChatKind.PRIVATE), "11"))
        is None
    )
    assert await storage.requests.set_reply_message(12345, MessageRef(CHAT, "12"), clock.now()) is False


async def test_a_corrupt_file_is_one_clear_error_at_start(tmp_path: Path, clock) -> None:
    path = tmp_path / "bot.db"
    s = await Storage.open(path)
    for n in range(300):  # enough rows for the tables to span several pages
        await s.requests.add(CHAT, USER, f"Setup number {n} with some words?", str(n), clock.now())
    await s.close()
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = raw.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    for offset in range(page_size * 3, page_size * 3 + 200):  # scribble over a b-tree page
        data[offset] = 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="corrupt") as raised:
        await Storage.open(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)
