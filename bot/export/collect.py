"""Everything `punchline ratings export` writes: rated replies, then battle results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.battles.export import battle_rows
from bot.export.replies import reply_rows
from bot.export.rows import ExportRow, RowSource
from bot.storage import Storage

DEFAULT_SOURCES: tuple[RowSource, ...] = (reply_rows, battle_rows)


async def collect_rows(
    storage: Storage, since: datetime | None, sources: Sequence[RowSource] = DEFAULT_SOURCES
) -> list[ExportRow]:
    """The rows of every source, in order."""
    rows: list[ExportRow] = []
    for source in sources:
        rows.extend(await source(storage, since))
    return rows
