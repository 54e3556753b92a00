"""The phase changes of a round and the messages that go with them.

entry ──(entry deadline, enough players)──> voting ──(vote deadline)──> finished
  │  └─(entry deadline, too few players)──> too_few
  └──────────────(/cancel, either open phase)──────────────────────────> cancelled

`Rounds.advance(battle_id)` moves a round whose deadline has passed to its next phase, posts
what the chat must see (the ballot, the results, or why the round ended) and takes the buttons
off the message of the phase that ended. It also runs the bot's own entry while a round takes
entries. When things happen is the timers' business (`bot.battles.timers`).

Announcer failures (no rights, deleted messages) are logged and the round carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from bot.battles import state, views
from bot.battles.elo import apply_round
from bot.battles.models import AuthorKind, Battle, Entry, EntryResult, Phase, RoundResult, View
from bot.battles.player import BotPlayer
from bot.battles.scoring import ScoringRules, bot_outcome, score_round
from bot.clock import Clock
from bot.storage import Storage
from bot.types import ChatRef, Platform, UserRef
from config.settings import BattleSettings

log = logging.getLogger(__name__)

# How long the end of the entry phase waits for the bot's own entry still being generated.
BOT_ENTRY_GRACE_S = 5.0

T = TypeVar("T")


class Announcer(Protocol):
    """Posts a platform's battle messages. Implementations catch their platform's errors and
    return None / False instead of raising (a missing right must not break a round)."""

    async def post(self, chat: ChatRef, view: View) -> str | None:
        """Send a message; its platform id, or None when it could not be sent."""
        ...

    async def edit(self, chat: ChatRef, message_id: str, view: View) -> bool:
        """Replace a message's text and buttons (no buttons: remove them)."""
        ...

    async def delete(self, chat: ChatRef, message_id: str) -> bool:
        """Delete a message (e.g. a reply entry, so voting stays anonymous)."""
        ...


