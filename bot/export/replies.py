"""Rated bot replies as export rows: one "reply" row per rated reply (its raters aggregated)
and one "rating" row per person's verdict on it.

Only what people allowed goes out (`bot.export.consent`): a reply whose setup was written by
someone out of training is left out whole, a verdict by someone out of training is left out of
its reply's counts too, and a reply whose setup text was purged (retention) has nothing to
learn from. Anonymous channel counts name nobody and stay.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime

from bot.core import ratings
from bot.export.consent import Consent
from bot.export.rows import ExportRow
from bot.storage import Storage
from bot.storage.records import RaterVerdict, ReplyTally


async def reply_rows(storage: Storage, since: datetime | None, consent: Consent) -> list[ExportRow]:
    """The reply and rating rows of replies created at or after `since`."""
    verdicts: dict[int, list[RaterVerdict]] = defaultdict(list)
    for verdict in await storage.ratings.rater_verdicts(since):
        verdicts[verdict.reply_id].append(verdict)
    rows: list[ExportRow] = []
    for tally in await storage.ratings.tallies(since=since, rated_only=True):
        platform = str(tally.platform)
        if not tally.setup or not consent.allows(platform, tally.author_id):
            continue
        allowed = [v for v in verdicts.get(tally.reply_id, []) if consent.allows(platform, v.rater_id)]
        if not allowed and not tally.anon_total:
            continue
        rows.append(_reply_row(_recount(tally, allowed), consent))
        rows.extend(_rating_row(tally, v, consent) for v in allowed)
    return rows


def _recount(tally: ReplyTally, allowed: list[RaterVerdict]) -> ReplyTally:
    """The tally with only the allowed people's verdicts (anonymous counts unchanged)."""
    return dataclasses.replace(
        tally,
        funny=sum(v.funniness > 0 for v in allowed),
        not_funny=sum(v.funniness < 0 for v in allowed),
        flagged=sum(v.flagged for v in allowed),
        raters=len(allowed),
    )


def _reply_row(t: ReplyTally, consent: Consent) -> ExportRow:
    s = ratings.score(t)
    return ExportRow(
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
        chat=consent.chat(str(t.platform), t.chat_id),
    )


def _rating_row(t: ReplyTally, v: RaterVerdict, consent: Consent) -> ExportRow:
    return ExportRow(
        kind="rating",
        id=t.reply_id,
        created_at=t.created_at.isoformat(),
        setup=t.setup,
        punchline=t.punchline,
        version=t.version,
        platform=str(t.platform),
        funniness=float(v.funniness),
        appropriateness=0.0 if v.flagged else 1.0,
        funny=int(v.funniness > 0),
        not_funny=int(v.funniness < 0),
        inappropriate=int(v.flagged),
        raters=1,
        chat=consent.chat(str(t.platform), t.chat_id),
        rater=consent.person(str(t.platform), v.rater_id),
    )
