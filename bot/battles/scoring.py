"""Points for a finished round (Quiplash-style).

- Every entry earns `vote_points × its share of the votes` (rounded).
- The entry with the most votes wins and gets `win_bonus`; when it took every vote (and at
  least two were cast) it gets `unanimous_bonus` instead. A tie for the most votes has no
  winner and no bonus.
- Entries that say the same thing (case, punctuation and spacing ignored; the classic
  included) score nothing and cannot win, so copying another entry or the corpus never pays.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.battles.models import AuthorKind, BotOutcome, Entry, EntryScore, RoundScore
from model.text import same_text_key


@dataclass(frozen=True, slots=True)
class ScoringRules:
    vote_points: int = 1000
    win_bonus: int = 100
    unanimous_bonus: int = 200


def identical_ids(entries: Sequence[Entry]) -> set[int]:
    """Ids of entries whose text another entry of the round also has."""
    keys = {entry.id: same_text_key(entry.text) for entry in entries}
    counts = Counter(keys.values())
    return {entry_id for entry_id, key in keys.items() if counts[key] > 1}


def score_round(entries: Sequence[Entry], votes: Mapping[int, int], rules: ScoringRules) -> RoundScore:
    """Score every entry from its vote count (`votes` maps entry id to votes; missing = 0)."""
    copies = identical_ids(entries)
    total = sum(votes.get(entry.id, 0) for entry in entries)
    eligible = [e for e in entries if e.id not in copies and votes.get(e.id, 0) > 0]
    winner_id: int | None = None
    unanimous = False
    if eligible:
        best = max(votes[e.id] for e in eligible)
        leaders = [e for e in eligible if votes[e.id] == best]
        if len(leaders) == 1:
            winner_id = leaders[0].id
            unanimous = best == total and total >= 2
    scores = []
    for entry in entries:
        count = votes.get(entry.id, 0)
        identical = entry.id in copies
        points = 0
        if not identical and total:
            points = round(rules.vote_points * count / total)
        won = entry.id == winner_id
        if won:
            points += rules.unanimous_bonus if unanimous else rules.win_bonus
        scores.append(EntryScore(entry.id, count, points, won, identical))
    return RoundScore(tuple(scores), total, winner_id, unanimous)


def bot_outcome(entries: Sequence[Entry], score: RoundScore) -> BotOutcome | None:
    """People against the bot, by each side's best points; None when either side is missing
    or no vote was cast (nothing was decided)."""
    people = [score.of(e.id).points for e in entries if e.kind is AuthorKind.PERSON]
    bots = [score.of(e.id).points for e in entries if e.kind is AuthorKind.BOT]
    if not people or not bots or score.total_votes == 0:
        return None
    if max(people) > max(bots):
        return BotOutcome.PEOPLE
    if max(bots) > max(people):
        return BotOutcome.BOT
    return BotOutcome.TIE
