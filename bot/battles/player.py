"""The bot as a contestant: its punchline(s) for a round, from the generator.

With one adapter version loaded the bot plays once (the current version); with several, up to
`battles.bot_versions` of them play, each entry carrying its version, so the votes decide
between versions (the Elo table). Each punchline is also stored as a core reply with the setup
as its request, so votes for it become ratings of that punchline and version.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bot.battles import state
from bot.battles.models import Battle
from bot.battles.state import Refusal
from bot.clock import Clock
from bot.core.family import FamilyGuard
from bot.storage import Storage
from config.settings import BattleSettings
from model.types import GenerationError, Generator

log = logging.getLogger(__name__)

FAMILY_CANDIDATES = 3  # in a family chat: a few, so that a clean one likely survives the filter


@dataclass(frozen=True, slots=True)
class BotPunchline:
    text: str  # cleaned, within the entry limit
    version: str
    score: float


class BotPlayer:
    """Generates the bot's entries and records them as replies."""

    def __init__(
        self,
        settings: BattleSettings,
        storage: Storage,
        generator: Generator,
        clock: Clock,
        family: FamilyGuard,
    ):
        """`family` screens the bot's entries in family chats, as the core screens replies."""
        self.settings = settings
        self.storage = storage
        self.generator = generator
        self.clock = clock
        self.family = family

    @property
    def plays(self) -> bool:
        return self.settings.bot_versions > 0

    def versions(self) -> list[str | None]:
        """None plays the current version; with several loaded, up to `bot_versions` play."""
        try:
            loaded = list(self.generator.versions)
        except Exception:
            loaded = []
        if len(loaded) >= 2 and self.settings.bot_versions >= 2:
            return list(loaded[: self.settings.bot_versions])
        return [None]

    async def punchlines(self, battle: Battle) -> AsyncIterator[BotPunchline]:
        """The bot's punchlines for `battle`, one per version, each as soon as it is ready.

        Each request's deadline is the round's entry deadline; a version that fails, runs out
        of time or says nothing playable is left out (logged), never raised.
        """
        family = await self.family.desk.is_family(battle.chat)
        for version in self.versions():
            left = (battle.entry_deadline - self.clock.now()).total_seconds()
            if left <= 0:
                return
            deadline = self.clock.monotonic() + left
            try:
                if family:
                    lines = await self.family.screen.punchlines(
                        self.generator, battle.setup, FAMILY_CANDIDATES, deadline, version
                    )
                else:
                    lines = await self.generator.punchlines(
                        battle.setup, n=1, deadline=deadline, version=version
                    )
            except GenerationError as exc:
                log.warning("battle %d: the bot has no entry (%s)", battle.id, exc)
                continue
            except Exception:
                log.exception("battle %d: generating the bot's entry failed", battle.id)
                continue
            if not lines:
                continue
            text = state.clean_entry(lines[0].text, self.settings.max_entry_chars)
            if isinstance(text, Refusal):
                log.info("battle %d: the bot's punchline cannot play (%s)", battle.id, text.reason)
                continue
            yield BotPunchline(text, lines[0].version, lines[0].score)

    async def record_reply(self, battle: Battle, punchline: BotPunchline) -> int:
        """The punchline as a core reply (its request: the setup, asked by the starter)."""
        now = self.clock.now()
        request_id = await self.storage.requests.add(battle.chat, battle.starter, battle.setup, None, now)
        reply_id = await self.storage.requests.add_reply(
            request_id, battle.chat, punchline.text, punchline.version, punchline.score, now
        )
        await self.storage.requests.finish(request_id, "answered", now, detail=f"battle {battle.id}")
        return reply_id
