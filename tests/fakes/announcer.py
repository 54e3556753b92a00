"""A battle announcer that records what the battles show, and can fail like a platform."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.battles.models import View
from bot.types import ChatRef


@dataclass
class Posted:
    chat_id: str
    message_id: str
    view: View
    edits: list[View] = field(default_factory=list)
    deleted: bool = False

    @property
    def text(self) -> str:
        return (self.edits[-1] if self.edits else self.view).text

    @property
    def buttons(self) -> tuple:
        return (self.edits[-1] if self.edits else self.view).buttons


class FakeAnnouncer:
    """Records what the service shows; `fail = True` makes every call fail like a platform
    error (the service must carry on)."""

    def __init__(self) -> None:
        self.posts: list[Posted] = []
        self.fail = False
        self._next = 100
        self.changed = asyncio.Event()

    async def post(self, chat: ChatRef, view: View) -> str | None:
        if self.fail:
            raise RuntimeError("Forbidden: bot can't send messages here")
        self._next += 1
        self.posts.append(Posted(chat.chat_id, str(self._next), view))
        self.changed.set()
        return str(self._next)

    async def edit(self, chat: ChatRef, message_id: str, view: View) -> bool:
        if self.fail:
            raise RuntimeError("Bad Request: message to edit not found")
        self.get(message_id).edits.append(view)
        self.changed.set()
        return True

    async def delete(self, chat: ChatRef, message_id: str) -> bool:
        if self.fail:
            raise RuntimeError("Bad Request: message can't be deleted")
        self.get(message_id).deleted = True
        return True

    def get(self, message_id: str) -> Posted:
        return next(p for p in self.posts if p.message_id == message_id)

    def find(self, needle: str) -> list[Posted]:
        return [p for p in self.posts if needle in p.view.text]

    async def wait_for(self, needle: str, timeout: float = 30.0) -> Posted:
        async def poll() -> Posted:
            while True:
                found = self.find(needle)
                if found:
                    return found[-1]
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(poll(), timeout)
