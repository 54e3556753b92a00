"""`/reload [adapter_dir]`: an admin hot-swaps the adapter through the core and the console."""

from __future__ import annotations

import io
import logging
import sqlite3
from pathlib import Path

from bot.clock import ManualClock
from bot.console.chat import run_chat
from bot.core.service import BotCore
from bot.core.texts import (
    HELP_ADMIN,
    MSG_RELOAD_NO_ADAPTER,
    MSG_RELOAD_REFUSED,
    MSG_RELOAD_UNSUPPORTED,
)
from bot.storage import Storage
from bot.types import ChatKind, ChatRef, IncomingSetup, Platform, UserRef
from config.settings import Settings
from model.types import AdapterError, Generator, Reloadable, WorkerClosed
from tests.fakes.generator import FakeGenerator, PlainGenerator

CHAT = ChatRef(Platform.TELEGRAM, "42", ChatKind.PRIVATE)
ADMIN = UserRef(Platform.TELEGRAM, "42", "Ann")
OTHER = UserRef(Platform.TELEGRAM, "43", "Bob")


def make_core(storage: Storage, generator: Generator, **model: object) -> BotCore:
    settings = Settings(telegram={"admin_ids": [42]}, model=model)
    return BotCore(settings, storage, generator, ManualClock())


async def served_version(core: BotCore) -> str | None:
    reply = await core.handle_setup(IncomingSetup(CHAT, ADMIN, "Why did the cow moo?", True))
    assert reply is not None
    return reply.version


async def test_the_real_worker_swaps_through_the_core(storage) -> None:
    """The in-process worker (over a scripted backend) is what the core reloads in production."""
    from config.settings import WorkerSettings
    from model.generation import GenerationParams
    from model.worker import InferenceWorker
    from tests.fakes.backend import FakeBackend, FakeLoader

    loader = FakeLoader({None: FakeBackend("v1"), "v2": FakeBackend("v2")})
    worker = InferenceWorker(
        loader, GenerationParams(num_candidates=1), WorkerSettings(stats_log_s=0), max_setup_chars=100
    )
    assert isinstance(worker, Reloadable) and not isinstance(PlainGenerator(), Reloadable)
    await worker.start()
    try:
        core = make_core(storage, worker)
        text = await core.admin.reload_adapter(ADMIN, "adapters/missing")
        assert text == ("Could not load missing: adapter directory missing does not exist; still serving v1.")
        assert await served_version(core) == "v1"
        assert await core.admin.reload_adapter(ADMIN, "adapters/v2") == "Now serving v2 (was v1)."
        assert await served_version(core) == "v2"
        # Recorded as current with its directory, so a restart serves it again.
        current = await storage.versions.current()
        assert current is not None and current.version == "v2" and current.parent == "v1"
        assert current.path == str(Path("adapters/v2").resolve())
        [event] = [e for e in await storage.versions.events("v2") if e.event == "promoted"]
        assert event.actor == "reload" and "/reload from" in event.reason
    finally:
        await worker.close()


async def test_an_admin_reloads_and_new_replies_carry_the_new_version(storage, generator, caplog) -> None:
    core = make_core(storage, generator)
    with caplog.at_level(logging.INFO, logger="bot.core"):
        text = await core.admin.reload_adapter(ADMIN, "  adapters/v8 ")
    assert text == "Now serving v8 (was v7)."
    assert generator.reloads == [Path("adapters/v8")]
    assert await served_version(core) == "v8"
    # Who reloaded what is on record in the log.
    assert any("telegram:42" in r.getMessage() and "adapters/v8" in r.getMessage() for r in caplog.records)


async def test_someone_else_is_refused_and_nothing_changes(storage, generator) -> None:
    core = make_core(storage, generator)
    assert await core.admin.reload_adapter(OTHER, "adapters/v8") == MSG_RELOAD_REFUSED
    # An id from the other platform's admin list does not count either.
    assert await core.admin.reload_adapter(UserRef(Platform.DISCORD, "42"), None) == MSG_RELOAD_REFUSED
    assert generator.reloads == [] and await served_version(core) == "v7"


