"""`BattleService`: the battle commands the front-ends call, platform-free.

    service = BattleService(settings, storage, generator, clock, access)
    service.attach(Platform.TELEGRAM, announcer)       # each front-end, at start-up
    await service.resume()                              # re-arm the rounds left open
    answer = await service.start(chat, user, setup)     # /battle [setup]
    answer = await service.entries.submit(battle_id, user, text)
    answer = await service.vote(chat, ballot_message_id, position, voter)
    await service.close()

Every command returns an `Answer` (a refusal is `ok=False` with a `reason`), never raises for
bad input, and turns an unexpected error into a polite answer (`bot.battles.polite`). How rounds
change phase is `bot.battles.rounds`; when, `bot.battles.timers`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime

from bot.battles import state, views
from bot.battles.challengers import Challengers
from bot.battles.elo import format_elo_table
from bot.battles.entries import Entries, sent_at
from bot.battles.models import Answer, AuthorKind, Battle, Phase, RefusalReason, SetupSource
from bot.battles.player import BotPlayer
from bot.battles.polite import polite
from bot.battles.pool import SetupPool, SetupPoolError
from bot.battles.rounds import Announcer, Rounds
from bot.battles.state import Refusal
from bot.battles.timers import RETRY_S, RoundTimers
from bot.clock import Clock
from bot.core.access import Access
from bot.core.family import FamilyDesk, FamilyGuard, FamilyScreen
from bot.core.ratings import verdict_for_rating
from bot.storage import Storage
from bot.storage.records import RatingValue
from bot.types import ChatKind, ChatRef, Platform, Rating, UserRef
from config.settings import Settings
from model.safety import build_filter
from model.types import Generator

log = logging.getLogger(__name__)

FAMILY_PICKS = 10  # pool setups tried in a family chat before giving up

BATTLE_SOURCE = "battle"  # the rating source of votes for the bot's entries
_SORRY = Answer.refuse(views.MSG_RETRY)


class BattleService:
    """Joke battles for every platform the bot runs on."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        generator: Generator,
        clock: Clock,
        access: Access,
        *,
        pool: SetupPool | None = None,
        rng: random.Random | None = None,
        retry_s: float = RETRY_S,
        family: FamilyGuard | None = None,
    ):
        """`access` holds the allow-lists and admins; `rng` shuffles ballots and picks setups
        (seed it in tests); `pool` replaces the setup file (tests); `retry_s` is the first wait
        before a failed phase change (or post) is tried again; `family` is family mode's check
        (the core's, shared; built from the settings if omitted)."""
        self.settings = settings.battles
        self.max_setup_chars = settings.model.max_setup_chars
        self.storage = storage
        self.clock = clock
        self.access = access
        self.rng = rng or random.Random()
        self.pool = pool or SetupPool(
            settings.battles.setups, settings.model.max_setup_chars, settings.battles.max_entry_chars
        )
        self.family = family or FamilyGuard(
            FamilyDesk(settings.safety, storage, access, clock),
            FamilyScreen(settings.safety, build_filter(settings.safety)),
        )
        player = BotPlayer(settings.battles, storage, generator, clock, self.family)
        self.rounds = Rounds(settings.battles, storage, player, clock, self.rng)
        self.timers = RoundTimers(self.rounds, retry_s, settings.battles.resume_grace_s)
        self.entries = Entries(
            settings.battles, storage, clock, access, self.rounds, self.timers, self.family
        )
        self.challengers = Challengers(
            settings.learning, storage, generator, clock, configured=settings.model.adapter
        )
        self._chat_locks: dict[tuple[Platform, str], asyncio.Lock] = {}
        # A vote for the bot's entry is a "funny" rating of that punchline.
        funny = verdict_for_rating(Rating.FUNNY)
        self._vote_rating = RatingValue(Rating.FUNNY.value, funny.funniness, funny.appropriateness)

    # -- life cycle -----------------------------------------------------------------------------

    def attach(self, platform: Platform, announcer: Announcer) -> None:
        """Use `announcer` for rounds on `platform` (each front-end, when it is built)."""
        self.rounds.announcers[platform] = announcer

    async def resume(self) -> list[int]:
        """Re-arm every open round of the attached platforms (see `RoundTimers.resume`)."""
        return await self.timers.resume()

    async def advance_due(self) -> list[int]:
        """Close every phase whose deadline has passed; for a clock moved by hand (tests)."""
        return await self.timers.advance_due()

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until the bot's entries being generated are stored (or given up)."""
        await self.rounds.settle(timeout)

    async def close(self) -> None:
        """Stop timers and the bot's entries; rounds stay in the database for `resume()`.
        Call it before closing the storage."""
        await self.timers.close()
        await self.rounds.close()

    def _permitted(self, chat: ChatRef, user: UserRef) -> bool:
        """The allow-lists (PUNCHLINE_*__ALLOWED_*) apply to battles too."""
        return self.access.is_allowed(chat, user)

    # -- starting and cancelling ------------------------------------------------------------------

    @polite(
        Answer("Something went wrong starting the battle — please try again.", ok=False), "start a battle"
    )
    async def start(self, chat: ChatRef, user: UserRef, setup: str | None = None) -> Answer:
        """`/battle [setup]`: start a round in a group, or say why not."""
        if chat.kind is not ChatKind.GROUP:
            return Answer.refuse(
                "Battles are played in groups: add me to a group chat and send /battle there.",
                RefusalReason.NOT_A_GROUP,
            )
        if user.is_bot:
            return Answer.refuse("Bots can't start battles.", RefusalReason.BOTS_CANNOT_PLAY)
        if not self._permitted(chat, user):
            return Answer.refuse(views.MSG_NOT_PERMITTED, RefusalReason.NOT_PERMITTED)
        lock = self._chat_locks.setdefault((chat.platform, chat.chat_id), asyncio.Lock())
        async with lock:
            return await self._start(chat, user, setup)

    async def _start(self, chat: ChatRef, user: UserRef, setup: str | None) -> Answer:
        running = await self.storage.battles.open_in_chat(chat.platform, chat.chat_id)
        if running is not None:
            return self._already_running(running)
        given = state.clean_setup(setup, self.max_setup_chars)
        if isinstance(given, Refusal):
            return given.answer()
        if given is not None and await self.family.blocks(chat, given):
            return Answer.refuse(views.MSG_FAMILY_SETUP, RefusalReason.FAMILY)
        picked = await self._setup_and_classic(chat, given)
        if isinstance(picked, Answer):
            return picked
        text, classic, source = picked
        if classic is not None and await self.family.blocks(chat, classic):
            classic = None  # the corpus answer is not for a family chat: the round goes without it
        now = self.clock.now()
        battle = await self.storage.battles.create(
            chat,
            user,
            text,
            source,
            classic if self.settings.classic else None,
            now,
            state.entry_deadline(now, self.settings.entry_seconds),
        )
        if battle is None:  # lost a race with another /battle (e.g. another process)
            running = await self.storage.battles.open_in_chat(chat.platform, chat.chat_id)
            return self._already_running(running) if running else Answer.refuse("Please try again.")
        if battle.classic:
            await self.storage.battle_entries.add_machine_entry(
                battle.id, AuthorKind.CLASSIC, battle.classic, now
            )
        async with self.rounds.lock(battle.id):
            await self.rounds.post_announcement(battle)
        self.timers.ensure_posted(battle.id)  # tries again if the announcement did not go out
        self.rounds.start_bot_entry(battle)
        self.timers.schedule(battle)
        log.info("battle %d started in %s/%s", battle.id, chat.platform, chat.chat_id)
        return Answer(f"Battle #{battle.id} is on!", ok=True)

    async def _setup_and_classic(
        self, chat: ChatRef, given: str | None
    ) -> tuple[str, str | None, SetupSource] | Answer:
        """The round's setup, the corpus punchline that may play as the classic, and where the
        setup came from; or why there is none."""
        try:
            if given is not None:
                found = await asyncio.to_thread(self.pool.lookup, given)
                return given, found.punchline if found else None, SetupSource.GIVEN
            if not self.pool.configured:
                return Answer.refuse(
                    "Give me a setup to battle over, e.g. /battle What do you call a fish with no "
                    "eyes? (My admin can also set PUNCHLINE_BATTLES__SETUPS to a joke file, and "
                    "I'll pick setups myself.)",
                    RefusalReason.NO_SETUP,
                )
            recent = await self.storage.battles.recent_setup_keys(
                chat.platform, chat.chat_id, self.settings.recent_setups
            )
            picked = await asyncio.to_thread(self.pool.pick, recent, self.rng)
            for _ in range(FAMILY_PICKS):  # r/Jokes setups: some are not for a family chat
                if picked is None or not await self.family.blocks(chat, picked.setup):
                    break
                recent = {*recent, picked.key}
                picked = await asyncio.to_thread(self.pool.pick, recent, self.rng)
            else:
                if picked is not None and await self.family.blocks(chat, picked.setup):
                    return Answer.refuse(views.MSG_FAMILY_NO_SETUP, RefusalReason.NO_SETUP)
        except SetupPoolError as exc:
            log.error("battle setup pool: %s", exc)
            return Answer.refuse(
                "My setup list can't be read right now. Give a setup yourself: "
                "/battle What do you call a fish with no eyes?",
                RefusalReason.NO_SETUP,
            )
        if picked is None:
            return Answer.refuse(
                "My setup list is empty. Give a setup yourself: /battle What do you call a "
                "fish with no eyes?",
                RefusalReason.NO_SETUP,
            )
        return picked.setup, picked.punchline, SetupSource.POOL

    def _already_running(self, battle: Battle) -> Answer:
        deadline = battle.deadline
        left = (
            f" ({'entries' if battle.phase is Phase.ENTRY else 'voting'} close in "
            f"{views.span((deadline - self.clock.now()).total_seconds())})"
            if deadline
            else ""
        )
        return Answer.refuse(
            f"Battle #{battle.id} is already running here: {battle.setup}{left}",
            RefusalReason.ALREADY_RUNNING,
        )

    @polite(_SORRY, "cancel a battle")
    async def cancel(self, chat: ChatRef, user: UserRef, chat_admin: bool = False) -> Answer:
        """`/cancel`: the starter, a bot admin or a chat admin (`chat_admin`, the front-end's
        verdict) ends the chat's open round."""
        battle = await self.storage.battles.open_in_chat(chat.platform, chat.chat_id)
        refusal = state.check_cancel(battle, user, chat_admin or self.access.is_admin(user))
        if refusal is not None:
            return refusal.answer()
        assert battle is not None
        if await self.rounds.cancel(battle.id, user) is None:
            return Answer.refuse("That battle has just ended.", RefusalReason.NOTHING_RUNNING)
        self.timers.stop(battle.id)
        return Answer(f"Battle #{battle.id} cancelled.")

    # -- texts ----------------------------------------------------------------------------------

    @polite("The leaderboard is unavailable right now — please try again later.", "read the leaderboard")
    async def leaderboard_text(self, chat: ChatRef) -> str:
        """`/leaderboard`: the chat's players by points, the bot among them, and the tally."""
        results = self.storage.battle_results
        rows = await results.leaderboard(chat.platform, chat.chat_id)
        tally = await results.bot_tally(chat.platform, chat.chat_id)
        return views.leaderboard_text(rows, tally)

    @polite(views.MSG_RETRY, "answer /promote")
    async def promote(self, chat: ChatRef, user: UserRef, argument: str) -> str:
        """An admin's `/promote [version]`: without a version, each challenger's standing;
        with one, serve it to everyone now. Others get a polite no. Never raises."""
        if not self._permitted(chat, user):
            return views.MSG_NOT_PERMITTED
        if not self.access.is_admin(user):
            log.info("refused /promote from %s:%s: not an admin", user.platform.value, user.user_id)
            return views.MSG_PROMOTE_REFUSED
        return await self.challengers.promote_command(argument)

    @polite("", "read battle stats")
    async def stats_text(self, chat: ChatRef) -> str:
        """Lines for /stats: the chat's people-against-the-bot tally (once a round there was
        decided), the Elo table and the Bradley–Terry strengths of adapter versions (once
        versions have battled)."""
        results = self.storage.battle_results
        lines = []
        tally = await results.bot_tally(chat.platform, chat.chat_id)
        if tally.rounds:
            lines.append(views.tally_line(tally))
        elo = format_elo_table(await results.elo_table())
        if elo:
            lines.append(elo)
        lines += await self.challengers.stats_lines()
        return "\n".join(lines)

    # -- votes ----------------------------------------------------------------------------------

    @polite(Answer("Couldn't count that vote — please try again.", ok=False), "store a vote")
    async def vote(
        self, chat: ChatRef, message_id: str, position: int, voter: UserRef, at: datetime | None = None
    ) -> Answer:
        """A vote button pressed on `message_id` in `chat`, a message of the round (its
        ballot): one vote per person and round, changeable, never for their own entry. A button
        on any message that is not one of a round's in that chat is refused."""
        battle = await self.storage.battles.by_message(chat.platform, chat.chat_id, message_id)
        if battle is None:
            return Answer.refuse(views.MSG_BAD_BUTTON, RefusalReason.UNKNOWN_BATTLE)
        if not self._permitted(battle.chat, voter):
            return Answer.refuse(views.MSG_NOT_PERMITTED, RefusalReason.NOT_PERMITTED)
        return await self._vote(battle.id, position, voter, at)

    async def _vote(self, battle_id: int, position: int, voter: UserRef, at: datetime | None) -> Answer:
        now = self.clock.now()
        async with self.rounds.lock(battle_id):
            battle = await self.storage.battles.get(battle_id)
            assert battle is not None
            entries = await self.storage.battle_entries.entries(battle.id)
            chosen = state.check_vote(battle, voter, entries, position, sent_at(at, now))
            if isinstance(chosen, Refusal):
                self.timers.kick_if_due(battle, now)
                return chosen.answer()
            try:
                before = await self.storage.battle_entries.put_vote(
                    battle.id, voter, chosen.id, now, bot_vote=self._vote_rating, rating_source=BATTLE_SOURCE
                )
            except LookupError:
                return Answer.refuse(
                    f"Battle #{battle.id} is over; votes are closed.", RefusalReason.VOTING_OVER
                )
        if before == chosen.id:
            return Answer(f"You already voted for #{position}.")
        if before is None:
            return Answer(f"Vote counted for #{position}.")
        return Answer(f"Vote changed to #{position}.")
