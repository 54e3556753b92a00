"""The texts and buttons of battle messages, platform-free (`View`); announcers render them.

Texts are plain (no markup) so every platform shows them as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from bot.battles.models import (
    AuthorKind,
    Battle,
    BotOutcome,
    ButtonKind,
    Entry,
    RoundResult,
    View,
    ViewButton,
)
from bot.payloads import EnterPayload, VotePayload, encode
from bot.storage.battle_results import BotTally, LeaderRow
from bot.types import Platform
from config.settings import BattleSettings

# The longest message each platform takes, and the most buttons on one message; a ballot is
# one message, so a round takes no more entries than fit on it.
MESSAGE_LIMITS = {Platform.TELEGRAM: 4096, Platform.DISCORD: 2000, Platform.CONSOLE: 4096}
BUTTON_LIMITS = {Platform.TELEGRAM: 100, Platform.DISCORD: 25, Platform.CONSOLE: 100}

# Answers to commands, shared by the commands and the entries.
MSG_NOT_PERMITTED = "Sorry, I can't play with you here."
MSG_NO_SUCH_BATTLE = "That battle doesn't exist."
MSG_BAD_BUTTON = "That button isn't valid."
MSG_RETRY = "Something went wrong — please try again."
MSG_FAMILY_SETUP = "Family mode is on here — let's battle over a cleaner setup."
MSG_FAMILY_NO_SETUP = "I couldn't find a family-friendly setup just now. Give one yourself: /battle <setup>"
MSG_ENTRY_WITHHELD = "Your punchline was withheld: family mode is on in that chat. Try a cleaner one?"
MSG_PROMOTE_REFUSED = "Sorry — only the bot's admins can promote a model version."


def span(seconds: float) -> str:
    """A short duration: '45 s', '2 min', '1 min 30 s'."""
    seconds = max(0, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min" + (f" {rest} s" if rest else "")


def _players_line(entries: Sequence[Entry]) -> str:
    names = [e.author_label for e in entries if e.kind is AuthorKind.PERSON]
    if any(e.kind is AuthorKind.BOT for e in entries):
        names.append("the bot")
    return "Players in: " + (", ".join(names) if names else "nobody yet")


def entry_view(battle: Battle, entries: Sequence[Entry], now: datetime, max_chars: int) -> View:
    """The announcement: the setup, how to enter, who is in (never what they wrote)."""
    if battle.chat.platform is Platform.TELEGRAM:
        how = "Reply to this message with your punchline, or press the button to send it to me in private."
        label = "🤫 Enter in private"
    else:
        how = "Press the button to write your punchline (only I see it)."
        label = "✍️ Enter a punchline"
    text = "\n".join(
        [
            f"⚔️ Joke battle #{battle.id}, started by {battle.starter.name or 'someone'}",
            f"Setup: {battle.setup}",
            "",
            how,
            f"One entry each (your latest counts, at most {max_chars} characters). "
            f"Entries close in {span((battle.entry_deadline - now).total_seconds())}.",
            _players_line(entries),
        ]
    )
    button = ViewButton(ButtonKind.ENTER, label, encode(EnterPayload()), battle.id, battle.entry_token or "")
    return View(text, (button,))


def entries_closed_view(battle: Battle, entries: Sequence[Entry]) -> View:
    """The announcement once entries are closed: no button any more."""
    return View(
        "\n".join(
            [
                f"⚔️ Joke battle #{battle.id}: entries are closed.",
                f"Setup: {battle.setup}",
                _players_line(entries),
            ]
        )
    )


def ballot_view(battle: Battle, entries: Sequence[Entry], now: datetime) -> View:
    """Shuffled, unnamed entries with one vote button each."""
    assert battle.vote_deadline is not None
    ordered = sorted(entries, key=lambda e: e.position or 0)
    lines = [f"🗳️ Battle #{battle.id}: vote for the funniest punchline!", f"Setup: {battle.setup}", ""]
    lines += [f"{e.position}. {e.text}" for e in ordered]
    lines += [
        "",
        "One vote each, anyone may vote (not for your own entry); you can change it until "
        f"voting closes in {span((battle.vote_deadline - now).total_seconds())}.",
    ]
    buttons = tuple(
        ViewButton(ButtonKind.VOTE, f"Vote {e.position}", encode(VotePayload(e.position)), battle.id)
        for e in ordered
        if e.position is not None
    )
    return View("\n".join(lines), buttons)


def ballot_closed_view(battle: Battle, entries: Sequence[Entry]) -> View:
    ordered = sorted(entries, key=lambda e: e.position or 0)
    lines = [f"🗳️ Battle #{battle.id}: voting is closed, results below.", f"Setup: {battle.setup}", ""]
    lines += [f"{e.position}. {e.text}" for e in ordered]
    return View("\n".join(lines))


def _votes(n: int) -> str:
    return f"{n} vote" + ("" if n == 1 else "s")


def results_view(result: RoundResult, tally: BotTally | None) -> View:
    """Every entry with its author, votes and points; the winner; people against the bot."""
    battle = result.battle
    lines = [f"🏆 Battle #{battle.id} results", f"Setup: {battle.setup}", ""]
    ranked = sorted(result.results, key=lambda r: (-r.score.points, r.entry.position or 0))
    for item in ranked:
        entry, score = item.entry, item.score
        mark = ""
        if score.won:
            mark = " 🏆 unanimous!" if result.unanimous else " 🏆"
        elif score.identical:
            mark = " (same as another entry: no points)"
        lines.append(
            f"{entry.position}. “{entry.text}” by {entry.author_label}: "
            f"{_votes(score.votes)}, {score.points} points{mark}"
        )
    if result.total_votes == 0:
        lines += ["", "Nobody voted, so nobody wins."]
    elif not any(r.score.won for r in result.results):
        lines += ["", "A tie at the top: no winner this time."]
    if result.outcome is BotOutcome.PEOPLE:
        lines.append("People beat the bot this round! 🎉")
    elif result.outcome is BotOutcome.BOT:
        lines.append("The bot won this round. 🤖")
    elif result.outcome is BotOutcome.TIE:
        lines.append("People and the bot tied.")
    if tally is not None and tally.rounds:
        lines.append(tally_line(tally))
    lines.append("/leaderboard shows the standings.")
    return View("\n".join(lines))


def tally_line(tally: BotTally) -> str:
    return (
        f"People against the bot here: people won {tally.people}, the bot won {tally.bot}, {tally.ties} tied."
    )


def too_few_view(battle: Battle, players: int, min_players: int) -> View:
    return View(
        f"⚔️ Battle #{battle.id} is off: {players} player{'s' if players != 1 else ''} entered, "
        f"and it takes {min_players} (the bot included). Try again with /battle."
    )


def cancelled_view(battle: Battle, by: str) -> View:
    return View(f"⚔️ Battle #{battle.id} was cancelled by {by}.")


def leaderboard_text(rows: Sequence[LeaderRow], tally: BotTally) -> str:
    if not rows:
        return "No battles finished here yet. Start one with /battle."
    lines = ["🏅 Battle leaderboard"]
    for rank, row in enumerate(rows, 1):
        name = "🤖 the bot" if row.user_id is None else row.name
        lines.append(
            f"{rank}. {name}: {row.points} points, {row.wins} win{'s' if row.wins != 1 else ''} "
            f"in {row.rounds} round{'s' if row.rounds != 1 else ''}"
        )
    if tally.rounds:
        lines.append(tally_line(tally))
    return "\n".join(lines)


def ballot_capacity(battle: Battle, settings: BattleSettings) -> int:
    """How many entries a ballot of this round can show in full on its platform: the message
    limit after the ballot's own lines, the button limit, and `max_entries`."""
    platform = battle.chat.platform
    header = f"🗳️ Battle #{battle.id}: vote for the funniest punchline!\nSetup: {battle.setup}\n\n"
    footer = "\nOne vote each, anyone may vote (not for your own entry); you can change it until voting closes in 59 min 59 s."
    per_entry = len("99. ") + settings.max_entry_chars + 1
    fits = (MESSAGE_LIMITS[platform] - len(header) - len(footer)) // per_entry
    return max(1, min(fits, BUTTON_LIMITS[platform], settings.max_entries))


def machine_slots(battle: Battle, settings: BattleSettings) -> int:
    """Ballot places kept for entries that are not people's: the bot's versions, the classic."""
    return settings.bot_versions + (1 if battle.classic else 0)
