"""What /stats can show about battles: the Elo table of adapter versions and, for a chat, how
people have fared against the bot. The core's /stats calls `battle_stats_text`."""

from __future__ import annotations

import logging

from bot.battles.elo import format_elo_table
from bot.battles.store import BattleStore
from bot.battles.views import tally_line
from bot.storage import Storage
from bot.types import ChatRef

log = logging.getLogger(__name__)


async def battle_stats_text(storage: Storage, chat: ChatRef | None = None) -> str:
    """Lines for /stats: the people-against-the-bot tally of `chat` (if any round there was
    decided) and the Elo table (once versions have battled). Empty when there is nothing to
    show; never raises."""
    store = BattleStore(storage)
    lines = []
    try:
        if chat is not None:
            tally = await store.bot_tally(chat.platform, chat.chat_id)
            if tally.rounds:
                lines.append(tally_line(tally))
        elo = format_elo_table(await store.elo_table())
        if elo:
            lines.append(elo)
    except Exception:
        log.exception("could not read battle stats")
        return ""
    return "\n".join(lines)
