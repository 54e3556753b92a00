"""Everything `punchline ratings export` writes: rated replies and people's ratings, then
battle results, with only the people who allow it (`bot.export.consent`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.battles.export import battle_rows
from bot.export.consent import Consent
from bot.export.replies import reply_rows
from bot.export.rows import ExportRow, RowSource
from bot.storage import Storage
from config.settings import PrivacySettings

DEFAULT_SOURCES: tuple[RowSource, ...] = (reply_rows, battle_rows)


async def collect_rows(
    storage: Storage,
    since: datetime | None,
    privacy: PrivacySettings | None = None,
    sources: Sequence[RowSource] = DEFAULT_SOURCES,
) -> list[ExportRow]:
    """The rows of every source, in order; `privacy` says who is in by default."""
    consent = await Consent.load(storage, privacy or PrivacySettings())
    rows: list[ExportRow] = []
    for source in sources:
        rows.extend(await source(storage, since, consent))
    return rows
