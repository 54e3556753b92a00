"""Battle results for `punchline ratings export` (a row source of `bot.export.collect`).

`battle_rows(storage, since)` turns every entry of every finished round
(`storage.battle_results.export_rows`) into an `ExportRow` of kind "battle": `version` is the
adapter version for the bot, "human" for people, "classic" for the corpus punchline; funniness
is the entry's share of the round's votes; `funny` its votes and `not_funny` the votes that
went elsewhere.
"""

from __future__ import annotations

from datetime import datetime

from bot.battles.models import AuthorKind
from bot.export.rows import ExportRow
from bot.storage import Storage

HUMAN_VERSION = "human"
CLASSIC_VERSION = "classic"


async def battle_rows(storage: Storage, since: datetime | None = None) -> list[ExportRow]:
    """Battle entries as export rows (kind "battle"), one per entry of a finished round."""
    rows = await storage.battle_results.export_rows(since)
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