class Rounds:
    """Phase changes, announcements and the bot's entries, for every platform."""

    def __init__(
        self,
        settings: BattleSettings,
        storage: Storage,
        player: BotPlayer,
        clock: Clock,
        rng: random.Random,
    ):
        self.settings = settings
        self.storage = storage
        self.player = player
        self.clock = clock
        self.rng = rng
        self.rules = ScoringRules(settings.vote_points, settings.win_bonus, settings.unanimous_bonus)
        self.announcers: dict[Platform, Announcer] = {}
        self._locks: dict[int, asyncio.Lock] = {}  # per battle: phase changes, entries, votes
        self._bot_tasks: dict[int, asyncio.Task[None]] = {}
        self.closed = False

    # -- locks ----------------------------------------------------------------------------------

    def lock(self, battle_id: int) -> asyncio.Lock:
        """The lock that orders a round's phase changes, entries and votes."""
        return self._locks.setdefault(battle_id, asyncio.Lock())

    def forget(self, battle_id: int) -> None:
        """The round ended: stop its bot entry and drop its lock (later callers find it ended
        in the database)."""
        self._locks.pop(battle_id, None)
        task = self._bot_tasks.get(battle_id)
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    # -- announcements --------------------------------------------------------------------------

    async def announce(self, chat: ChatRef, action: Callable[[Announcer], Awaitable[T]]) -> T | None:
        """Run an announcer call; a failure is logged and never breaks the round."""
        announcer = self.announcers.get(chat.platform)
        if announcer is None:
            log.warning("no announcer for %s: a battle message was not shown", chat.platform)
            return None
        try:
            return await action(announcer)
        except Exception:
            log.exception("a battle message could not be shown in %s/%s", chat.platform, chat.chat_id)
            return None

    async def post(self, battle: Battle, view: View, which: str) -> None:
        """Post `view` in the round's chat and remember the message as its `which` message."""
        message_id = await self.announce(battle.chat, lambda a: a.post(battle.chat, view))
        if message_id is not None:
            await self.storage.battles.set_message(battle.id, which, message_id)

    async def post_announcement(self, battle: Battle) -> None:
        entries = await self.storage.battle_entries.entries(battle.id)
        view = views.entry_view(battle, entries, self.clock.now(), self.settings.max_entry_chars)
        await self.post(battle, view, "entry")

    async def refresh_announcement(self, battle_id: int) -> None:
        """Show the new player in the announcement (names only, never texts)."""
        battle = await self.storage.battles.get(battle_id)
        if battle is None or battle.entry_message_id is None or battle.phase is not Phase.ENTRY:
            return
        entries = await self.storage.battle_entries.entries(battle.id)
        view = views.entry_view(battle, entries, self.clock.now(), self.settings.max_entry_chars)
        mid = battle.entry_message_id
        await self.announce(battle.chat, lambda a: a.edit(battle.chat, mid, view))

    async def close_buttons(self, battle: Battle, entries: list[Entry]) -> None:
        """Take the buttons off the message of the phase that just ended (`battle` as it was
        in that phase)."""
        if battle.phase is Phase.ENTRY and battle.entry_message_id is not None:
            view = views.entries_closed_view(battle, entries)
            mid = battle.entry_message_id
            await self.announce(battle.chat, lambda a: a.edit(battle.chat, mid, view))
        if battle.phase is Phase.VOTING and battle.vote_message_id is not None:
            view = views.ballot_closed_view(battle, entries)
            vid = battle.vote_message_id
            await self.announce(battle.chat, lambda a: a.edit(battle.chat, vid, view))

    # -- phase changes --------------------------------------------------------------------------

    async def advance(self, battle_id: int) -> Battle | None:
        """Move one round on if its phase is due; the round as it stands afterwards (None for an
        unknown round). Callers re-arm the timer of a round that is still open."""
        await self._await_bot_entry(battle_id)
        async with self.lock(battle_id):
            battle = await self.storage.battles.get(battle_id)
            if battle is None or not battle.phase.is_open or not state.is_due(battle, self.clock.now()):
                return battle
            if battle.phase is Phase.ENTRY:
                await self._close_entry(battle)
            else:
                await self._finish(battle)
            return await self.storage.battles.get(battle_id)

    async def cancel(self, battle_id: int, by: UserRef) -> Battle | None:
        """End an open round as cancelled by `by`; the ended round, None if it was not open."""
        async with self.lock(battle_id):
            battle = await self.storage.battles.get(battle_id)
            if battle is None or not battle.phase.is_open:
                return None
            if not await self.storage.battles.end(battle.id, Phase.CANCELLED, self.clock.now(), by.user_id):
                return None
            self.forget(battle.id)
            await self.close_buttons(battle, await self.storage.battle_entries.entries(battle.id))
            name = by.name or "someone"
            await self.announce(
                battle.chat, lambda a: a.post(battle.chat, views.cancelled_view(battle, name))
            )
        log.info("battle %d cancelled by %s", battle.id, by.user_id)
        return battle

    async def _close_entry(self, battle: Battle) -> None:
        entries = await self.storage.battle_entries.entries(battle.id)
        now = self.clock.now()
        decision = state.close_entry(
            battle, entries, now, self.settings.vote_seconds, self.settings.min_players, self.rng
        )
        # Each phase change is written only if the round is still where it was, so when two
        # bot processes (one Telegram token, a broker) both time it, one moves it and posts.
        if decision.phase is Phase.TOO_FEW:
            if not await self.storage.battles.end(battle.id, Phase.TOO_FEW, now):
                return
            self.forget(battle.id)
            await self.close_buttons(battle, entries)
            view = views.too_few_view(battle, decision.players, self.settings.min_players)
            await self.announce(battle.chat, lambda a: a.post(battle.chat, view))
            log.info("battle %d ended: %d players", battle.id, decision.players)
            return
        assert decision.vote_deadline is not None
        if not await self.storage.battles.open_voting(battle.id, decision.vote_deadline, decision.positions):
            return
        voting = await self.storage.battles.get(battle.id)
        assert voting is not None
        entries = await self.storage.battle_entries.entries(battle.id)
        await self.close_buttons(battle, entries)
        await self.post(voting, views.ballot_view(voting, entries, now), "vote")
        log.info("battle %d voting with %d entries", battle.id, len(entries))

    async def _finish(self, battle: Battle) -> None:
        entries = await self.storage.battle_entries.entries(battle.id)
        counts = await self.storage.battle_entries.vote_counts(battle.id)
        score = score_round(entries, counts, self.rules)
        outcome = bot_outcome(entries, score)
        bot_points = {
            e.version: score.of(e.id).points
            for e in entries
            if e.kind is AuthorKind.BOT and e.version is not None
        }
        elo = []
        if len(bot_points) >= 2 and score.total_votes > 0:
            table = {r.version: r for r in await self.storage.battle_results.elo_table()}
            elo = list(apply_round(table, bot_points).values())
        if not await self.storage.battles.finish(battle.id, self.clock.now(), score, outcome, elo):
            return
        self.forget(battle.id)
        await self.close_buttons(battle, entries)
        finished = await self.storage.battles.get(battle.id)
        assert finished is not None
        await self._post_results(finished)
        log.info("battle %d finished: %d votes, outcome %s", battle.id, score.total_votes, outcome)

    async def _post_results(self, finished: Battle) -> None:
        """The results message of a finished round, from what the database holds."""
        entries = await self.storage.battle_entries.entries(finished.id)
        scores = {s.entry_id: s for s in await self.storage.battle_entries.scores(finished.id)}
        total = sum(s.votes for s in scores.values())
        winner = next((s for s in scores.values() if s.won), None)
        result = RoundResult(
            finished,
            tuple(EntryResult(e, scores[e.id]) for e in entries if e.id in scores),
            total,
            winner is not None and winner.votes == total and total >= 2,
            finished.bot_outcome,
        )
        tally = await self.storage.battle_results.bot_tally(finished.chat.platform, finished.chat.chat_id)
        await self.post(finished, views.results_view(result, tally), "result")

    async def post_missing(self, battle_id: int) -> bool:
        """Post the round's message for its phase if it was never posted (a failed post, or a
        crash between the phase change and the post); True when nothing is missing. A message
        that was recorded as sent is never posted again."""
        async with self.lock(battle_id):
            battle = await self.storage.battles.get(battle_id)
            if battle is None or battle.phase in (Phase.CANCELLED, Phase.TOO_FEW):
                return True
            if battle.phase is Phase.ENTRY and battle.entry_message_id is None:
                await self.post_announcement(battle)
            elif battle.phase is Phase.VOTING and battle.vote_message_id is None:
                entries = await self.storage.battle_entries.entries(battle.id)
                await self.post(battle, views.ballot_view(battle, entries, self.clock.now()), "vote")
            elif battle.phase is Phase.FINISHED and battle.result_message_id is None:
                await self._post_results(battle)
            else:
                return True
            after = await self.storage.battles.get(battle_id)
            return after is not None and after.message_for_phase is not None

    # -- the bot's entry --------------------------------------------------------------------------

    def start_bot_entry(self, battle: Battle) -> None:
        """Let the bot enter the round (in a task: generating takes a while)."""
        if self.closed or not self.player.plays:
            return
        running = self._bot_tasks.get(battle.id)
        if running is not None and not running.done():
            return
        task = asyncio.create_task(self._bot_entry(battle), name=f"battle-{battle.id}-bot")
        self._bot_tasks[battle.id] = task
        task.add_done_callback(functools.partial(self._drop_bot_task, battle.id))

    def _drop_bot_task(self, battle_id: int, task: asyncio.Task[None]) -> None:
        if self._bot_tasks.get(battle_id) is task:
            del self._bot_tasks[battle_id]

    async def _bot_entry(self, battle: Battle) -> None:
        """Store the bot's punchline(s) as they come, while the round takes entries."""
        async for punchline in self.player.punchlines(battle):
            async with self.lock(battle.id):
                current = await self.storage.battles.get(battle.id)
                if current is None or current.phase is not Phase.ENTRY:
                    return  # too late: the round moved on while the bot was thinking
                try:
                    reply_id = await self.player.record_reply(battle, punchline)
                    added = await self.storage.battle_entries.add_machine_entry(
                        battle.id,
                        AuthorKind.BOT,
                        punchline.text,
                        self.clock.now(),
                        version=punchline.version,
                        reply_id=reply_id,
                    )
                except Exception:
                    log.exception("battle %d: storing the bot's entry failed", battle.id)
                    continue
                if added:
                    await self.refresh_announcement(battle.id)

    async def _await_bot_entry(self, battle_id: int) -> None:
        """Give the bot's entry still being generated a moment past the entry deadline (its
        generator deadline is that deadline), then give up on it. Called without the lock:
        the bot's entry takes the lock to store itself."""
        task = self._bot_tasks.get(battle_id)
        if task is None or task.done() or task is asyncio.current_task():
            return
        battle = await self.storage.battles.get(battle_id)
        if battle is None or battle.phase is not Phase.ENTRY or not state.is_due(battle, self.clock.now()):
            return
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(task), BOT_ENTRY_GRACE_S)
        task.cancel()

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until the bot's entries being generated are stored (or given up)."""
        tasks = [t for t in self._bot_tasks.values() if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def close(self) -> None:
        """Stop the bot's entries being generated; rounds stay in the database."""
        self.closed = True
        tasks = list(self._bot_tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._bot_tasks.clear()