async def test_a_failed_load_keeps_the_old_version_and_says_why(storage, generator) -> None:
    core = make_core(storage, generator)
    generator.fail_reload(
        AdapterError("adapters/bad has no punchline.json\nmore detail"),
        WorkerClosed("the model worker is not running"),
    )
    text = await core.admin.reload_adapter(ADMIN, "adapters/bad")
    assert text == "Could not load bad: bad has no punchline.json; still serving v7."
    text = await core.admin.reload_adapter(ADMIN, "adapters/v8")
    assert text == "Could not load v8: the model worker is not running; still serving v7."
    assert await served_version(core) == "v7"


async def test_an_unexpected_failure_is_said_without_its_details(storage, generator) -> None:
    core = make_core(storage, generator)
    generator.fail_reload(RuntimeError("CUDA exploded at 0xdeadbeef"))
    text = await core.admin.reload_adapter(ADMIN, "adapters/v8")
    assert text.startswith("Could not load v8: an unexpected error")
    assert text.endswith("still serving v7.") and "CUDA" not in text


async def test_a_generator_that_cannot_reload_says_so(storage) -> None:
    core = make_core(storage, PlainGenerator())
    assert await core.admin.reload_adapter(ADMIN, "adapters/v8") == MSG_RELOAD_UNSUPPORTED
    assert await served_version(core) == "v7"


async def test_without_a_directory_the_configured_adapter_is_reloaded(storage, generator) -> None:
    unconfigured = make_core(storage, generator)
    assert await unconfigured.admin.reload_adapter(ADMIN, None) == MSG_RELOAD_NO_ADAPTER
    assert await unconfigured.admin.reload_adapter(ADMIN, "   ") == MSG_RELOAD_NO_ADAPTER
    assert "PUNCHLINE_MODEL__ADAPTER" in MSG_RELOAD_NO_ADAPTER and generator.reloads == []

    configured = make_core(storage, generator, adapter="adapters/current")
    assert await configured.admin.reload_adapter(ADMIN, None) == "Now serving current (was v7)."
    # Retrained in place (same version id): said as such, not "was current".
    text = await configured.admin.reload_adapter(ADMIN, "")
    assert text == "Reloaded current from current (same version as before)."
    assert generator.reloads == [Path("adapters/current")] * 2


async def test_help_mentions_reload_only_for_admins(storage, generator) -> None:
    core = make_core(storage, generator)
    chat = ChatRef(Platform.TELEGRAM, ADMIN.user_id, ChatKind.PRIVATE)
    assert HELP_ADMIN in await core.help_for(chat, ADMIN)
    assert "/reload" not in await core.help_for(chat, UserRef(Platform.TELEGRAM, "12345"))


async def test_console_reload_swaps_the_version_of_the_next_reply(tmp_path: Path) -> None:
    """The console user owns the bot: /reload works without any admin setting."""
    db = tmp_path / "chat.db"
    gen = FakeGenerator(["Because it was there."], version="v1")
    gen.fail_reload(AdapterError("/nowhere does not exist"))
    out = io.StringIO()
    typed = "Why one?\n\n/reload /nowhere\n/RELOAD adapters/V2\nWhy two?\n\n/reload\n/help\n"
    status = await run_chat(
        Settings(storage={"path": db}),
        io.StringIO(typed),
        out,
        generator=gen,
        clock=ManualClock(),
        user_name="tester",
    )
    text = out.getvalue()
    assert status == 0
    assert (
        "Could not load /nowhere: /nowhere does not exist; still serving v1." in text
    )  # the owner sees paths
    assert "Now serving V2 (was v1)." in text  # the path keeps its case
    assert MSG_RELOAD_NO_ADAPTER in text and HELP_ADMIN in text
    assert gen.reloads == [Path("/nowhere"), Path("adapters/V2")]
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT version FROM replies ORDER BY id").fetchall() == [("v1",), ("V2",)]
