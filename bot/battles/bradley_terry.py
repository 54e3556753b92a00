"""Bradley–Terry strengths of adapter versions from battle outcomes, with bootstrap intervals,
and the promotion rule for a challenger.

Elo (`bot.battles.elo`) stays for the leaderboard, but its result depends on the order of the
games; Bradley–Terry does not. Each version v has a strength θ_v, and

    P(a beats b) = 1 / (1 + exp(θ_b − θ_a)),

fitted to all games at once by maximum likelihood (Newton steps on a concave objective), a
draw counting half a win to each side. A tiny prior (each version also drew `prior_games` games against a fixed anchor of
strength 0) keeps the fit defined with few games: a 3–0 start gives a finite, cautious strength
instead of infinity. Intervals come from the bootstrap: resample the games with replacement,
refit, take percentiles. The random generator is injected (seeded by default), so the same games
always give the same intervals.

Promotion (`decide`): a challenger is promoted when the lower bound of its win probability
against the current version exceeds 0.5, retired when the upper bound falls below 0.5, and
undecided otherwise, or while they have played fewer than `min_games` games against each other.

Pure Python: no torch, no chat library.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations

PRIOR_GAMES = 1.0  # virtual draws against the anchor: enough to stay finite, too few to matter later
BOOTSTRAP_ROUNDS = 1000  # percentiles of 1000 refits move by well under a percentage point
CONFIDENCE = 0.95
# With fewer direct games the bootstrap is too sure of itself: a 3–0 start resamples to 3–0
# in 30% of rounds and to a win-probability interval far above 0.5.
MIN_GAMES = 20
ELO_SCALE = 400.0 / math.log(10.0)  # one unit of θ in Elo points, for people used to Elo
_TOLERANCE = 1e-9
_MAX_ITERATIONS = 100  # Newton converges in under ten steps here


@dataclass(frozen=True, slots=True)
class Game:
    """One game between two versions: `score` is the first's result (1 win, 0.5 draw, 0 loss)."""

    first: str
    second: str
    score: float


def round_games(points: Mapping[str, int]) -> list[Game]:
    """The games of one battle round: each pair of versions that played is one game, decided by
    points (equal points draw), the rule Elo uses too."""
    games = []
    for a, b in combinations(sorted(points), 2):
        score = 1.0 if points[a] > points[b] else 0.0 if points[a] < points[b] else 0.5
        games.append(Game(a, b, score))
    return games


@dataclass(frozen=True, slots=True)
class Fit:
    """Fitted strengths θ (the anchor of the prior is 0) and games played per version."""

    strengths: dict[str, float]
    games: dict[str, int]

    def win_probability(self, a: str, b: str) -> float:
        """P(a beats b), a draw counting half; a version without games has strength 0."""
        diff = self.strengths.get(b, 0.0) - self.strengths.get(a, 0.0)
        return 1.0 / (1.0 + math.exp(diff))


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate with its bootstrap percentile interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class VersionStrength:
    """One row of `/stats` and `punchline versions`: strength, its interval, games played."""

    version: str
    strength: Interval  # θ
    games: int

    @property
    def rating(self) -> float:
        """θ on the Elo scale (1000 = the prior's anchor), for display."""
        return 1000.0 + ELO_SCALE * self.strength.estimate


