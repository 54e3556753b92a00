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
# A setup clearly in another language (bot/core/language.py): always in English, the one
# language the model answers in.
MSG_NOT_ENGLISH = "I only get jokes in English so far — try asking me in English?"
MSG_IN_FLIGHT = "Still thinking about your last one…"
MSG_SLOW_DOWN = "Easy there — give me {seconds} s before the next one."
MSG_CHAT_SLOW_DOWN = "This chat is asking faster than I can answer — give me {seconds} s."
MSG_BUSY = "I'm a bit busy right now — try again in a moment."
MSG_ERROR = "Something went wrong on my side — please try again later."
MSG_NOTHING = "I couldn't come up with anything funny for that one — try another setup?"
MSG_NO_MORE = "I'm out of new punchlines for that one — try another setup?"
MSG_SETUP_GONE = "I no longer have that setup (it was erased) — send it to me again?"
SETUP_AND_PUNCHLINE = "{setup}\n\n{punchline}"  # a setup the bot picked itself, then its answer
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
HELP_ADMIN = (
    "Admins: /reload [adapter_dir] loads a new adapter without a restart; "
    "/promote [version] serves a challenger to everyone (where battles run)."
)

# Privacy: /privacy, /forget, /optout, /optin.
MSG_TRAINING_IN = "What you write and rate may help train my next version; /optout keeps it out."
MSG_TRAINING_OUT = "You opted out: nothing you write or rate trains my next version (/optin undoes it)."
MSG_FORGET_WHAT = (
    "This erases everything I keep about you: your setups and my answers to them, your ratings, "
    "battle entries and votes. An entry in a finished battle stays, without your name, so the "
    "other players' points stay true."
)
MSG_FORGET_CONFIRM = MSG_FORGET_WHAT + " Press the button to confirm (it erases whoever presses it)."
FORGET_BUTTON = "Forget me"
MSG_FORGOT_NOTHING = "I held nothing about you — there was nothing to erase."
MSG_OPTED_OUT = "Done: nothing you write or rate will train my next version. I'll still answer you."
MSG_OPTED_IN = "Done: what you write and rate may help train my next version. /optout undoes it."
MSG_OPT_NOBODY = "Only a person can choose that (post as yourself, not as the group)."
MSG_PRIVACY_FAILED = "Something went wrong on my side — nothing changed; please try again later."


# Family mode: /family, and what a family chat hears instead of something offensive.
MSG_FAMILY_ON = "Family mode is on here: I keep my punchlines clean and refuse offensive setups."
MSG_FAMILY_OFF = "Family mode is off here: r/Jokes-style humour, rough edges included."
MSG_FAMILY_USAGE = "Usage: /family on or /family off (or /family to see the mode)."
MSG_FAMILY_REFUSED = "Only this chat's admins can change family mode."
MSG_FAMILY_SETUP = "Let's keep it family-friendly here — try a different setup?"
MSG_FAMILY_CLEAN = "I'll pass on that one — here's a clean one instead: why did the scarecrow win an award? He was outstanding in his field."


def family_status(on: bool) -> str:
    """The answer to a bare /family."""
    return (MSG_FAMILY_ON if on else MSG_FAMILY_OFF) + " Admins: /family on|off."


def privacy_text(retention_days: int, training_status: str) -> str:
    """The /privacy answer."""
    kept = (
        f"Setups and names are erased after {retention_days} days; ratings and battle results stay, without them."
        if retention_days
        else "Setups and names are kept until you /forget them."
    )
    return "\n".join(
        [
            "🔒 What I keep, and why",
            "• Your setups and my punchlines, your ratings (reactions, buttons), battle entries "
            "and votes, and your display name: to answer you, run battles and /stats, and to "
            "train my next version on what people found funny.",
            f"• {kept}",
            f"• {training_status}",
            "• /forget erases everything I keep about you. An entry in a finished battle stays, "
            "without your name, so the other players' points stay true.",
            "• Exports for training carry a salted code per person, never your account.",
        ]
    )


def forgotten_text(removed: dict[str, int]) -> str:
    """The answer to a confirmed /forget: what went."""
    if not removed:
        return MSG_FORGOT_NOTHING
    parts = ", ".join(f"{n} {what}" for what, n in removed.items())
    return f"Done — I erased: {parts}. I hold nothing else about you."


def rated_text(rating: Rating | None) -> str:
    """The answer to a rating button: what was noted, or that it was cleared."""
    return MSG_CLEARED if rating is None else f"Noted: {RATING_LABELS[rating]}"


HELP_INLINE = (
    "In any chat: type @<my username> and a setup, then pick a punchline. (Bot owners: turn on "
    "inline mode with BotFather's /setinline, and /setinlinefeedback so picked punchlines can be rated.)"
)


def help_text(
    emoji_map: EmojiMap,
    platform: Platform,
    kind: ChatKind,
    *,
    admin: bool = False,
    family: bool | None = None,
) -> str:
    """How to use the bot here: asking, rating, stats, privacy (front-ends may add platform
    tips). `admin` adds the admin-only commands; `family` says the chat's mode."""
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
        "/joke alone: I pick a setup and answer it. 🔁 under a punchline: another one.",
        "/stats shows how my jokes are doing.",
        "/privacy says what I keep about you; /forget erases it.",
    ]
    if platform is Platform.TELEGRAM:
        lines.append(HELP_INLINE)
    if platform is Platform.TELEGRAM and kind is ChatKind.GROUP:
        lines.append("To let me see reactions in a group, make me an admin (no rights needed).")
    if family is not None and platform is not Platform.CONSOLE:
        lines.append(family_status(family))
    if admin:
        lines.append(HELP_ADMIN)
    return "\n".join(lines)
