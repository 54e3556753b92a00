"""Hand-written `punchline ratings export` rows (the schema `training.feedback` reads), and files
of them, for the preference-data and alignment tests."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2026, 3, 1, tzinfo=UTC)
FIELDS = (
    "kind",
    "id",
    "created_at",
    "setup",
    "punchline",
    "version",
    "platform",
    "funniness",
    "appropriateness",
    "funny",
    "not_funny",
    "inappropriate",
    "raters",
    "author_kind",
    "battle_id",
    "points",
    "won",
    "chat",
    "rater",
)

Row = dict[str, Any]


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def _base(kind: str, id: int, setup: str, punchline: str, minutes: float, chat: str) -> Row:
    return {
        "kind": kind,
        "id": id,
        "created_at": at(minutes),
        "setup": setup,
        "punchline": punchline,
        "version": "v1",
        "platform": "telegram",
        "funniness": None,
        "appropriateness": None,
        "funny": 0,
        "not_funny": 0,
        "inappropriate": 0,
        "raters": 0,
        "author_kind": "bot",
        "battle_id": None,
        "points": None,
        "won": None,
        "chat": chat,
        "rater": "",
    }


def reply(
    id: int,
    setup: str,
    punchline: str,
    *,
    funny: int = 0,
    not_funny: int = 0,
    inappropriate: int = 0,
    minutes: float = 0,
    chat: str = "chat-a",
) -> Row:
    """An aggregate row for one rated bot reply."""
    raters = max(funny + not_funny, inappropriate)
    row = _base("reply", id, setup, punchline, minutes, chat)
    votes = funny + not_funny
    row.update(
        funniness=round((funny - not_funny) / votes, 4) if votes else None,
        appropriateness=round(1 - inappropriate / raters, 4) if raters else None,
        funny=funny,
        not_funny=not_funny,
        inappropriate=inappropriate,
        raters=raters,
    )
    return row


def rating(
    id: int,
    setup: str,
    punchline: str,
    rater: str,
    funniness: int,
    *,
    flagged: bool = False,
    minutes: float = 0,
    chat: str = "chat-a",
) -> Row:
    """One person's verdict (funniness -1/0/+1, optionally a flag) on reply `id`."""
    row = _base("rating", id, setup, punchline, minutes, chat)
    row.update(
        funniness=funniness,
        appropriateness=0.0 if flagged else 1.0,
        funny=int(funniness > 0),
        not_funny=int(funniness < 0),
        inappropriate=int(flagged),
        raters=1,
        rater=rater,
    )
    return row


def rated_reply(
    id: int,
    setup: str,
    punchline: str,
    votes: dict[str, int],
    *,
    flagged_by: Sequence[str] = (),
    minutes: float = 0,
    chat: str = "chat-a",
) -> list[Row]:
    """A reply's aggregate row and one `rating` row per person in `votes` (rater -> -1/0/+1)."""
    funny = sum(v > 0 for v in votes.values())
    not_funny = sum(v < 0 for v in votes.values())
    rows = [
        reply(
            id,
            setup,
            punchline,
            funny=funny,
            not_funny=not_funny,
            inappropriate=len(flagged_by),
            minutes=minutes,
            chat=chat,
        )
    ]
    raters = list(votes) + [r for r in flagged_by if r not in votes]
    rows += [
        rating(id, setup, punchline, r, votes.get(r, 0), flagged=r in flagged_by, minutes=minutes, chat=chat)
        for r in raters
    ]
    return rows


def battle_entry(
    battle_id: int,
    entry_id: int,
    setup: str,
    punchline: str,
    votes: int,
    total: int,
    *,
    won: bool = False,
    author_kind: str = "bot",
    rater: str = "",
    minutes: float = 0,
    chat: str = "chat-a",
) -> Row:
    """One entry of a finished round: its votes out of `total` cast."""
    row = _base("battle", entry_id, setup, punchline, minutes, chat)
    row.update(
        version={"bot": "v1", "person": "human", "classic": "classic"}[author_kind],
        funniness=round(votes / total, 4) if total else None,
        funny=votes,
        not_funny=total - votes,
        raters=total,
        author_kind=author_kind,
        battle_id=battle_id,
        points=votes * 100,
        won=won,
        rater=rater,
    )
    return row


def write_export(rows: Sequence[Row], path: Path) -> Path:
    """Write rows as `punchline ratings export` does: JSON lines for `.jsonl`, CSV otherwise."""
    with path.open("w", encoding="utf-8", newline="") as f:
        if path.suffix == ".jsonl":
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in FIELDS})
    return path
