"""Rated bot replies as export rows (kind "reply")."""

from __future__ import annotations

from datetime import datetime

from bot.core import ratings
from bot.export.rows import ExportRow
from bot.storage import Storage


async def reply_rows(storage: Storage, since: datetime | None) -> list[ExportRow]:
    """One row per rated bot reply created at or after `since`."""
    rows = []
    for t in await storage.ratings.tallies(since=since, rated_only=True):
        s = ratings.score(t)
        rows.append(
            ExportRow(
                kind="reply",
                id=t.reply_id,
                created_at=t.created_at.isoformat(),
                setup=t.setup,
                punchline=t.punchline,
                version=t.version,
                platform=str(t.platform),
                funniness=None if s.funniness is None else round(s.funniness, 4),
                appropriateness=None if s.appropriateness is None else round(s.appropriateness, 4),
                funny=t.funny + t.anon_funny,
                not_funny=t.not_funny + t.anon_not_funny,
                inappropriate=t.flagged + t.anon_inappropriate,
                raters=s.raters,
            )
        )
    return rows
