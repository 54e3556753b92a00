"""A running Telegram front-end for tests: the real PTB stack polling the fake Bot API, over a
real core and SQLite file and a scripted generator."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.clock import SystemClock
from bot.core.service import BotCore
from bot.storage import Storage
from bot.telegram.app import build_application, run_telegram
from bot.types import ChatKind, ChatRef, MessageRef, Platform, UserRef
from config.settings import Settings, load_settings
from tests.fakes.generator import FakeGenerator
from tests.fakes.telegram_api import WAIT_TIMEOUT_S, ApiCall, FakeBotAPI

PUNCHLINE = "Because the other side had better jokes."
SETUP = "Why did the chicken cross the road?"


# Loose enough that no test meets a limit it did not ask for.
LOOSE_LIMITS = {"burst": 100, "per_minute": 6000, "chat_burst": 100, "chat_per_minute": 6000}


def make_settings(
    api: FakeBotAPI,
    db: Path,
    limits: dict[str, Any] | None = None,
    inline: dict[str, Any] | None = None,
    **telegram: Any,
) -> Settings:
    return load_settings(
        inline=inline or {},
        telegram={
            "token": api.token,
            "base_url": api.base_url,
            "base_file_url": api.base_file_url,
            "poll_timeout": 2,
            "max_retries": 2,
            "send_retry_delay": 0.05,
            "typing_interval": 0.2,
            **telegram,
        },
        storage={"path": str(db)},
        limits={**LOOSE_LIMITS, **(limits or {})},
    )


@dataclass
class Bot:
    api: FakeBotAPI
    core: BotCore
    storage: Storage
    generator: FakeGenerator
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def reply_to(self, message: dict[str, Any], timeout: float = WAIT_TIMEOUT_S) -> ApiCall:
        """The bot's sendMessage answering `message`."""
        return await self.api.wait_for("sendMessage", lambda c: c.replies_to(message), timeout)

    async def punchline_for(
        self, chat: dict[str, Any], user: dict[str, Any], text: str = SETUP
    ) -> tuple[dict[str, Any], int]:
        """Ask in `chat` (``/joke`` in groups); returns the bot's message and its reply id."""
        if chat["type"] != "private":
            text = f"/joke {text}"
        asked = self.api.push_message(chat, user, text)
        call = await self.reply_to(asked)
        return call.result, await self.linked(call)

    async def linked(self, call: ApiCall) -> int:
        """Wait until the core linked the sent message to its reply (just after sending); the
        reply's id."""
        ref = MessageRef(tg_chat(call.result["chat"]), str(call.result["message_id"]))

        async def found() -> bool:
            return await self.storage.requests.find_reply(ref) is not None

        await eventually(found)
        reply = await self.storage.requests.find_reply(ref)
        assert reply is not None
        return reply.id


def tg_chat(chat: dict[str, Any]) -> ChatRef:
    kind = {"private": ChatKind.PRIVATE, "channel": ChatKind.CHANNEL}.get(chat["type"], ChatKind.GROUP)
    return ChatRef(Platform.TELEGRAM, str(chat["id"]), kind)


def tg_user(user: dict[str, Any]) -> UserRef:
    return UserRef(Platform.TELEGRAM, str(user["id"]))


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = WAIT_TIMEOUT_S) -> None:
    """Poll an async condition (for effects that make no API call, e.g. a stored reaction)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_bot(
    api: FakeBotAPI,
    db: Path,
    core_class: type[BotCore] = BotCore,
    *,
    with_battles: bool = False,
    limits: dict[str, Any] | None = None,
    inline: dict[str, Any] | None = None,
    **telegram: Any,
) -> AsyncIterator[Bot]:
    """The Telegram front-end polling `api`, over a real core and SQLite file, until exit.

    `telegram` overrides Telegram settings (e.g. ``admin_ids=[...]``), `limits` the loose
    `LOOSE_LIMITS`, `inline` the inline settings."""
    settings = make_settings(api, db, limits, inline, **telegram)
    storage = await Storage.open(settings.storage.path)
    generator = FakeGenerator([PUNCHLINE])
    clock = SystemClock()
    core = core_class(settings, storage, generator, clock)
    battles = None
    if with_battles:
        from bot.battles.service import BattleService

        battles = BattleService(settings, storage, generator, clock, core.access)
    application = build_application(settings, core, battles)
    stop = asyncio.Event()
    task = asyncio.create_task(run_telegram(application, stop))
    try:
        await api.wait_for("getUpdates")
        yield Bot(api, core, storage, generator, stop, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_TIMEOUT_S)
        await storage.close()
