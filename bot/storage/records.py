"""Typed rows of the core tables, and the one timestamp format every table stores.

Rows are read by column name (the connection's row factory is `sqlite3.Row`), so adding a
column never shifts a field. Battle rows are `bot.battles.models` records, built in
`bot.storage.battles`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.types import ChatKind, Platform


def db_time(value: datetime) -> str:
    """The stored form of an instant: ISO-8601 UTC with microseconds, fixed width, so that text
    order is time order in queries. Naive datetimes are refused (whose clock would they be?)."""
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def maybe_time(value: str | None) -> datetime | None:
    return from_db_time(value) if value else None


def maybe_str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class RatingValue:
    """What one rating says: the button's name (None for emoji sets), and both axes."""

    rating: str | None
    funniness: int  # -1, 0, +1
    appropriateness: int  # -1 (flagged) or 0


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    platform: Platform
    user_id: str
    name: str
    is_bot: bool
    first_seen: datetime
    last_seen: datetime

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> UserRecord:
        return cls(
            id=row["id"],
            platform=Platform(row["platform"]),
            user_id=row["user_id"],
            name=row["name"],
            is_bot=bool(row["is_bot"]),
            first_seen=from_db_time(row["first_seen"]),
            last_seen=from_db_time(row["last_seen"]),
        )


@dataclass(frozen=True, slots=True)
class ChatRecord:
    id: int
    platform: Platform
    chat_id: str
    kind: ChatKind
    title: str
    settings: Mapping[str, object]
    created_at: datetime

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ChatRecord:
        return cls(
            id=row["id"],
            platform=Platform(row["platform"]),
            chat_id=row["chat_id"],
            kind=ChatKind(row["kind"]),
            title=row["title"],
            settings=json.loads(row["settings"]),
            created_at=from_db_time(row["created_at"]),
        )


@dataclass(frozen=True, slots=True)
class RequestRecord:
    id: int
    chat_pk: int
    user_pk: int
    message_id: str | None
    text: str
    text_chars: int
    status: str
    detail: str
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> RequestRecord:
        return cls(
            id=row["id"],
            chat_pk=row["chat_pk"],
            user_pk=row["user_pk"],
            message_id=row["message_id"],
            text=row["text"],
            text_chars=row["text_chars"],
            status=row["status"],
            detail=row["detail"],
            created_at=from_db_time(row["created_at"]),
            finished_at=maybe_time(row["finished_at"]),
        )


@dataclass(frozen=True, slots=True)
class ReplyRecord:
    id: int
    request_id: int | None
    chat_pk: int
    platform: Platform
    chat_id: str
    message_id: str | None
    text: str
    version: str
    score: float | None
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ReplyRecord:
        return cls(
            id=row["id"],
            request_id=row["request_id"],
            chat_pk=row["chat_pk"],
            platform=Platform(row["platform"]),
            chat_id=row["chat_id"],
            message_id=maybe_str(row["message_id"]),
            text=row["text"],
            version=row["version"],
            score=row["score"],
            created_at=from_db_time(row["created_at"]),
            sent_at=maybe_time(row["sent_at"]),
        )


@dataclass(frozen=True, slots=True)
class ReactionRecord:
    """The net rating state of one user on one reply from one source."""

    reply_id: int
    user_pk: int
    source: str
    emojis: tuple[str, ...]
    rating: str | None
    funniness: int
    appropriateness: int
    updated_at: datetime

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ReactionRecord:
        return cls(
            reply_id=row["reply_id"],
            user_pk=row["user_pk"],
            source=row["source"],
            emojis=tuple(json.loads(row["emojis"])),
            rating=row["rating"],
            funniness=row["funniness"],
            appropriateness=row["appropriateness"],
            updated_at=from_db_time(row["updated_at"]),
        )


@dataclass(frozen=True, slots=True)
class ReplyTally:
    """Everything the ratings of one reply add up to (scores are computed in `bot.core.ratings`).

    Per user, the sources (reaction, button, ...) are folded first so nobody counts twice:
    their funniness is the sign of the sum over sources, and they flag a reply as
    inappropriate if any source does.
    """

    reply_id: int
    setup: str
    punchline: str
    version: str
    platform: Platform
    chat_id: str
    created_at: datetime
    funny: int  # raters whose net funniness is +1
    not_funny: int  # raters whose net funniness is -1
    flagged: int  # raters who flagged it inappropriate
    raters: int  # users with any rating on either axis
    anon_funny: int = 0  # anonymous reaction counts, by axis
    anon_not_funny: int = 0
    anon_inappropriate: int = 0
    anon_total: int = 0  # anonymous reactions on mapped emoji
    author_id: str = ""  # who sent the setup ("" when unknown)

    @property
    def rated(self) -> bool:
        return self.raters > 0 or self.anon_total > 0

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ReplyTally:
        return cls(
            reply_id=row["reply_id"],
            setup=row["setup"],
            punchline=row["punchline"],
            version=row["version"],
            platform=Platform(row["platform"]),
            chat_id=row["chat_id"],
            created_at=from_db_time(row["created_at"]),
            funny=row["funny"],
            not_funny=row["not_funny"],
            flagged=row["flagged"],
            raters=row["raters"],
            anon_funny=row["anon_funny"],
            anon_not_funny=row["anon_not_funny"],
            anon_inappropriate=row["anon_inappropriate"],
            anon_total=row["anon_total"],
            author_id=row["author_id"],
        )


@dataclass(frozen=True, slots=True)
class RaterVerdict:
    """One person's net verdict on one reply, their sources folded (for the training export)."""

    reply_id: int
    rater_id: str
    funniness: int  # -1, 0 or +1
    flagged: bool

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> RaterVerdict:
        return cls(row["reply_id"], row["rater_id"], int(row["f"]), int(row["a"]) < 0)
