"""The rules of a round as pure functions of a battle, its entries and the time.

entry ──(entry deadline, enough players)──> voting ──(vote deadline)──> finished
  │  └─(entry deadline, too few players)──> too_few
  └──────────────(/cancel, either open phase)──────────────────────────> cancelled

Nothing here reads a clock, a database or a chat: the service passes `now` in, so the rules
are tested with plain values and no sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.battles.models import Answer, AuthorKind, Battle, Entry, Phase, RefusalReason
from bot.types import UserRef
from model.text import clean_text


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an action was not taken, with the short text the person sees."""

    reason: RefusalReason
    text: str

    def answer(self) -> Answer:
        """The refusal as the answer a command returns."""
        return Answer.refuse(self.text, self.reason)


@dataclass(frozen=True, slots=True)
class EntryClose:
    """The outcome of the entry deadline: voting with a ballot, or too few players."""

    phase: Phase
    vote_deadline: datetime | None
    positions: dict[int, int]  # entry id → 1-based ballot position (empty for TOO_FEW)
    players: int


def clean_entry(text: str | None, max_chars: int) -> str | Refusal:
    """The entry text as it will be stored and shown, or why it cannot play."""
    cleaned = clean_text(text or "")
    if not cleaned:
        return Refusal(RefusalReason.EMPTY_ENTRY, "An empty punchline can't play.")
    if len(cleaned) > max_chars:
        return Refusal(
            RefusalReason.LONG_ENTRY,
            f"That punchline has {len(cleaned)} characters; entries may have at most "
            f"{max_chars}. Send a shorter one.",
        )
    return cleaned


def clean_setup(text: str | None, max_chars: int) -> str | Refusal | None:
    """A setup given with `/battle`, None when none was given."""
    cleaned = clean_text(text or "")
    if not cleaned:
        return None
    if len(cleaned) > max_chars:
        return Refusal(
            RefusalReason.BAD_SETUP,
            f"That setup has {len(cleaned)} characters; at most {max_chars}, please.",
        )
    return cleaned


def entry_deadline(now: datetime, entry_seconds: float) -> datetime:
    return now + timedelta(seconds=entry_seconds)


def is_due(battle: Battle, now: datetime) -> bool:
    """Whether the current phase's deadline has passed."""
    deadline = battle.deadline
    return deadline is not None and now >= deadline


ANONYMOUS_TEXT = "Anonymous admins can't play: there is nobody to credit. Post as yourself to join in."


def check_entry(battle: Battle, user: UserRef, now: datetime) -> Refusal | None:
    """Whether `user` may submit (or replace) an entry at `now` (the time the platform stamped
    on it, when it has one)."""
    if user.is_bot:
        return Refusal(RefusalReason.BOTS_CANNOT_PLAY, "Bots can't play.")
    if user.anonymous:
        return Refusal(RefusalReason.ANONYMOUS, ANONYMOUS_TEXT)
    if battle.phase is not Phase.ENTRY or now >= battle.entry_deadline:
        return Refusal(RefusalReason.ENTRIES_CLOSED, f"Too late: entries for battle #{battle.id} are closed.")
    return None


def count_players(entries: Sequence[Entry]) -> int:
    """People who entered, plus one for the bot whatever number of versions it fielded.

    The classic is not a player.
    """
    people = {e.author.user_id for e in entries if e.kind is AuthorKind.PERSON and e.author}
    bot = any(e.kind is AuthorKind.BOT for e in entries)
    return len(people) + int(bot)


def close_entry(
    battle: Battle,
    entries: Sequence[Entry],
    now: datetime,
    vote_seconds: float,
    min_players: int,
    rng: random.Random,
) -> EntryClose:
    """End the entry phase: shuffle the entries onto a ballot, or end for lack of players."""
    if battle.phase is not Phase.ENTRY:
        raise ValueError(f"battle {battle.id} is {battle.phase}, not in its entry phase")
    players = count_players(entries)
    if players < min_players:
        return EntryClose(Phase.TOO_FEW, None, {}, players)
    order = sorted(entries, key=lambda e: e.id)
    rng.shuffle(order)
    positions = {entry.id: place for place, entry in enumerate(order, 1)}
    return EntryClose(Phase.VOTING, now + timedelta(seconds=vote_seconds), positions, players)


def check_vote(
    battle: Battle, voter: UserRef, entries: Sequence[Entry], position: int, now: datetime
) -> Entry | Refusal:
    """The entry a vote goes to, or why the vote does not count."""
    if voter.is_bot:
        return Refusal(RefusalReason.BOTS_CANNOT_PLAY, "Bots can't vote.")
    if voter.anonymous:
        return Refusal(RefusalReason.ANONYMOUS, ANONYMOUS_TEXT)
    if battle.phase is Phase.ENTRY:
        return Refusal(RefusalReason.NOT_VOTING, "Voting hasn't started yet.")
    if battle.phase is not Phase.VOTING or (battle.vote_deadline is not None and now >= battle.vote_deadline):
        return Refusal(RefusalReason.VOTING_OVER, f"Battle #{battle.id} is over; votes are closed.")
    chosen = next((e for e in entries if e.position == position), None)
    if chosen is None:
        return Refusal(RefusalReason.BAD_CHOICE, "That button isn't a valid choice.")
    if chosen.is_by(voter):
        return Refusal(RefusalReason.OWN_ENTRY, "You can't vote for your own punchline.")
    return chosen


def check_cancel(battle: Battle | None, user: UserRef, privileged: bool) -> Refusal | None:
    """Only the starter or an admin (bot admin or chat admin: `privileged`) may cancel."""
    if battle is None or not battle.phase.is_open:
        return Refusal(RefusalReason.NOTHING_RUNNING, "No battle is running here.")
    if privileged or user.user_id == battle.starter.user_id:
        return None
    return Refusal(
        RefusalReason.NOT_ALLOWED,
        f"Only {battle.starter.name or 'the starter'} or a chat admin can cancel battle #{battle.id}.",
    )
