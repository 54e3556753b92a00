"""Typed records of joke battles: phases, battles, entries, votes, results and button payloads.

Everything here is plain data; the rules live in `state.py` and `scoring.py`, the queries in
`store.py` and the orchestration in `service.py`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.types import ChatRef, UserRef


class Phase(StrEnum):
    """Where a round stands. ENTRY and VOTING are open; the others are final."""

    ENTRY = "entry"
    VOTING = "voting"
    FINISHED = "finished"  # voting ended, results posted
    CANCELLED = "cancelled"  # /cancel by the starter or an admin
    TOO_FEW = "too_few"  # the entry phase ended with fewer players than min_players

    @property
    def is_open(self) -> bool:
        return self in (Phase.ENTRY, Phase.VOTING)


class AuthorKind(StrEnum):
    """Who wrote an entry."""

    PERSON = "person"
    BOT = "bot"  # the bot, with the adapter version that made it
    CLASSIC = "classic"  # the corpus's original punchline for a pool setup


class SetupSource(StrEnum):
    GIVEN = "given"  # `/battle <setup>`
    POOL = "pool"  # picked from PUNCHLINE_BATTLES__SETUPS


class BotOutcome(StrEnum):
    """How people fared against the bot in one finished round (compared by points)."""

    PEOPLE = "people"  # a person scored more than every bot entry
    BOT = "bot"  # a bot entry scored more than every person
    TIE = "tie"


@dataclass(frozen=True, slots=True)
class Battle:
    """One round in one chat."""

    id: int
    chat: ChatRef
    starter: UserRef
    setup: str
    source: SetupSource
    classic: str | None  # the corpus punchline, when it plays
    phase: Phase
    created_at: datetime
    entry_deadline: datetime
    vote_deadline: datetime | None = None
    ended_at: datetime | None = None
    entry_message_id: str | None = None  # the announcement people reply to
    vote_message_id: str | None = None  # the ballot with the vote buttons
    result_message_id: str | None = None
    bot_outcome: BotOutcome | None = None
    entry_token: str | None = None  # names the round in its private deep link

    @property
    def message_for_phase(self) -> str | None:
        """The message the current phase shows: announcement, ballot or results."""
        if self.phase is Phase.ENTRY:
            return self.entry_message_id
        if self.phase is Phase.VOTING:
            return self.vote_message_id
        if self.phase is Phase.FINISHED:
            return self.result_message_id
        return None

    @property
    def deadline(self) -> datetime | None:
        """The end of the current phase; None once the round is over."""
        if self.phase is Phase.ENTRY:
            return self.entry_deadline
        if self.phase is Phase.VOTING:
            return self.vote_deadline
        return None


@dataclass(frozen=True, slots=True)
class Entry:
    """One punchline in a round. `author` is set for people; `version` for the bot."""

    id: int
    battle_id: int
    kind: AuthorKind
    text: str
    created_at: datetime
    updated_at: datetime
    author: UserRef | None = None
    version: str | None = None
    reply_id: int | None = None  # the core's reply row for bot entries, so votes rate it
    position: int | None = None  # 1-based place on the shuffled ballot, set when voting opens

    @property
    def author_label(self) -> str:
        """How results name the author."""
        if self.kind is AuthorKind.PERSON:
            assert self.author is not None
            return self.author.name or f"user {self.author.user_id}"
        if self.kind is AuthorKind.BOT:
            return f"the bot ({self.version})" if self.version else "the bot"
        return "the classic"

    def is_by(self, user: UserRef) -> bool:
        return (
            self.kind is AuthorKind.PERSON and self.author is not None and self.author.user_id == user.user_id
        )


@dataclass(frozen=True, slots=True)
class Vote:
    battle_id: int
    voter: UserRef
    entry_id: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EntryScore:
    """One entry's outcome: votes, points, whether it won, whether it was disqualified as a copy."""

    entry_id: int
    votes: int
    points: int
    won: bool
    identical: bool


