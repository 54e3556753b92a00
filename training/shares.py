"""Share caps: no group (a chat, a rater) may carry more than a given share of the total weight.

The guard against trolls and feedback loops in `training.preferences`. A group over the cap has
all its items scaled down by one factor until it holds exactly the cap ("water-filling": the
cap `c` per group solves `c = share * (exempt + sum(min(W_g, c)))`), so a chat that produced
half the data still teaches, only no more than its share. Items without a group (an unknown
chat, the corpus) are exempt from the cap but count in the total.

When the cap cannot hold (fewer groups than 1/share and nothing exempt: one chat cannot be
under 25% of itself), every group is brought to the smallest group's weight instead, the
nearest equal split, and the result says it was loosened.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

_BISECTIONS = 200  # enough to reach float precision on any total


@dataclass(frozen=True, slots=True)
class Capped:
    """New weights (same order), how many items lost weight, and whether the cap was loosened."""

    weights: list[float]
    capped: int
    loosened: bool


def cap_shares(weights: Sequence[float], groups: Sequence[str | None], max_share: float) -> Capped:
    """Scale down the items of each group whose weight exceeds `max_share` of the total.

    `groups[i]` names item i's group; None or "" means exempt. `max_share` >= 1 caps nothing.
    """
    if len(weights) != len(groups):
        raise ValueError("one group per weight")
    if any(w < 0 for w in weights):
        raise ValueError("weights must be >= 0")
    if max_share >= 1.0 or not weights:
        return Capped(list(weights), 0, False)
    if max_share <= 0:
        raise ValueError(f"max_share must be positive, got {max_share}")
    totals: dict[str, float] = defaultdict(float)
    exempt = 0.0
    for weight, group in zip(weights, groups, strict=True):
        if group:
            totals[group] += weight
        else:
            exempt += weight
    named = [t for t in totals.values() if t > 0]
    if not named:
        return Capped(list(weights), 0, False)
    cap, loosened = _cap_level(named, exempt, max_share)
    factors = {g: min(1.0, cap / t) if t > 0 else 1.0 for g, t in totals.items()}
    new = [w * factors[g] if g else w for w, g in zip(weights, groups, strict=True)]
    capped = sum(1 for old, w in zip(weights, new, strict=True) if w < old)
    return Capped(new, capped, loosened)


def _cap_level(totals: list[float], exempt: float, share: float) -> tuple[float, bool]:
    """The largest per-group weight `c` with `c <= share * (exempt + sum(min(t, c)))`.

    `excess(c) = c - share * (exempt + sum(min(t, c)))` is convex in c and <= 0 at c = 0, so the
    allowed levels are an interval [0, c*]; bisection finds c*.
    """
    if exempt == 0 and len(totals) * share < 1.0:
        return min(totals), True  # infeasible: the nearest equal split

    def excess(c: float) -> float:
        return c - share * (exempt + sum(min(t, c) for t in totals))

    low, high = 0.0, max(totals)
    if excess(high) <= 0:
        return high, False
    for _ in range(_BISECTIONS):
        mid = (low + high) / 2
        if excess(mid) <= 0:
            low = mid
        else:
            high = mid
    return low, False


def largest_share(weights: Sequence[float], groups: Sequence[str | None]) -> float:
    """The largest share any named group carries (0 when nothing is named or weighs anything)."""
    total = sum(weights)
    if total <= 0:
        return 0.0
    sums: dict[str, float] = defaultdict(float)
    for weight, group in zip(weights, groups, strict=True):
        if group:
            sums[group] += weight
    return max(sums.values(), default=0.0) / total
