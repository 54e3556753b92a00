"""What the bot says: every fixed line of the core, and the /help text.

Front-ends show these as they are (plain text, never a parse mode).
"""

from __future__ import annotations

from bot.core.ratings import EmojiMap
from bot.types import ChatKind, Platform, Rating

EXAMPLE_SETUP = "Why do Yoda's jokes always suck?"

# Answers to a setup.
MSG_EMPTY = f"Send me a joke setup and I'll find the punchline — e.g. “{EXAMPLE_SETUP}”"
MSG_TOO_LONG = "That's a bit long for a setup — try one under {limit} characters."
MSG_NO_WORDS = "I need some words to work with — try a question like “{example}”"
MSG_IN_FLIGHT = "Still thinking about your last one…"
MSG_SLOW_DOWN = "Easy there — give me {seconds} s before the next one."
MSG_CHAT_SLOW_DOWN = "This chat is asking faster than I can answer — give me {seconds} s."
MSG_BUSY = "I'm a bit busy right now — try again in a moment."
MSG_ERROR = "Something went wrong on my side — please try again later."
MSG_NOTHING = "I couldn't come up with anything funny for that one — try another setup?"
MSG_STATS_UNAVAILABLE = "Stats are unavailable right now — please try again later."

# Answers to a rating.
RATING_LABELS: dict[Rating, str] = {
    Rating.FUNNY: "funny 🤣",
    Rating.MEH: "meh 😐",
    Rating.INAPPROPRIATE: "inappropriate 🚩 — thanks for flagging it",
}
MSG_STALE = "That joke can't be rated any more."
MSG_CLEARED = "Rating cleared."
MSG_RATE_FAILED = "Couldn't save that rating — please try again."

# /reload: an admin swaps the adapter while the bot runs.
MSG_RELOAD_REFUSED = "Sorry — only the bot's admins can reload the model."
MSG_RELOAD_NO_ADAPTER = (
    "No adapter directory to load: give one (/reload <adapter_dir>) or configure one with "
    "PUNCHLINE_MODEL__ADAPTER."
)
MSG_RELOAD_UNSUPPORTED = (
    "This bot's model can't load a new adapter while it runs; restart it with "
    "PUNCHLINE_MODEL__ADAPTER set to the new adapter directory."
)
MSG_RELOAD_FAILED = "Could not load {path}: {reason}; still serving {old}."
MSG_RELOADED = "Now serving {new} (was {old})."
MSG_RELOADED_SAME = "Reloaded {new} from {path} (same version as before)."
MSG_RELOAD_UNEXPECTED = "an unexpected error (details are in the bot's log)"
HELP_ADMIN = "Admins: /reload [adapter_dir] loads a new adapter without a restart."


def rated_text(rating: Rating | None) -> str:
    """The answer to a rating button: what was noted, or that it was cleared."""
    return MSG_CLEARED if rating is None else f"Noted: {RATING_LABELS[rating]}"


def help_text(emoji_map: EmojiMap, platform: Platform, kind: ChatKind, *, admin: bool = False) -> str:
    """How to use the bot here: asking, rating, stats (front-ends may add platform tips).

    `admin` adds the admin-only commands.
    """
    if platform is Platform.CONSOLE:
        ask = "Type a joke setup and press Enter."
    elif kind is ChatKind.PRIVATE:
        ask = "Send me a joke setup — every message here is one."
    elif platform is Platform.TELEGRAM:
        ask = "In groups: /joke <setup>, mention me, or reply to one of my messages."
    else:
        ask = "In servers: /joke setup:<text>, mention me, or reply to one of my messages."
    if platform is Platform.CONSOLE:
        rate = "Rate each punchline when asked: f funny, m meh, i inappropriate."
    else:
        rate = (
            f"Rate a punchline with the buttons under it or react: {emoji_map.example('funny')} "
            f"funny, {emoji_map.example('not_funny')} not funny, "
            f"{emoji_map.example('inappropriate')} inappropriate."
        )
    lines = [
        "🎤 I answer joke setups with punchlines.",
        ask,
        f"For example: {EXAMPLE_SETUP}",
        rate,
        "/stats shows how my jokes are doing.",
    ]
    if platform is Platform.TELEGRAM and kind is ChatKind.GROUP:
        lines.append("To let me see reactions in a group, make me an admin (no rights needed).")
    if admin:
        lines.append(HELP_ADMIN)
    return "\n".join(lines)
