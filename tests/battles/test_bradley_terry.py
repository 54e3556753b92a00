"""Bradley–Terry strengths from battles: recovered from simulated games with known strengths,
intervals that cover the truth, and the promotion rule. Deterministic: every rng is seeded."""

from __future__ import annotations

import math
import random
from itertools import combinations

import pytest

from bot.battles.bradley_terry import (
    Game,
    Verdict,
    decide,
    fit,
    round_games,
    strength_table,
    win_probability_interval,
)

TRUE = {"v1": -1.0, "v2": -0.2, "v3": 0.5, "v4": 1.3}


def true_p(a: str, b: str) -> float:
    return 1.0 / (1.0 + math.exp(TRUE[b] - TRUE[a]))


def expected_score(a: str, b: str, draw_rate: float) -> float:
    """What a's win probability means with draws counted half: the expected score."""
    return (1.0 - draw_rate) * true_p(a, b) + draw_rate / 2.0


def simulate(n: int, seed: int, draw_rate: float = 0.1) -> list[Game]:
    """Games between random pairs, won with the Bradley–Terry probability; some draws."""
    rng = random.Random(seed)
    pairs = list(combinations(sorted(TRUE), 2))
    games = []
    for _ in range(n):
        a, b = rng.choice(pairs)
        if rng.random() < draw_rate:
            games.append(Game(a, b, 0.5))
        else:
            games.append(Game(a, b, 1.0 if rng.random() < true_p(a, b) else 0.0))
    return games


def test_a_fit_recovers_the_order_and_the_gaps() -> None:
    result = fit(simulate(3000, seed=1, draw_rate=0.0))
    order = sorted(result.strengths, key=result.strengths.__getitem__)
    assert order == ["v1", "v2", "v3", "v4"]
    centre = sum(result.strengths.values()) / 4
    for v, theta in TRUE.items():
        assert result.strengths[v] - centre == pytest.approx(theta - sum(TRUE.values()) / 4, abs=0.15)
    assert result.win_probability("v4", "v1") == pytest.approx(true_p("v4", "v1"), abs=0.04)
    assert result.games["v1"] + result.games["v2"] + result.games["v3"] + result.games["v4"] == 6000


def test_intervals_cover_the_true_win_probability_in_most_seeds() -> None:
    seeds = range(20)
    covered = 0
    for seed in seeds:
        games = simulate(300, seed=100 + seed)
        interval = win_probability_interval(games, "v3", "v2", rounds=200, rng=random.Random(seed))
        assert interval.low <= interval.estimate <= interval.high
        covered += interval.low <= expected_score("v3", "v2", 0.1) <= interval.high
    assert covered >= 17  # 95% nominal: 19 expected of 20


def test_strength_table_orders_versions_and_covers_their_gaps() -> None:
    table = strength_table(simulate(800, seed=7), rounds=200, rng=random.Random(7))
    assert [row.version for row in table] == ["v4", "v3", "v2", "v1"]
    assert all(row.strength.low < row.strength.estimate < row.strength.high for row in table)
    assert sum(row.games for row in table) == 1600
    assert table[0].rating > 1000 > table[-1].rating


def test_draws_count_half_and_a_few_games_give_a_finite_fit() -> None:
    level = fit([Game("a", "b", 0.5)] * 10)
    assert level.win_probability("a", "b") == pytest.approx(0.5)
    one = fit([Game("a", "b", 1.0)])
    assert 0.5 < one.win_probability("a", "b") < 0.9  # the prior keeps it cautious
    assert fit([Game("a", "b", 1.0), Game("b", "a", 0.0)]).win_probability("a", "b") == pytest.approx(
        fit([Game("a", "b", 1.0)] * 2).win_probability("a", "b")
    )
    assert fit([]).strengths == {}
    with pytest.raises(ValueError):
        fit([Game("a", "b", 2.0)])


def test_round_games_are_decided_by_points() -> None:
    assert round_games({"v2": 300, "v1": 500, "v3": 300}) == [
        Game("v1", "v2", 1.0),
        Game("v1", "v3", 1.0),
        Game("v2", "v3", 0.5),
    ]


def games_between(challenger: str, current: str, wins: int, losses: int, draws: int = 0) -> list[Game]:
    return (
        [Game(challenger, current, 1.0)] * wins
        + [Game(current, challenger, 1.0)] * losses
        + [Game(challenger, current, 0.5)] * draws
    )


def test_decide_promotes_a_clearly_better_challenger() -> None:
    decision = decide("v2", "v1", games_between("v2", "v1", 30, 10), rounds=300, rng=random.Random(1))
    assert decision.verdict is Verdict.PROMOTE
    assert decision.win_probability.low > 0.5 and decision.games == 40
    assert "lower bound above 0.5" in decision.reason


def test_decide_retires_a_clearly_worse_challenger() -> None:
    decision = decide("v2", "v1", games_between("v2", "v1", 8, 32), rounds=300, rng=random.Random(1))
    assert decision.verdict is Verdict.RETIRE and decision.win_probability.high < 0.5


def test_decide_waits_while_the_interval_holds_half_or_games_are_few() -> None:
    even = decide("v2", "v1", games_between("v2", "v1", 12, 11, 5), rounds=300, rng=random.Random(1))
    assert even.verdict is Verdict.UNDECIDED and "includes 0.5" in even.reason
    early = decide("v2", "v1", games_between("v2", "v1", 5, 0), rounds=300, rng=random.Random(1))
    assert early.verdict is Verdict.UNDECIDED and "5 of 20 games" in early.reason
    same = decide("v2", "v1", games_between("v2", "v1", 30, 10), rounds=300, rng=random.Random(1))
    again = decide("v2", "v1", games_between("v2", "v1", 30, 10), rounds=300, rng=random.Random(1))
    assert same == again  # seeded: the same games always give the same answer
