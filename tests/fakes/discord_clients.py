"""Discord clients that pretend to connect: one idles like a healthy gateway, one fails."""

from __future__ import annotations

import asyncio

from bot.discord.client import PunchlineDiscord


class IdleClient(PunchlineDiscord):
    """Connects (pretend) and idles until closed, like a healthy gateway connection."""

    started_with: str | None = None

    async def start(self, token: str, *, reconnect: bool = True) -> None:
        self.started_with = token
        while not self.is_closed():
            await asyncio.sleep(0.01)


class FailingClient(PunchlineDiscord):
    error: BaseException = RuntimeError("unset")

    async def start(self, token: str, *, reconnect: bool = True) -> None:
        await asyncio.sleep(0)
        raise self.error
