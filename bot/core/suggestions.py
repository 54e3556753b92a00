"""Setups the bot offers itself: `/joke` without a setup ("tell me a joke") and an empty inline
query. They come from the setup pool (`PUNCHLINE_BATTLES__SETUPS`, handed in as a function so
the core needs nothing of battles), else from a short built-in list, so "tell me a joke" works
on a bot with no data file configured.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

from config.errors import PunchlineError

log = logging.getLogger(__name__)

# Clean, well-known question setups: a bot without a pool still has something to answer.
BUILT_IN: tuple[str, ...] = (
    "Why did the scarecrow win an award?",
    "Why don't skeletons fight each other?",
    "What do you call a fake noodle?",
    "Why did the bicycle fall over?",
    "What do you call a bear with no teeth?",
    "Why can't you give Elsa a balloon?",
    "What do you call a fish wearing a bowtie?",
    "Why did the math book look so sad?",
    "What do you call cheese that isn't yours?",
    "Why did the golfer bring two pairs of pants?",
    "How does a penguin build its house?",
    "Why don't eggs tell jokes?",
    "What do you call a sleeping dinosaur?",
    "Why did the cookie go to the doctor?",
    "What do you call a pile of cats?",
    "Why do cows wear bells?",
    "What did the ocean say to the beach?",
    "Why did the tomato turn red?",
    "How do you organize a space party?",
    "Why are frogs so happy?",
    "What do you call a dog magician?",
    "Why did the computer go to the doctor?",
    "What do you call an alligator in a vest?",
    "Why did the stadium get hot after the game?",
    "Why do bees have sticky hair?",
    "What did one wall say to the other wall?",
    "Why did the coffee file a police report?",
    "What do you call a belt made of watches?",
    "Why don't oysters share their pearls?",
    "Why do Yoda's jokes always suck?",
)
RECENT_PER_CHAT = 20  # a chat does not get the same setup again within this many picks
MAX_CHATS = 10_000  # chats remembered for that; the least recently served is forgotten first


class SetupSuggestions:
    """Setups to offer, never the same one twice in a row in a chat."""

    def __init__(self, source: Callable[[], Sequence[str]] | None = None, rng: random.Random | None = None):
        """`source()` returns the pool's setups (it may read a file: it runs in a thread, once);
        a `PunchlineError` from it is logged and the built-in list is used."""
        self.source = source
        self.rng = rng or random.Random()
        self._setups: Sequence[str] | None = None
        self._recent: OrderedDict[str, deque[str]] = OrderedDict()

    async def setups(self) -> Sequence[str]:
        """The setups on offer, read from the source the first time (never raises)."""
        if self._setups is None:
            self._setups = await self._load()
        return self._setups

    async def _load(self) -> Sequence[str]:
        if self.source is not None:
            try:
                found = await asyncio.to_thread(self.source)
            except PunchlineError as exc:
                log.error("the setup pool cannot be read (%s); offering the built-in setups", exc)
            else:
                if found:
                    return list(found)
        return BUILT_IN

    async def pick(self, chat_key: str) -> str:
        """One setup for a chat, not one of its recent ones (while others are left)."""
        setups = await self.setups()
        recent = self._recent.pop(chat_key, None) or deque(maxlen=RECENT_PER_CHAT)
        fresh = [s for s in setups if s not in recent]
        chosen = self.rng.choice(fresh or list(setups))
        recent.append(chosen)
        self._recent[chat_key] = recent
        while len(self._recent) > MAX_CHATS:
            self._recent.popitem(last=False)
        return chosen

    async def few(self, n: int) -> list[str]:
        """`n` different setups (fewer when the pool is smaller)."""
        setups = await self.setups()
        return self.rng.sample(list(setups), min(n, len(setups)))
