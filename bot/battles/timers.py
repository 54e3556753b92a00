"""When rounds move on: one asyncio timer per open round, re-armed after every phase change.

Deadlines live in the database (docs/DESIGN.md, decision 8), so `resume()` re-arms every open
round after a restart. A phase whose deadline passed while the bot was down closes after a
short grace (`resume_grace_s`): the platform kept the updates sent meanwhile, and entries and
votes sent before the deadline (by the platform's clock) must count when they are read. It
closes in a task, so a front-end still connecting does not hold up start-up. Tests move a manual
clock and call `advance_due()` instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from datetime import datetime, timedelta

from bot.battles import state
from bot.battles.models import AuthorKind, Battle, Phase
from bot.battles.rounds import Rounds

log = logging.getLogger(__name__)

# How long close() lets a phase change under way finish (its messages being posted).
CLOSE_GRACE_S = 10.0
# Timers sleep at most this long between looks at the clock.
MAX_TIMER_SLEEP_S = 60.0
# A phase change that failed (the database locked by another process, a full disk) is tried
# again after this, doubling up to the cap, until it goes through.
RETRY_S = 1.0
MAX_RETRY_S = 60.0
# At start-up, results of rounds finished this recently that never went out are posted.
RESULTS_RECOVERY = timedelta(days=1)


class RoundTimers:
    """Arms, re-arms and stops the timers of open rounds."""

    def __init__(self, rounds: Rounds, retry_s: float = RETRY_S, resume_grace_s: float = 0.0):
        self.rounds = rounds
        self.retry_s = retry_s
        self.resume_grace_s = resume_grace_s
        self._timers: dict[int, asyncio.Task[None]] = {}
        self._kicks: set[asyncio.Task[bool]] = set()  # referenced so they are not collected
        self._reposts: dict[int, asyncio.Task[None]] = {}
        self._busy: set[int] = set()  # rounds whose phase is changing right now
        self._held: set[int] = set()  # rounds in their resume grace: late actions do not kick
        self._closed = False

    async def resume(self) -> list[int]:
        """Re-arm every open round of the attached platforms after a start-up; a round still
        taking entries gets the bot's entry if it had none. Returns the resumed ids."""
        storage = self.rounds.storage
        battles = await storage.battles.open_battles(self.rounds.announcers)
        now = self.rounds.clock.now()
        for battle in battles:
            if battle.phase is Phase.ENTRY and now < battle.entry_deadline:
                entries = await storage.battle_entries.entries(battle.id)
                if not any(e.kind is AuthorKind.BOT for e in entries):
                    self.rounds.start_bot_entry(battle)
            self.schedule(battle, hold_s=self.resume_grace_s)
            self.ensure_posted(battle.id)
        for finished in await storage.battles.unannounced_results(now - RESULTS_RECOVERY):
            if finished.chat.platform in self.rounds.announcers:
                self.ensure_posted(finished.id)
        if battles:
            log.info("resumed battles %s", ", ".join(str(b.id) for b in battles))
        return [b.id for b in battles]

    async def advance_due(self) -> list[int]:
        """Close every phase whose deadline has passed now; the ids of the rounds moved on."""
        moved = []
        for battle in await self.rounds.storage.battles.open_battles(self.rounds.announcers):
            if state.is_due(battle, self.rounds.clock.now()) and await self._advance(battle):
                moved.append(battle.id)
        return moved

    def schedule(self, battle: Battle, hold_s: float = 0.0) -> None:
        """(Re)arm the round's timer for its current deadline, but not to fire in the next
        `hold_s` seconds."""
        if self._closed or battle.deadline is None:
            return
        old = self._timers.get(battle.id)
        if old is not None and old is not asyncio.current_task() and not old.done():
            old.cancel()
        task = asyncio.create_task(
            self._timer(battle.id, battle.deadline, hold_s), name=f"battle-{battle.id}-timer"
        )
        self._timers[battle.id] = task
        task.add_done_callback(functools.partial(self._drop_timer, battle.id))

    def ensure_posted(self, battle_id: int) -> None:
        """Post the round's message for its phase if it is missing, trying again with backoff
        until it is there (or the round moved on)."""
        if self._closed or (battle_id in self._reposts and not self._reposts[battle_id].done()):
            return
        task = asyncio.create_task(self._repost(battle_id), name=f"battle-{battle_id}-repost")
        self._reposts[battle_id] = task

    async def _repost(self, battle_id: int) -> None:
        delay = self.retry_s
        while not self._closed:
            try:
                if await self.rounds.post_missing(battle_id):
                    return
                log.warning("battle %d: its message did not go out; trying again in %.1f s", battle_id, delay)
            except Exception:
                log.exception(
                    "battle %d: posting its message failed; trying again in %.1f s", battle_id, delay
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_S)

    def stop(self, battle_id: int) -> None:
        """The round ended: its timer has nothing left to do."""
        task = self._timers.get(battle_id)
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    def kick_if_due(self, battle: Battle, now: datetime) -> None:
        """Someone acted after the deadline before the timer fired: move the round on now."""
        if state.is_due(battle, now) and not self._closed and battle.id not in self._held:
            task = asyncio.create_task(self._advance(battle), name=f"battle-{battle.id}-kick")
            self._kicks.add(task)
            task.add_done_callback(self._kicks.discard)

    async def close(self, grace: float = CLOSE_GRACE_S) -> None:
        """Stop every timer; a phase change under way gets `grace` seconds to finish, so its
        messages are not cut off half-way. Rounds stay in the database."""
        self._closed = True
        changing = [t for bid, t in self._timers.items() if bid in self._busy] + list(self._kicks)
        if changing:
            await asyncio.wait(changing, timeout=grace)
        tasks = [*self._timers.values(), *self._kicks, *self._reposts.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._timers.clear()
        self._kicks.clear()
        self._reposts.clear()

    async def _advance(self, battle: Battle) -> bool:
        """Advance one round; re-arm it if it is still open, and see its new message out. True
        when its phase changed."""
        after = await self.rounds.advance(battle.id)
        if after is not None and after.phase.is_open:
            self.schedule(after)
        if after is not None and after.phase is not battle.phase and after.message_for_phase is None:
            self.ensure_posted(after.id)
        return after is not None and after.phase is not battle.phase

    async def _timer(self, battle_id: int, deadline: datetime, hold_s: float = 0.0) -> None:
        clock = self.rounds.clock
        if hold_s > 0:
            self._held.add(battle_id)
            try:
                await asyncio.sleep(hold_s)
            finally:
                self._held.discard(battle_id)
        while (left := (deadline - clock.now()).total_seconds()) > 0:
            await asyncio.sleep(min(left, MAX_TIMER_SLEEP_S))
        delay = self.retry_s
        while not self._closed:
            self._busy.add(battle_id)
            try:
                battle = await self.rounds.storage.battles.get(battle_id)
                if battle is not None:
                    await self._advance(battle)
                return
            except Exception:
                # The round must not stay stuck: log, wait, try again until it goes through.
                log.exception(
                    "battle %d: moving the round on failed; trying again in %.0f s", battle_id, delay
                )
            finally:
                self._busy.discard(battle_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_S)

    def _drop_timer(self, battle_id: int, task: asyncio.Task[None]) -> None:
        if self._timers.get(battle_id) is task:
            del self._timers[battle_id]
