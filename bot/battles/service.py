"""`BattleService`: joke battles in group chats, platform-free.

Front-ends call `start`, `submit*`, `vote`, `cancel`, `leaderboard_text` and show the returned
`Answer`; the service posts, edits and deletes the round's messages through the `Announcer`
attached for each platform. Deadlines live in the database; one asyncio timer per open round
advances it (entry → voting → finished), and `resume()` re-arms them after a restart — a phase
whose deadline passed while the bot was down closes at once.

No method raises to a front-end for bad input; refusals are `Answer(ok=False)`. Announcer
failures (no rights, deleted messages) are logged and the round carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol, TypeVar

from bot.battles import state, views
from bot.battles.elo import apply_round, format_elo_table
from bot.battles.models import (
    Answer,
    RefusalReason,
    AuthorKind,
    Battle,
    Entry,
    EntryResult,
    Phase,
    RoundResult,
    SetupSource,
    View,
)
from bot.battles.player import BotPlayer
from bot.battles.pool import SetupPool, SetupPoolError
from bot.battles.scoring import ScoringRules, bot_outcome, score_round
from bot.battles.state import Refusal
from bot.battles.store import BattleStore
from bot.clock import Clock
from bot.storage import Storage
from bot.types import ChatKind, ChatRef, Platform, Rating, UserRef
from config.settings import Settings
from model.types import Generator

log = logging.getLogger(__name__)

BATTLE_SOURCE = "battle"  # the rating source of votes for the bot's entries
# How long the end of the entry phase waits for the bot's own entry still being generated.
BOT_ENTRY_GRACE_S = 5.0
MSG_NOT_PERMITTED = "Sorry, I can't play with you here."
REPLACED = "Replaced"  # how an accepted entry that replaced an earlier one is answered
# How long close() lets a phase change under way finish (its messages being posted).
CLOSE_GRACE_S = 10.0
# Timers sleep at most this long between looks at the clock.
MAX_TIMER_SLEEP_S = 60.0

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


class CoreHooks(Protocol):
    """What the battles need from `bot.core.BotCore`."""

    async def rate(
        self, reply_id: int, user: UserRef, rating: Rating | None, source: str = "button"
    ) -> str: ...

    def is_admin(self, user: UserRef) -> bool: ...

    def is_allowed(self, chat: ChatRef, user: UserRef) -> bool: ...


class BattleService:
    """Joke battles for every platform the bot runs on."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        generator: Generator,
        clock: Clock,
        pool: SetupPool | None = None,
        *,
        core: CoreHooks | None = None,
        rng: random.Random | None = None,
    ):
        """`core` rates the bot's entries on votes and knows the bot admins; `rng` shuffles
        ballots and picks setups (seed it in tests)."""
        self.settings = settings.battles
        self.max_setup_chars = settings.model.max_setup_chars
        self.storage = storage
        self.store = BattleStore(storage)
        self.generator = generator
        self.clock = clock
        self.player = BotPlayer(settings.battles, storage, generator, clock)
        self.pool = pool or SetupPool(
            settings.battles.setups, settings.model.max_setup_chars, settings.battles.max_entry_chars
        )
        self.core = core
        self.rng = rng or random.Random()
        self.rules = ScoringRules(
            self.settings.vote_points, self.settings.win_bonus, self.settings.unanimous_bonus
        )
        self._announcers: dict[Platform, Announcer] = {}
        self._locks: dict[int, asyncio.Lock] = {}  # per battle: phase changes, entries, votes
        self._chat_locks: dict[tuple[Platform, str], asyncio.Lock] = {}
        self._timers: dict[int, asyncio.Task[None]] = {}
        self._bot_tasks: dict[int, asyncio.Task[None]] = {}
        self._kicks: set[asyncio.Task[bool]] = set()  # referenced so they are not collected
        self._busy: set[int] = set()  # rounds whose phase is changing right now
        self._closed = False

    # -- wiring ---------------------------------------------------------------------------------

    def attach(self, platform: Platform, announcer: Announcer) -> None:
        """Use `announcer` for rounds on `platform` (front-ends call this in install_battles)."""
        self._announcers[platform] = announcer

    async def resume(self) -> list[int]:
        """Re-arm every open round of the attached platforms after a start-up.

        A phase whose deadline already passed closes at once (in a task, so a front-end that is
        still connecting does not hold up start-up); a round still taking entries gets the
        bot's entry if it had none. Returns the ids of the resumed rounds.
        """
        battles = await self.store.open_battles(self._announcers)
        now = self.clock.now()
        for battle in battles:
            if battle.phase is Phase.ENTRY and now < battle.entry_deadline:
                entries = await self.store.entries(battle.id)
                if not any(e.kind is AuthorKind.BOT for e in entries):
                    self._start_bot_entry(battle)
            self._schedule(battle)
        if battles:
            log.info("resumed battles %s", ", ".join(str(b.id) for b in battles))
        return [b.id for b in battles]

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until the bot's entries being generated are stored (or given up)."""
        tasks = [t for t in self._bot_tasks.values() if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def close(self, grace: float = CLOSE_GRACE_S) -> None:
        """Stop every timer and pending bot entry; the rounds stay in the database and
        `resume()` picks them up at the next start. A phase change under way gets `grace`
        seconds to finish, so its messages are not cut off half-way. Call it before closing
        the storage."""
        self._closed = True
        changing = [t for bid, t in self._timers.items() if bid in self._busy] + list(self._kicks)
        if changing:
            await asyncio.wait(changing, timeout=grace)
        tasks = [*self._timers.values(), *self._bot_tasks.values(), *self._kicks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._timers.clear()
        self._bot_tasks.clear()
        self._kicks.clear()

    def _permitted(self, chat: ChatRef, user: UserRef) -> bool:
        """The core's allow-lists (PUNCHLINE_*__ALLOWED_*) apply to battles too."""
        return self.core is None or self.core.is_allowed(chat, user)

    # -- commands -------------------------------------------------------------------------------

    async def start(self, chat: ChatRef, user: UserRef, setup: str | None = None) -> Answer:
        """`/battle [setup]`: start a round in a group, or say why not."""
        if chat.kind is not ChatKind.GROUP:
            return _refuse(
                "Battles are played in groups: add me to a group chat and send /battle there.",
                RefusalReason.NOT_A_GROUP,
            )
        if user.is_bot:
            return _refuse("Bots can't start battles.", RefusalReason.BOTS_CANNOT_PLAY)
        if not self._permitted(chat, user):
            return _refuse(MSG_NOT_PERMITTED, RefusalReason.NOT_PERMITTED)
        try:
            async with self._chat_lock(chat):
                return await self._start(chat, user, setup)
        except Exception:
            log.exception("could not start a battle in %s/%s", chat.platform, chat.chat_id)
            return _refuse("Something went wrong starting the battle — please try again.")

    async def _start(self, chat: ChatRef, user: UserRef, setup: str | None) -> Answer:
        running = await self.store.open_in_chat(chat.platform, chat.chat_id)
        if running is not None:
            return self._already_running(running)
        given = state.clean_setup(setup, self.max_setup_chars)
        if isinstance(given, Refusal):
            return _refusal(given)
        try:
            if given is not None:
                source = SetupSource.GIVEN
                found = await asyncio.to_thread(self.pool.lookup, given)
                text, classic = given, found.punchline if found else None
            else:
                source = SetupSource.POOL
                picked = await self._pick_setup(chat)
                if isinstance(picked, Answer):
                    return picked
                text, classic = picked
        except SetupPoolError as exc:
            log.error("battle setup pool: %s", exc)
            return _refuse(
                "My setup list can't be read right now. Give a setup yourself: "
                "/battle What do you call a fish with no eyes?",
                RefusalReason.NO_SETUP,
            )
        now = self.clock.now()
        battle = await self.store.create(
            chat,
            user,
            text,
            source,
            classic if self.settings.classic else None,
            now,
            state.entry_deadline(now, self.settings.entry_seconds),
        )
        if battle is None:  # lost a race with another /battle (e.g. another process)
            running = await self.store.open_in_chat(chat.platform, chat.chat_id)
            return self._already_running(running) if running else _refuse("Please try again.")
        if battle.classic:
            await self.store.add_machine_entry(battle.id, AuthorKind.CLASSIC, battle.classic, now)
        async with self._lock(battle.id):
            entries = await self.store.entries(battle.id)
            view = views.entry_view(battle, entries, now, self.settings.max_entry_chars)
            message_id = await self._announce(battle.chat, lambda a: a.post(battle.chat, view))
            if message_id is not None:
                await self.store.set_message(battle.id, "entry", message_id)
        self._start_bot_entry(battle)
        self._schedule(battle)
        log.info("battle %d started in %s/%s: %s", battle.id, chat.platform, chat.chat_id, text)
        return Answer(f"Battle #{battle.id} is on!", ok=True)

    async def _pick_setup(self, chat: ChatRef) -> tuple[str, str | None] | Answer:
        if not self.pool.configured:
            return _refuse(
                "Give me a setup to battle over, e.g. /battle What do you call a fish with no "
                "eyes? (My admin can also set PUNCHLINE_BATTLES__SETUPS to a joke file, and "
                "I'll pick setups myself.)",
                RefusalReason.NO_SETUP,
            )
        recent = await self.store.recent_setup_keys(
            chat.platform, chat.chat_id, self.settings.recent_setups
        )
        picked = await asyncio.to_thread(self.pool.pick, recent, self.rng)
        if picked is None:
            return _refuse(
                "My setup list is empty. Give a setup yourself: /battle What do you call a "
                "fish with no eyes?",
                RefusalReason.NO_SETUP,
            )
        return picked.setup, picked.punchline

    def _already_running(self, battle: Battle) -> Answer:
        deadline = battle.deadline
        left = (
            f" ({'entries' if battle.phase is Phase.ENTRY else 'voting'} close in "
            f"{views.span((deadline - self.clock.now()).total_seconds())})"
            if deadline
            else ""
        )
        return _refuse(
            f"Battle #{battle.id} is already running here: {battle.setup}{left}",
            RefusalReason.ALREADY_RUNNING,
        )

    async def cancel(self, chat: ChatRef, user: UserRef, chat_admin: bool = False) -> Answer:
        """`/cancel`: the starter, a bot admin or a chat admin (`chat_admin`, the front-end's
        verdict) ends the chat's open round."""
        try:
            battle = await self.store.open_in_chat(chat.platform, chat.chat_id)
            privileged = chat_admin or (self.core is not None and self.core.is_admin(user))
            refusal = state.check_cancel(battle, user, privileged)
            if refusal is not None:
                return _refusal(refusal)
            assert battle is not None
            async with self._lock(battle.id):
                battle = await self.store.get(battle.id)
                if battle is None or not battle.phase.is_open or not await self.store.end(
                    battle.id, Phase.CANCELLED, self.clock.now(), ended_by=user.user_id
                ):
                    return _refuse("That battle has just ended.", RefusalReason.NOTHING_RUNNING)
                self._stop_tasks(battle.id)
                entries = await self.store.entries(battle.id)
                await self._close_buttons(battle, entries)
                by = user.name or "someone"
                await self._announce(
                    battle.chat, lambda a: a.post(battle.chat, views.cancelled_view(battle, by))
                )
            log.info("battle %d cancelled by %s", battle.id, user.user_id)
            return Answer(f"Battle #{battle.id} cancelled.")
        except Exception:
            log.exception("could not cancel a battle in %s/%s", chat.platform, chat.chat_id)
            return _refuse("Something went wrong — please try again.")

    async def leaderboard_text(self, chat: ChatRef) -> str:
        """`/leaderboard`: the chat's players by points, the bot among them, and the tally."""
        try:
            rows = await self.store.leaderboard(chat.platform, chat.chat_id)
            tally = await self.store.bot_tally(chat.platform, chat.chat_id)
        except Exception:
            log.exception("could not read the leaderboard")
            return "The leaderboard is unavailable right now — please try again later."
        return views.leaderboard_text(rows, tally)

    async def elo_text(self) -> str:
        """The Elo table of adapter versions for /stats; empty when no versions have battled."""
        try:
            return format_elo_table(await self.store.elo_table())
        except Exception:
            log.exception("could not read the Elo table")
            return ""

    # -- entries --------------------------------------------------------------------------------

    async def submit(self, battle_id: int, user: UserRef, text: str | None) -> Answer:
        """A person's entry (a new one replaces theirs) while the round takes entries."""
        try:
            battle = await self.store.get(battle_id)
            if battle is None:
                return _refuse("That battle doesn't exist.", RefusalReason.UNKNOWN_BATTLE)
            return await self._submit(battle, user, text)
        except Exception:
            log.exception("could not store an entry for battle %d", battle_id)
            return _refuse("Couldn't save your punchline — please try again.")

    async def _submit(self, battle: Battle, user: UserRef, text: str | None) -> Answer:
        if not self._permitted(battle.chat, user):
            return _refuse(MSG_NOT_PERMITTED, RefusalReason.NOT_PERMITTED)
        now = self.clock.now()
        refusal = state.check_entry(battle, user, now)
        if refusal is not None:
            self._kick_if_due(battle, now)
            return _refusal(refusal)
        cleaned = state.clean_entry(text, self.settings.max_entry_chars)
        if isinstance(cleaned, Refusal):
            return _refusal(cleaned)
        async with self._lock(battle.id):
            try:
                replaced = await self.store.put_person_entry(battle.id, user, cleaned, now)
            except LookupError:
                return _refuse(
                    f"Too late: entries for battle #{battle.id} are closed.",
                    RefusalReason.ENTRIES_CLOSED,
                )
            if not replaced:
                await self._refresh_announcement(battle.id)
        if replaced:
            return Answer(f"{REPLACED} your punchline for battle #{battle.id}.")
        return Answer(f"Your punchline is in for battle #{battle.id}. Good luck!")

    async def entry_check(self, battle_id: int, user: UserRef) -> Answer:
        """Whether `user` could enter now (e.g. before opening an entry form); ok Answer if so."""
        try:
            battle = await self.store.get(battle_id)
            if battle is None:
                return _refuse("That battle doesn't exist.", RefusalReason.UNKNOWN_BATTLE)
            if not self._permitted(battle.chat, user):
                return _refuse(MSG_NOT_PERMITTED, RefusalReason.NOT_PERMITTED)
            refusal = state.check_entry(battle, user, self.clock.now())
            if refusal is not None:
                self._kick_if_due(battle, self.clock.now())
                return _refusal(refusal)
            return Answer(battle.setup)
        except Exception:
            log.exception("could not check an entry for battle %d", battle_id)
            return _refuse("Something went wrong — please try again.")

    async def submit_reply(
        self, chat: ChatRef, replied_message_id: str, user: UserRef, text: str | None
    ) -> Answer | None:
        """A reply to a round's announcement is an entry. None: not a reply to an announcement
        (the message is not for the battles)."""
        try:
            battle = await self.store.by_message(chat.platform, chat.chat_id, replied_message_id)
        except Exception:
            log.exception("could not look up a battle message")
            return None
        if battle is None or battle.entry_message_id != replied_message_id:
            return None
        return await self._submit(battle, user, text)

    async def begin_secret_entry(self, platform: Platform, battle_id: int, user: UserRef) -> Answer:
        """The private deep link was opened: the person's next private message is their entry."""
        try:
            battle = await self.store.get(battle_id)
            if battle is None or battle.chat.platform is not platform:
                return _refuse("That battle doesn't exist.", RefusalReason.UNKNOWN_BATTLE)
            refusal = state.check_entry(battle, user, self.clock.now())
            if refusal is not None:
                return _refusal(refusal)
            await self.store.set_pending(platform, user.user_id, battle.id, self.clock.now())
            return Answer(
                f"⚔️ Battle #{battle.id} in {battle.chat.title or 'your group'}\n"
                f"Setup: {battle.setup}\n\nSend me your punchline now, in one message "
                f"(at most {self.settings.max_entry_chars} characters). Nobody sees it before "
                "voting."
            )
        except Exception:
            log.exception("could not open a secret entry for battle %d", battle_id)
            return _refuse("Something went wrong — please try again.")

    async def submit_secret(self, platform: Platform, user: UserRef, text: str | None) -> Answer | None:
        """A private message after the deep link. None: the person has no entry pending (the
        message is an ordinary setup for the core)."""
        try:
            battle_id = await self.store.pending(platform, user.user_id)
            if battle_id is None:
                return None
            battle = await self.store.get(battle_id)
            if battle is None:
                await self.store.clear_pending(platform, user.user_id)
                return None
            answer = await self._submit(battle, user, text)
            # An empty or over-long entry keeps the slot open so they can send a better one.
            if answer.reason not in (RefusalReason.EMPTY_ENTRY, RefusalReason.LONG_ENTRY):
                await self.store.clear_pending(platform, user.user_id)
            return answer
        except Exception:
            log.exception("could not take a secret entry")
            return _refuse("Couldn't save your punchline — please try again.")

    async def cancel_secret_entry(self, platform: Platform, user: UserRef) -> Answer | None:
        """`/cancel` in the private chat drops a pending secret entry; None when there is none."""
        try:
            if await self.store.pending(platform, user.user_id) is None:
                return None
            await self.store.clear_pending(platform, user.user_id)
            return Answer("OK, I'm not waiting for a punchline from you any more.")
        except Exception:
            log.exception("could not cancel a secret entry")
            return None

    # -- votes ----------------------------------------------------------------------------------

    async def vote(
        self, battle_id: int, position: int, voter: UserRef, chat: ChatRef | None = None
    ) -> Answer:
        """A vote button: one vote per person and round, changeable, never for their own entry.

        `chat` is where the button was pressed; a payload naming another chat's round is
        refused (a forged button).
        """
        try:
            battle = await self.store.get(battle_id)
            if battle is None or (
                chat is not None
                and (battle.chat.platform, battle.chat.chat_id) != (chat.platform, chat.chat_id)
            ):
                return _refuse("That button isn't valid.", RefusalReason.UNKNOWN_BATTLE)
            if not self._permitted(battle.chat, voter):
                return _refuse(MSG_NOT_PERMITTED, RefusalReason.NOT_PERMITTED)
            now = self.clock.now()
            async with self._lock(battle.id):
                battle = await self.store.get(battle_id)
                assert battle is not None
                entries = await self.store.entries(battle.id)
                chosen = state.check_vote(battle, voter, entries, position, now)
                if isinstance(chosen, Refusal):
                    self._kick_if_due(battle, now)
                    return _refusal(chosen)
                try:
                    before = await self.store.put_vote(battle.id, voter, chosen.id, now)
                except LookupError:
                    return _refuse(
                        f"Battle #{battle.id} is over; votes are closed.", RefusalReason.VOTING_OVER
                    )
            if before == chosen.id:
                return Answer(f"You already voted for #{position}.")
            await self._rate_bot_entries(entries, voter, before, chosen)
            if before is None:
                return Answer(f"Vote counted for #{position}.")
            return Answer(f"Vote changed to #{position}.")
        except Exception:
            log.exception("could not store a vote in battle %d", battle_id)
            return _refuse("Couldn't count that vote — please try again.")

    async def _rate_bot_entries(
        self, entries: list[Entry], voter: UserRef, before: int | None, chosen: Entry
    ) -> None:
        """A vote for the bot's entry is a funny rating of that punchline; moving the vote
        away clears it."""
        if self.core is None:
            return
        previous = next((e for e in entries if e.id == before), None)
        if previous is not None and previous.kind is AuthorKind.BOT and previous.reply_id:
            await self.core.rate(previous.reply_id, voter, None, source=BATTLE_SOURCE)
        if chosen.kind is AuthorKind.BOT and chosen.reply_id:
            await self.core.rate(chosen.reply_id, voter, Rating.FUNNY, source=BATTLE_SOURCE)

    # -- phases ---------------------------------------------------------------------------------

    async def advance_due(self) -> list[int]:
        """Close every phase whose deadline has passed now; the ids of the rounds moved on.

        Timers call `_advance` themselves; this is for a clock moved by hand (tests) and
        anything else that wants the rounds brought up to date at once.
        """
        moved = []
        for battle in await self.store.open_battles(self._announcers):
            if state.is_due(battle, self.clock.now()) and await self._advance(battle.id):
                moved.append(battle.id)
        return moved

    async def _advance(self, battle_id: int) -> bool:
        """Move one round on if its phase is due; False if there was nothing to do."""
        await self._await_bot_entry(battle_id)
        async with self._lock(battle_id):
            battle = await self.store.get(battle_id)
            if battle is None or not battle.phase.is_open:
                return False
            if not state.is_due(battle, self.clock.now()):
                self._schedule(battle)
                return False
            if battle.phase is Phase.ENTRY:
                await self._close_entry(battle)
            else:
                await self._finish(battle)
            return True

    async def _await_bot_entry(self, battle_id: int) -> None:
        """Give the bot's entry still being generated a moment past the entry deadline (its
        generator deadline is that deadline), then give up on it. Called without the lock:
        the bot's entry takes the lock to store itself."""
        task = self._bot_tasks.get(battle_id)
        if task is None or task.done() or task is asyncio.current_task():
            return
        battle = await self.store.get(battle_id)
        if battle is None or battle.phase is not Phase.ENTRY:
            return
        if not state.is_due(battle, self.clock.now()):
            return
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(task), BOT_ENTRY_GRACE_S)
        task.cancel()

    async def _close_entry(self, battle: Battle) -> None:
        entries = await self.store.entries(battle.id)
        now = self.clock.now()
        decision = state.close_entry(
            battle, entries, now, self.settings.vote_seconds, self.settings.min_players, self.rng
        )
        if decision.phase is Phase.TOO_FEW:
            await self.store.end(battle.id, Phase.TOO_FEW, now)
            self._stop_tasks(battle.id)
            await self._close_buttons(battle, entries)
            view = views.too_few_view(battle, decision.players, self.settings.min_players)
            await self._announce(battle.chat, lambda a: a.post(battle.chat, view))
            log.info("battle %d ended: %d players", battle.id, decision.players)
            return
        assert decision.vote_deadline is not None
        await self.store.open_voting(battle.id, decision.vote_deadline, decision.positions)
        voting = await self.store.get(battle.id)
        assert voting is not None
        entries = await self.store.entries(battle.id)
        await self._close_buttons(battle, entries)
        ballot = views.ballot_view(voting, entries, now)
        message_id = await self._announce(voting.chat, lambda a: a.post(voting.chat, ballot))
        if message_id is not None:
            await self.store.set_message(voting.id, "vote", message_id)
        self._schedule(voting)
        log.info("battle %d voting with %d entries", battle.id, len(entries))

    async def _finish(self, battle: Battle) -> None:
        entries = await self.store.entries(battle.id)
        counts = await self.store.vote_counts(battle.id)
        score = score_round(entries, counts, self.rules)
        outcome = bot_outcome(entries, score)
        elo = []
        bot_points = {
            e.version: score.of(e.id).points
            for e in entries
            if e.kind is AuthorKind.BOT and e.version is not None
        }
        if len(bot_points) >= 2 and score.total_votes > 0:
            table = {r.version: r for r in await self.store.elo_table()}
            elo = list(apply_round(table, bot_points).values())
        now = self.clock.now()
        if not await self.store.finish(battle.id, now, score, outcome, elo):
            return
        self._stop_tasks(battle.id)
        await self._close_buttons(battle, entries)
        finished = await self.store.get(battle.id)
        assert finished is not None
        result = RoundResult(
            finished,
            tuple(EntryResult(e, score.of(e.id)) for e in entries),
            score.total_votes,
            score.unanimous,
            outcome,
        )
        tally = await self.store.bot_tally(battle.chat.platform, battle.chat.chat_id)
        view = views.results_view(result, tally)
        message_id = await self._announce(finished.chat, lambda a: a.post(finished.chat, view))
        if message_id is not None:
            await self.store.set_message(finished.id, "result", message_id)
        log.info("battle %d finished: %d votes, outcome %s", battle.id, score.total_votes, outcome)

    async def _close_buttons(self, battle: Battle, entries: list[Entry]) -> None:
        """Take the buttons off the message of the phase that just ended (`battle` as it was
        in that phase)."""
        if battle.phase is Phase.ENTRY and battle.entry_message_id is not None:
            view = views.entries_closed_view(battle, entries)
            mid = battle.entry_message_id
            await self._announce(battle.chat, lambda a: a.edit(battle.chat, mid, view))
        if battle.phase is Phase.VOTING and battle.vote_message_id is not None:
            view = views.ballot_closed_view(battle, entries)
            vid = battle.vote_message_id
            await self._announce(battle.chat, lambda a: a.edit(battle.chat, vid, view))

    async def _refresh_announcement(self, battle_id: int) -> None:
        """Show the new player in the announcement (names only, never texts)."""
        battle = await self.store.get(battle_id)
        if battle is None or battle.entry_message_id is None or battle.phase is not Phase.ENTRY:
            return
        entries = await self.store.entries(battle.id)
        view = views.entry_view(battle, entries, self.clock.now(), self.settings.max_entry_chars)
        mid = battle.entry_message_id
        await self._announce(battle.chat, lambda a: a.edit(battle.chat, mid, view))

    # -- the bot's entry --------------------------------------------------------------------------

    def _start_bot_entry(self, battle: Battle) -> None:
        if self._closed or not self.player.plays:
            return
        if battle.id in self._bot_tasks and not self._bot_tasks[battle.id].done():
            return
        task = asyncio.create_task(self._bot_entry(battle), name=f"battle-{battle.id}-bot")
        self._bot_tasks[battle.id] = task
        task.add_done_callback(lambda t, bid=battle.id: self._forget(self._bot_tasks, bid, t))

    async def _bot_entry(self, battle: Battle) -> None:
        """Store the bot's punchline(s) as they come, while the round takes entries."""
        async for punchline in self.player.punchlines(battle):
            async with self._lock(battle.id):
                current = await self.store.get(battle.id)
                if current is None or current.phase is not Phase.ENTRY:
                    return  # too late: the round moved on while the bot was thinking
                try:
                    reply_id = await self.player.record_reply(battle, punchline)
                    added = await self.store.add_machine_entry(
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
                    await self._refresh_announcement(battle.id)

    # -- timers and helpers ---------------------------------------------------------------------

    def _schedule(self, battle: Battle) -> None:
        """(Re)arm the round's timer for its current deadline."""
        if self._closed or battle.deadline is None:
            return
        current = asyncio.current_task()
        old = self._timers.get(battle.id)
        if old is not None and old is not current and not old.done():
            old.cancel()
        task = asyncio.create_task(
            self._timer(battle.id, battle.deadline), name=f"battle-{battle.id}-timer"
        )
        self._timers[battle.id] = task
        task.add_done_callback(lambda t, bid=battle.id: self._forget(self._timers, bid, t))

    async def _timer(self, battle_id: int, deadline: datetime) -> None:
        try:
            while (left := (deadline - self.clock.now()).total_seconds()) > 0:
                await asyncio.sleep(min(left, MAX_TIMER_SLEEP_S))
            self._busy.add(battle_id)
            try:
                await self._advance(battle_id)
            finally:
                self._busy.discard(battle_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("battle %d: the timer failed", battle_id)

    def _kick_if_due(self, battle: Battle, now: datetime) -> None:
        """Someone acted after the deadline before the timer fired: move the round on now."""
        if state.is_due(battle, now) and not self._closed:
            task = asyncio.create_task(self._advance(battle.id), name=f"battle-{battle.id}-kick")
            self._kicks.add(task)
            task.add_done_callback(self._kicks.discard)

    def _stop_tasks(self, battle_id: int) -> None:
        """The round ended: stop its timer and bot entry and forget its lock (later callers
        find it ended in the database)."""
        self._locks.pop(battle_id, None)
        current = asyncio.current_task()
        for tasks in (self._timers, self._bot_tasks):
            task = tasks.get(battle_id)
            if task is not None and task is not current and not task.done():
                task.cancel()

    @staticmethod
    def _forget(tasks: dict[int, asyncio.Task[None]], battle_id: int, task: asyncio.Task[None]) -> None:
        if tasks.get(battle_id) is task:
            del tasks[battle_id]

    def _lock(self, battle_id: int) -> asyncio.Lock:
        return self._locks.setdefault(battle_id, asyncio.Lock())

    def _chat_lock(self, chat: ChatRef) -> asyncio.Lock:
        return self._chat_locks.setdefault((chat.platform, chat.chat_id), asyncio.Lock())

    async def _announce(
        self, chat: ChatRef, action: Callable[[Announcer], Awaitable[T]]
    ) -> T | None:
        """Run an announcer call; a failure is logged and never breaks the round."""
        announcer = self._announcers.get(chat.platform)
        if announcer is None:
            log.warning("no announcer for %s: a battle message was not shown", chat.platform)
            return None
        try:
            return await action(announcer)
        except Exception:
            log.exception("a battle message could not be shown in %s/%s", chat.platform, chat.chat_id)
            return None


def _refuse(text: str, reason: RefusalReason | None = None) -> Answer:
    return Answer(text, ok=False, reason=reason)


def _refusal(refusal: Refusal) -> Answer:
    return Answer(refusal.text, ok=False, reason=refusal.reason)


def create_battle_service(
    settings: Settings,
    storage: Storage,
    generator: Generator,
    clock: Clock,
    core: CoreHooks | None = None,
) -> BattleService:
    """The service `punchline serve` runs. Without `core`, a `BotCore` on the same storage
    supplies ratings and the admin list (it keeps no state of its own that matters here)."""
    if core is None:
        from bot.core import BotCore

        core = BotCore(settings, storage, generator, clock)
    return BattleService(settings, storage, generator, clock, core=core)
