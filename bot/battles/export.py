"""Battle results for `punchline ratings export` (a row source of `bot.export.collect`).

`battle_rows(storage, since, consent)` turns every entry of every finished round
(`storage.battle_results.export_rows`) into an `ExportRow` of kind "battle": `version` is the
adapter version for the bot, "human" for people, "classic" for the corpus punchline; `funny` is
its votes and `not_funny` the votes that went elsewhere, counted from the votes of people who
allow training (`bot.export.consent`); funniness is its share of those. A round whose setup was
given by someone out of training is left out, and so is an entry by someone out of training
(or forgotten); `rater` is a person's entry's author code.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from bot.battles.models import AuthorKind, SetupSource
from bot.export.consent import Consent
from bot.export.rows import ExportRow
from bot.storage import Storage
from bot.storage.battle_results import ExportEntryRow

HUMAN_VERSION = "human"
CLASSIC_VERSION = "classic"


async def battle_rows(storage: Storage, since: datetime | None, consent: Consent) -> list[ExportRow]:
    """Battle entries as export rows (kind "battle"), one per allowed entry of a finished round."""
    rows = [r for r in await storage.battle_results.export_rows(since) if _setup_allowed(r, consent)]
    platforms = {r.battle_id: str(r.platform) for r in rows}
    votes: Counter[int] = Counter()  # entry id -> allowed votes
    totals: Counter[int] = Counter()  # battle id -> allowed votes
    for battle_id, voter, entry_id in await storage.battle_results.votes(sorted(platforms)):
        if consent.allows(platforms[battle_id], voter):
            votes[entry_id] += 1
            totals[battle_id] += 1
    return [
        _row(r, votes[r.entry_id], totals[r.battle_id], consent)
        for r in rows
        if r.author_kind is not AuthorKind.PERSON or consent.allows(str(r.platform), r.author_id)
    ]


def _setup_allowed(row: ExportEntryRow, consent: Consent) -> bool:
    return row.setup_source is not SetupSource.GIVEN or consent.allows(str(row.platform), row.starter_id)


def _row(row: ExportEntryRow, votes: int, total: int, consent: Consent) -> ExportRow:
    if row.author_kind is AuthorKind.BOT:
        version = row.version or ""
    elif row.author_kind is AuthorKind.CLASSIC:
        version = CLASSIC_VERSION
    else:
        version = HUMAN_VERSION
    platform = str(row.platform)
    return ExportRow(
        kind="battle",
        id=row.entry_id,
        created_at=row.finished_at.isoformat(),
        setup=row.setup,
        punchline=row.text,
        version=version,
        platform=platform,
        funniness=round(votes / total, 4) if total else None,
        appropriateness=None,
        funny=votes,
        not_funny=total - votes,
        inappropriate=0,
        raters=total,
        author_kind=str(row.author_kind),
        battle_id=row.battle_id,
        points=row.points,
        won=row.won,
        chat=consent.chat(platform, row.chat_id),
        rater=consent.person(platform, row.author_id) if row.author_kind is AuthorKind.PERSON else "",
    )
