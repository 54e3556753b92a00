"""Battle results for `punchline ratings export` (a row source of `bot.export`).

`battle_rows(storage, since)` gives the full typed rows (`ExportEntryRow`: setup, every entry
with its author kind — person, bot with its adapter version, classic — its votes, points and
whether it won). `export_rows(storage, since)` turns them into `bot.export.ExportRow`s of kind
"battle": `version` is the adapter version for the bot, "human" for people, "classic" for the
corpus punchline; funniness is the entry's share of the round's votes; `funny` its votes and
`not_funny` the votes that went elsewhere.
"""

from __future__ import annotations

from datetime import datetime

from bot.battles.models import AuthorKind
from bot.battles.store import BattleStore, ExportEntryRow
from bot.export import ExportRow
from bot.storage import Storage

HUMAN_VERSION = "human"
CLASSIC_VERSION = "classic"


async def battle_rows(storage: Storage, since: datetime | None = None) -> list[ExportEntryRow]:
    """Every entry of every round finished at or after `since`, round by round."""
    return await BattleStore(storage).export_rows(since)


async def export_rows(storage: Storage, since: datetime | None = None) -> list[ExportRow]:
    """Battle entries as export rows (kind "battle"), one per entry of a finished round."""
    rows = await battle_rows(storage, since)
    totals: dict[int, int] = {}
    for row in rows:
        totals[row.battle_id] = totals.get(row.battle_id, 0) + row.votes
    out = []
    for row in rows:
        total = totals[row.battle_id]
        if row.author_kind is AuthorKind.BOT:
            version = row.version or ""
        elif row.author_kind is AuthorKind.CLASSIC:
            version = CLASSIC_VERSION
        else:
            version = HUMAN_VERSION
        out.append(
            ExportRow(
                kind="battle",
                id=row.entry_id,
                created_at=row.finished_at.isoformat(),
                setup=row.setup,
                punchline=row.text,
                version=version,
                platform=str(row.platform),
                funniness=round(row.votes / total, 4) if total else None,
                appropriateness=None,
                funny=row.votes,
                not_funny=total - row.votes,
                inappropriate=0,
                raters=total,
                author_kind=str(row.author_kind),
                battle_id=row.battle_id,
                points=row.points,
                won=row.won,
            )
        )
    return out


__all__ = ["battle_rows", "export_rows", "ExportEntryRow"]