class Verdict(StrEnum):
    PROMOTE = "promote"
    RETIRE = "retire"
    UNDECIDED = "undecided"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a challenger, and the numbers behind it."""

    verdict: Verdict
    challenger: str
    current: str
    win_probability: Interval  # the challenger's against the current version
    games: int  # games between the two
    reason: str


def fit(games: Iterable[Game], prior_games: float = PRIOR_GAMES) -> Fit:
    """Bradley–Terry strengths of every version in `games` (maximum likelihood with the prior)."""
    return _fit_counts(_counts(games), prior_games)


def _counts(games: Iterable[Game]) -> dict[tuple[str, str], list[float]]:
    """(a, b) with a < b -> [games, a's total score]."""
    counts: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for game in games:
        if game.first == game.second:
            continue  # a version against itself says nothing
        if not 0.0 <= game.score <= 1.0:
            raise ValueError(f"a game's score is 0, 0.5 or 1, got {game.score}")
        a, b, score = (
            (game.first, game.second, game.score)
            if game.first < game.second
            else (game.second, game.first, 1.0 - game.score)
        )
        counts[a, b][0] += 1
        counts[a, b][1] += score
    return counts


def _fit_counts(counts: Mapping[tuple[str, str], Sequence[float]], prior_games: float) -> Fit:
    """Newton's method on the (concave) log-likelihood plus prior; a handful of steps suffice."""
    if prior_games <= 0:
        raise ValueError("prior_games must be positive: without it a perfect record has no finite fit")
    played: dict[str, int] = defaultdict(int)
    for (a, b), (n, _) in counts.items():
        played[a] += int(n)
        played[b] += int(n)
    versions = sorted(played)
    index = {v: i for i, v in enumerate(versions)}
    theta = [0.0] * len(versions)
    for _ in range(_MAX_ITERATIONS):
        gradient, hessian = _derivatives(theta, counts, index, prior_games)
        step = _solve(hessian, gradient)
        theta = [t - s for t, s in zip(theta, step, strict=True)]
        if max((abs(s) for s in step), default=0.0) < _TOLERANCE:
            break
    return Fit({v: theta[index[v]] for v in versions}, dict(played))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _derivatives(
    theta: list[float],
    counts: Mapping[tuple[str, str], Sequence[float]],
    index: Mapping[str, int],
    prior_games: float,
) -> tuple[list[float], list[list[float]]]:
    """Gradient and Hessian of the log-likelihood, the prior's virtual draws included."""
    k = len(theta)
    gradient = [0.0] * k
    hessian = [[0.0] * k for _ in range(k)]
    for i in range(k):  # `prior_games` draws against an anchor at θ = 0
        p = _sigmoid(theta[i])
        gradient[i] += prior_games * (0.5 - p)
        hessian[i][i] -= prior_games * p * (1.0 - p)
    for (a, b), (n, score_a) in counts.items():
        i, j = index[a], index[b]
        p = _sigmoid(theta[i] - theta[j])
        gradient[i] += score_a - n * p
        gradient[j] -= score_a - n * p
        curvature = n * p * (1.0 - p)
        hessian[i][i] -= curvature
        hessian[j][j] -= curvature
        hessian[i][j] += curvature
        hessian[j][i] += curvature
    return gradient, hessian


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """x with matrix @ x = vector (Gaussian elimination with partial pivoting; the Hessian is
    negative definite thanks to the prior, so it never is singular)."""
    k = len(vector)
    rows = [row[:] + [value] for row, value in zip(matrix, vector, strict=True)]
    for col in range(k):
        pivot = max(range(col, k), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, k):
            factor = rows[r][col] / rows[col][col]
            for c in range(col, k + 1):
                rows[r][c] -= factor * rows[col][c]
    x = [0.0] * k
    for r in reversed(range(k)):
        x[r] = (rows[r][k] - sum(rows[r][c] * x[c] for c in range(r + 1, k))) / rows[r][r]
    return x


def bootstrap_fits(
    games: Sequence[Game],
    rounds: int = BOOTSTRAP_ROUNDS,
    rng: random.Random | None = None,
    prior_games: float = PRIOR_GAMES,
) -> list[Fit]:
    """Fits to `rounds` resamples of the games (with replacement); seeded by default."""
    rng = rng or random.Random(0)
    if not games:
        return []
    return [_fit_counts(_counts(rng.choices(games, k=len(games))), prior_games) for _ in range(rounds)]


def _interval(estimate: float, values: list[float], confidence: float) -> Interval:
    if not values:
        return Interval(estimate, estimate, estimate)
    ordered = sorted(values)
    tail = (1.0 - confidence) / 2.0
    return Interval(estimate, _quantile(ordered, tail), _quantile(ordered, 1.0 - tail))


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _bootstrap_interval(
    games: Sequence[Game],
    statistic: Callable[[Fit], float],
    rounds: int,
    confidence: float,
    rng: random.Random | None,
    prior_games: float,
) -> Interval:
    estimate = statistic(fit(games, prior_games))
    values = [statistic(f) for f in bootstrap_fits(games, rounds, rng, prior_games)]
    return _interval(estimate, values, confidence)


def win_probability_interval(
    games: Sequence[Game],
    a: str,
    b: str,
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
    confidence: float = CONFIDENCE,
    rng: random.Random | None = None,
    prior_games: float = PRIOR_GAMES,
) -> Interval:
    """P(a beats b) from the fit to all games, with its bootstrap percentile interval."""
    return _bootstrap_interval(games, lambda f: f.win_probability(a, b), rounds, confidence, rng, prior_games)


def strength_table(
    games: Sequence[Game],
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
    confidence: float = CONFIDENCE,
    rng: random.Random | None = None,
    prior_games: float = PRIOR_GAMES,
) -> list[VersionStrength]:
    """Every version's strength, interval and games, strongest first (one set of resamples)."""
    point = fit(games, prior_games)
    fits = bootstrap_fits(games, rounds, rng, prior_games)
    rows = [
        VersionStrength(
            version=v,
            # A version missing from a resample played no game in it: its strength there is the
            # prior's, 0, which widens its interval as it should.
            strength=_interval(theta, [f.strengths.get(v, 0.0) for f in fits], confidence),
            games=point.games[v],
        )
        for v, theta in point.strengths.items()
    ]
    return sorted(rows, key=lambda r: (-r.strength.estimate, r.version))


def decide(
    challenger: str,
    current: str,
    games: Sequence[Game],
    *,
    confidence: float = CONFIDENCE,
    rounds: int = BOOTSTRAP_ROUNDS,
    min_games: int = MIN_GAMES,
    rng: random.Random | None = None,
    prior_games: float = PRIOR_GAMES,
) -> Decision:
    """Promote, retire or wait: the challenger's win probability against the current version,
    fitted over all games (other versions' games sharpen both strengths), with its interval."""
    if challenger == current:
        raise ValueError("a version cannot challenge itself")
    direct = sum(1 for g in games if {g.first, g.second} == {challenger, current})
    probability = win_probability_interval(
        games, challenger, current, rounds=rounds, confidence=confidence, rng=rng, prior_games=prior_games
    )
    shown = f"{probability.estimate:.2f} [{probability.low:.2f}, {probability.high:.2f}]"
    if direct < min_games:
        verdict = Verdict.UNDECIDED
        reason = f"{direct} of {min_games} games against {current} played; win probability {shown}"
    elif probability.low > 0.5:
        verdict, reason = Verdict.PROMOTE, f"beats {current} with probability {shown}: lower bound above 0.5"
    elif probability.high < 0.5:
        verdict, reason = Verdict.RETIRE, f"beats {current} with probability {shown}: upper bound below 0.5"
    else:
        verdict, reason = Verdict.UNDECIDED, f"win probability {shown} against {current} includes 0.5"
    return Decision(verdict, challenger, current, probability, direct, reason)
