"""Entries to a round: a person's punchline by form, by reply to the announcement, or in
secret by private message after the deep link. Part of `BattleService` (`service.entries`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.battles import state, views
from bot.battles.models import Answer, AuthorKind, Battle, EntryForm, RefusalReason
from bot.battles.polite import polite
from bot.battles.rounds import Rounds
from bot.battles.state import Refusal
from bot.battles.timers import RoundTimers
from bot.clock import Clock
from bot.core.access import Access
from bot.core.family import FamilyGuard
from bot.storage import Storage
from bot.types import ChatRef, Platform, UserRef
from config.settings import BattleSettings

MSG_SAVE_FAILED = "Couldn't save your punchline — please try again."
MSG_LINK_REFUSED = (
    "That link doesn't work for you: its battle is over, or it belongs to a group you're not in."
)

# Whether a person belongs to a chat (Telegram: getChatMember), asked before a deep link tells
# them anything about the round.
MembershipCheck = Callable[[ChatRef, UserRef], Awaitable[bool]]
_SORRY = Answer.refuse(views.MSG_RETRY)


class Entries:
    """Takes people's entries while a round is in its entry phase."""

    def __init__(
        self,
        settings: BattleSettings,
        storage: Storage,
        clock: Clock,
        access: Access,
        rounds: Rounds,
        timers: RoundTimers,
        family: FamilyGuard,
    ):
        self.settings = settings
        self.storage = storage
        self.clock = clock
        self.access = access
        self.family = family
        self.rounds = rounds
        self.timers = timers

    @polite(Answer(MSG_SAVE_FAILED, ok=False), "store an entry")
    async def submit(
        self, battle_id: int, user: UserRef, text: str | None, at: datetime | None = None
    ) -> Answer:
        """A person's entry (a new one replaces theirs) while the round takes entries. `at` is
        when the platform says it was sent: an entry sent before the deadline counts even when
        it reaches the bot later (after a restart, say)."""
        battle = await self.storage.battles.get(battle_id)
        if battle is None:
            return Answer.refuse(views.MSG_NO_SUCH_BATTLE, RefusalReason.UNKNOWN_BATTLE)
        return await self._submit(battle, user, text, at)

    async def _submit(
        self, battle: Battle, user: UserRef, text: str | None, at: datetime | None = None
    ) -> Answer:
        if not self.access.is_allowed(battle.chat, user):
            return Answer.refuse(views.MSG_NOT_PERMITTED, RefusalReason.NOT_PERMITTED)
        now = self.clock.now()
        refusal = state.check_entry(battle, user, sent_at(at, now))
        if refusal is not None:
            self.timers.kick_if_due(battle, now)
            return refusal.answer()
        cleaned = state.clean_entry(text, self.settings.max_entry_chars)
        if isinstance(cleaned, Refusal):
            return cleaned.answer()
        if await self.family.blocks(battle.chat, cleaned):
            # Never stored, so never on a ballot; the author alone is told (privately).
            return Answer.refuse(views.MSG_ENTRY_WITHHELD, RefusalReason.FAMILY)
        async with self.rounds.lock(battle.id):
            full = await self._full(battle, user)
            if full is not None:
                return full
            try:
                replaced = await self.storage.battle_entries.put_person_entry(battle.id, user, cleaned, now)
            except LookupError:
                return Answer.refuse(
                    f"Too late: entries for battle #{battle.id} are closed.", RefusalReason.ENTRIES_CLOSED
                )
            if not replaced:
                await self.rounds.refresh_announcement(battle.id)
        if replaced:
            return Answer(f"Replaced your punchline for battle #{battle.id}.", replaced=True)
        return Answer(f"Your punchline is in for battle #{battle.id}. Good luck!")

    async def _full(self, battle: Battle, user: UserRef) -> Answer | None:
        """A refusal when the round already has as many entries as one ballot can show (room is
        kept for the bot's entries and the classic); a replacement always fits."""
        entries = await self.storage.battle_entries.entries(battle.id)
        if any(e.is_by(user) for e in entries):
            return None
        capacity = views.ballot_capacity(battle, self.settings)
        people = sum(1 for e in entries if e.kind is AuthorKind.PERSON)
        if people < capacity - views.machine_slots(battle, self.settings):
            return None
        return Answer.refuse(
            f"Battle #{battle.id} is full: a ballot shows {capacity} entries, and they are all in. "
            "Vote for your favourite when voting opens!",
            RefusalReason.ROUND_FULL,
        )

    @polite(_SORRY, "check an entry")
    async def entry_form(self, chat: ChatRef, message_id: str, user: UserRef) -> EntryForm | Answer:
        """The entry form for the round announced in `message_id` (Discord's entry button), or
        why `user` cannot enter now."""
        battle = await self.storage.battles.by_message(chat.platform, chat.chat_id, message_id)
        if battle is None or battle.entry_message_id != message_id:
            return Answer.refuse(views.MSG_BAD_BUTTON, RefusalReason.UNKNOWN_BATTLE)
        if not self.access.is_allowed(battle.chat, user):
            return Answer.refuse(views.MSG_NOT_PERMITTED, RefusalReason.NOT_PERMITTED)
        now = self.clock.now()
        refusal = state.check_entry(battle, user, now)
        if refusal is not None:
            self.timers.kick_if_due(battle, now)
            return refusal.answer()
        return EntryForm(battle.id, battle.setup, self.settings.max_entry_chars)

    @polite(None, "look up a battle message")
    async def submit_reply(
        self,
        chat: ChatRef,
        replied_message_id: str,
        user: UserRef,
        text: str | None,
        at: datetime | None = None,
    ) -> Answer | None:
        """A reply to a round's announcement is an entry. None: not a reply to an announcement
        (the message is not for the battles)."""
        battle = await self.storage.battles.by_message(chat.platform, chat.chat_id, replied_message_id)
        if battle is None or battle.entry_message_id != replied_message_id:
            return None
        return await self._submit(battle, user, text, at)

    @polite(_SORRY, "open a secret entry")
    async def begin_secret_entry(
        self, platform: Platform, token: str, user: UserRef, is_member: MembershipCheck
    ) -> Answer:
        """The private deep link was opened: the person's next private message is their entry.

        Only a member of the round's group (`is_member`, the platform's verdict) learns which
        round it is; anyone else gets the same answer as for a link that names no round, so a
        link leaks neither the group's title nor its setup.
        """
        battle = await self.storage.battles.by_token(token)
        if battle is None or battle.chat.platform is not platform or not await is_member(battle.chat, user):
            return Answer.refuse(MSG_LINK_REFUSED, RefusalReason.UNKNOWN_BATTLE)
        refusal = state.check_entry(battle, user, self.clock.now())
        if refusal is not None:
            return refusal.answer()
        await self.storage.battle_entries.set_pending(platform, user.user_id, battle.id, self.clock.now())
        return Answer(
            f"⚔️ Battle #{battle.id} in {battle.chat.title or 'your group'}\n"
            f"Setup: {battle.setup}\n\nSend me your punchline now, in one message "
            f"(at most {self.settings.max_entry_chars} characters). Nobody sees it before voting."
        )

    @polite(Answer(MSG_SAVE_FAILED, ok=False), "take a secret entry")
    async def submit_secret(
        self, platform: Platform, user: UserRef, text: str | None, at: datetime | None = None
    ) -> Answer | None:
        """A private message after the deep link. None: the person has no entry pending (the
        message is an ordinary setup for the core)."""
        battles, entries = self.storage.battles, self.storage.battle_entries
        battle_id = await entries.pending(platform, user.user_id)
        if battle_id is None:
            return None
        battle = await battles.get(battle_id)
        if battle is None:
            await entries.clear_pending(platform, user.user_id)
            return None
        answer = await self._submit(battle, user, text, at)
        # An empty or over-long entry keeps the slot open so they can send a better one.
        if answer.reason not in (RefusalReason.EMPTY_ENTRY, RefusalReason.LONG_ENTRY):
            await entries.clear_pending(platform, user.user_id)
        return answer

    @polite(None, "cancel a secret entry")
    async def cancel_secret_entry(self, platform: Platform, user: UserRef) -> Answer | None:
        """`/cancel` in the private chat drops a pending secret entry; None when there is none."""
        if await self.storage.battle_entries.pending(platform, user.user_id) is None:
            return None
        await self.storage.battle_entries.clear_pending(platform, user.user_id)
        return Answer("OK, I'm not waiting for a punchline from you any more.")


def sent_at(platform_time: datetime | None, now: datetime) -> datetime:
    """When an entry or vote was sent: the platform's stamp, unless it claims the future."""
    return now if platform_time is None else min(platform_time, now)