@dataclass(frozen=True, slots=True)
class RoundScore:
    scores: tuple[EntryScore, ...]
    total_votes: int
    winner_id: int | None
    unanimous: bool

    def of(self, entry_id: int) -> EntryScore:
        for score in self.scores:
            if score.entry_id == entry_id:
                return score
        raise KeyError(entry_id)


@dataclass(frozen=True, slots=True)
class EntryResult:
    entry: Entry
    score: EntryScore


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What the results message shows: entries by ballot position with authors and scores."""

    battle: Battle
    results: tuple[EntryResult, ...]
    total_votes: int
    unanimous: bool
    outcome: BotOutcome | None


class RefusalReason(StrEnum):
    NOT_A_GROUP = "not_a_group"
    ALREADY_RUNNING = "already_running"
    NO_SETUP = "no_setup"
    BAD_SETUP = "bad_setup"
    UNKNOWN_BATTLE = "unknown_battle"
    ENTRIES_CLOSED = "entries_closed"
    EMPTY_ENTRY = "empty_entry"
    LONG_ENTRY = "long_entry"
    NOT_VOTING = "not_voting"
    VOTING_OVER = "voting_over"
    OWN_ENTRY = "own_entry"
    BAD_CHOICE = "bad_choice"
    BOTS_CANNOT_PLAY = "bots_cannot_play"
    NOT_ALLOWED = "not_allowed"  # e.g. /cancel by someone who may not
    NOT_PERMITTED = "not_permitted"  # outside the allow-lists: front-ends stay silent
    ANONYMOUS = "anonymous"  # an anonymous admin: no person to credit
    ROUND_FULL = "round_full"  # the round has as many entries as a ballot can show
    NOTHING_RUNNING = "nothing_running"
    FAMILY = "family"  # offensive in a family chat: withheld, said to the author only


@dataclass(frozen=True, slots=True)
class Answer:
    """A short text for the person who acted (a command reply, a button toast, a modal reply).

    `ok` is False for refusals (`reason` says why). Front-ends show it to that person only
    where they can (an ephemeral answer, a button toast) and as a reply otherwise.
    """

    text: str
    ok: bool = True
    reason: RefusalReason | None = None  # why, for refusals
    replaced: bool = False  # an accepted entry that replaced the person's earlier one

    @classmethod
    def refuse(cls, text: str, reason: RefusalReason | None = None) -> Answer:
        """A refusal: `ok` False, `reason` saying why (front-ends stay quiet on NOT_PERMITTED)."""
        return cls(text, ok=False, reason=reason)


@dataclass(frozen=True, slots=True)
class EntryForm:
    """What an entry form (Discord's modal) shows: the round, its setup, the longest entry."""

    battle_id: int
    setup: str
    max_chars: int


# --- views: what an announcer renders -------------------------------------------------------


class ButtonKind(StrEnum):
    ENTER = "enter"  # Telegram: a deep link to a private chat; Discord: opens a modal
    VOTE = "vote"


@dataclass(frozen=True, slots=True)
class ViewButton:
    kind: ButtonKind
    label: str
    payload: str  # the callback data / custom id (bot.payloads)
    battle_id: int
    token: str = ""  # the round's entry token (Telegram's deep link)


@dataclass(frozen=True, slots=True)
class View:
    """A platform-free message: plain text and buttons."""

    text: str
    buttons: tuple[ViewButton, ...] = ()


# --- deep links ----------------------------------------------------------------------------

DEEP_LINK_PREFIX = "b_"
_DEEP_LINK = re.compile(r"b_([A-Za-z0-9_-]{16,43})")


def new_entry_token() -> str:
    """A token nobody can guess (96 random bits), fit for a Telegram /start parameter."""
    return secrets.token_urlsafe(12)


def deep_link_argument(token: str) -> str:
    """The `/start` argument of the Telegram deep link for a secret entry."""
    return f"{DEEP_LINK_PREFIX}{token}"


def parse_deep_link(argument: str | None) -> str | None:
    """The round token in a `/start` argument, None for anything else (old links included)."""
    if not argument:
        return None
    match = _DEEP_LINK.fullmatch(argument.strip())
    return match.group(1) if match else None
