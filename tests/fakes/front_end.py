"""A stand-in chat front-end for `run_serve`: it answers setups through the core until stopped."""

from __future__ import annotations

import asyncio

from bot.core.service import BotCore
from bot.runtime import Runtime
from bot.serve import FrontEnd
from bot.types import ChatKind, ChatRef, IncomingSetup, OutgoingReply, Platform, UserRef

CHAT = ChatRef(Platform.TELEGRAM, "1", ChatKind.PRIVATE)
USER = UserRef(Platform.TELEGRAM, "1", "Ann")


class FakeFrontEnd:
    """Stands in for a chat front-end: answers setups through the core until stop."""

    def __init__(self, setups: list[str] = (), fail: Exception | None = None):
        self.setups = list(setups)
        self.fail = fail
        self.replies: list[OutgoingReply] = []
        self.core: BotCore | None = None
        self.battles = "unset"
        self.started = asyncio.Event()
        self.stopped = False

    def factory(self, runtime: Runtime) -> list[FrontEnd]:
        self.core, self.battles = runtime.core, runtime.battles
        return [FrontEnd("fake", self.run)]

    async def run(self, stop: asyncio.Event) -> None:
        handlers = [asyncio.create_task(self._answer(text)) for text in self.setups]
        self.started.set()
        if self.fail is not None:
            raise self.fail
        await stop.wait()
        await asyncio.gather(*handlers)  # like PTB: finish the updates in progress
        self.stopped = True

    async def _answer(self, text: str) -> None:
        assert self.core is not None
        reply = await self.core.handle_setup(IncomingSetup(CHAT, USER, text, True))
        if reply is not None:
            self.replies.append(reply)
