"""Elo ratings between adapter versions, fed by rounds in which the bot fielded several.

Each pair of versions in a round is one game: the version whose entry scored more points wins,
equal points draw. All pairs of a round are rated from the ratings before the round, so the
order of versions does not matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from itertools import combinations

DEFAULT_RATING = 1000.0
K_FACTOR = 32.0


@dataclass(frozen=True, slots=True)
class EloRating:
    version: str
    rating: float = DEFAULT_RATING
    games: int = 0
    wins: int = 0
    draws: int = 0
    losses: int = 0


def expected_score(rating: float, opponent: float) -> float:
    """The chance `rating` beats `opponent` (a draw counting half)."""
    return 1.0 / (1.0 + 10.0 ** ((opponent - rating) / 400.0))


def apply_round(
    table: Mapping[str, EloRating], points: Mapping[str, int], k: float = K_FACTOR
) -> dict[str, EloRating]:
    """New ratings for the versions in `points` (version → its entry's points this round).

    Versions not yet in `table` start at DEFAULT_RATING. Returns only the versions that played.
    """
    before = {v: table.get(v, EloRating(v)) for v in points}
    delta = dict.fromkeys(points, 0.0)
    tally = {v: [0, 0, 0] for v in points}  # wins, draws, losses
    for a, b in combinations(sorted(points), 2):
        if points[a] > points[b]:
            result_a = 1.0
        elif points[a] < points[b]:
            result_a = 0.0
        else:
            result_a = 0.5
        exp_a = expected_score(before[a].rating, before[b].rating)
        delta[a] += k * (result_a - exp_a)
        delta[b] += k * ((1.0 - result_a) - (1.0 - exp_a))
        outcome_a = 0 if result_a == 1.0 else 1 if result_a == 0.5 else 2
        tally[a][outcome_a] += 1
        tally[b][2 - outcome_a] += 1
    return {
        v: replace(
            before[v],
            rating=before[v].rating + delta[v],
            games=before[v].games + sum(tally[v]),
            wins=before[v].wins + tally[v][0],
            draws=before[v].draws + tally[v][1],
            losses=before[v].losses + tally[v][2],
        )
        for v in points
    }


def format_elo_table(rows: list[EloRating]) -> str:
    """A short text table for /stats, best first; empty string when no version has played."""
    if not rows:
        return ""
    ranked = sorted(rows, key=lambda r: (-r.rating, r.version))
    lines = ["Battle Elo of adapter versions:"]
    for rank, row in enumerate(ranked, 1):
        lines.append(
            f"{rank}. {row.version}: {row.rating:.0f} "
            f"({row.wins}W {row.draws}D {row.losses}L in {row.games} games)"
        )
    return "\n".join(lines)
