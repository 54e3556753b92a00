"""Reactions and buttons as humour ratings on two axes (docs/DESIGN.md, decision 3).

Axes:
- funniness: +1 funny, -1 not funny, 0 neither;
- appropriateness: -1 flagged inappropriate, 0 not flagged.

A user's emoji set on a message folds to one verdict: funniness is the sign of
(#funny emoji - #not-funny emoji), appropriateness is -1 if any emoji is an inappropriate one.
Emoji outside the map are kept in the record but count for nothing. Buttons map directly:
funny -> (+1, 0), meh -> (-1, 0), inappropriate -> (0, -1).

Scores of a reply (see `score`), computed from a `ReplyTally` where each user's sources are
already folded (so a 🤣 reaction plus a "funny" button from the same person count once):
- funniness = (funny - not_funny) / (funny + not_funny), anonymous counts included as one
  voice per reaction; in [-1, 1]; None when nobody rated that axis.
- appropriateness = 1 - flagged / raters, anonymous counts included; in [0, 1]; None when
  nobody rated at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.storage.records import ReplyTally
from bot.types import Rating
from config.settings import RatingSettings

# Emoji presentation selector: Telegram sends "❤" where Discord sends "❤️"; match both.
_VARIATION_SELECTOR = "\ufe0f"


def emoji_key(emoji: str) -> str:
    """The form emoji are compared in: stripped, without the emoji variation selector."""
    return emoji.strip().replace(_VARIATION_SELECTOR, "")


@dataclass(frozen=True, slots=True)
class Verdict:
    """One rater's position on both axes."""

    funniness: int = 0  # -1, 0, +1
    appropriateness: int = 0  # -1 or 0

    @property
    def counts(self) -> bool:
        return self.funniness != 0 or self.appropriateness != 0


RATING_VERDICTS: dict[Rating, Verdict] = {
    Rating.FUNNY: Verdict(1, 0),
    Rating.MEH: Verdict(-1, 0),
    Rating.INAPPROPRIATE: Verdict(0, -1),
}


def verdict_for_rating(rating: Rating) -> Verdict:
    """A button's verdict."""
    return RATING_VERDICTS[rating]


@dataclass(frozen=True, slots=True)
class EmojiMap:
    """Which emoji mean funny, not funny, inappropriate (from `RatingSettings`)."""

    # In the configured order (the first is the example in help texts), by `emoji_key`.
    funny: tuple[str, ...]
    not_funny: tuple[str, ...]
    inappropriate: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: RatingSettings) -> EmojiMap:
        return cls(
            funny=normalise_emoji_set(settings.funny, keep_order=True),
            not_funny=normalise_emoji_set(settings.not_funny, keep_order=True),
            inappropriate=normalise_emoji_set(settings.inappropriate, keep_order=True),
        )

    def verdict(self, emoji: str) -> Verdict:
        """The verdict of one emoji (an emoji listed on two axes counts on both)."""
        key = emoji_key(emoji)
        funniness = (key in self.funny) - (key in self.not_funny)
        return Verdict(funniness, -1 if key in self.inappropriate else 0)

    def fold(self, emojis: Iterable[str]) -> Verdict:
        """One user's verdict from their whole emoji set on a message."""
        total = 0
        flagged = False
        for emoji in set(emojis):
            v = self.verdict(emoji)
            total += v.funniness
            flagged = flagged or v.appropriateness < 0
        return Verdict((total > 0) - (total < 0), -1 if flagged else 0)

    def is_mapped(self, emoji: str) -> bool:
        return self.verdict(emoji).counts

    def example(self, axis: str) -> str:
        """One emoji for help texts, e.g. example("funny") -> "🤣"."""
        members = {"funny": self.funny, "not_funny": self.not_funny, "inappropriate": self.inappropriate}[
            axis
        ]
        return members[0] if members else ""


def normalise_emoji_set(emojis: Iterable[str], keep_order: bool = False) -> tuple[str, ...]:
    """An emoji set as stored: by `emoji_key`, de-duplicated, no blanks; sorted unless
    `keep_order`."""
    seen = dict.fromkeys(key for key in (emoji_key(e) for e in emojis) if key)
    return tuple(seen) if keep_order else tuple(sorted(seen))


@dataclass(frozen=True, slots=True)
class Scores:
    funniness: float | None  # [-1, 1]
    appropriateness: float | None  # [0, 1]
    raters: int  # people plus anonymous reactions


def score(tally: ReplyTally) -> Scores:
    """The two scores of a reply (formulas in the module docstring)."""
    funny = tally.funny + tally.anon_funny
    not_funny = tally.not_funny + tally.anon_not_funny
    voices = funny + not_funny
    funniness = (funny - not_funny) / voices if voices else None
    raters = tally.raters + tally.anon_total
    flagged = tally.flagged + tally.anon_inappropriate
    appropriateness = 1 - flagged / raters if raters else None
    return Scores(funniness, appropriateness, raters)


def mean_scores(tallies: Iterable[ReplyTally]) -> Scores:
    """Scores over many replies: every voice pooled (a reply with more raters weighs more)."""
    funny = not_funny = raters = flagged = 0
    for t in tallies:
        funny += t.funny + t.anon_funny
        not_funny += t.not_funny + t.anon_not_funny
        raters += t.raters + t.anon_total
        flagged += t.flagged + t.anon_inappropriate
    voices = funny + not_funny
    return Scores(
        (funny - not_funny) / voices if voices else None,
        1 - flagged / raters if raters else None,
        raters,
    )


def best_rated(tallies: Iterable[ReplyTally], limit: int = 3) -> list[tuple[ReplyTally, Scores]]:
    """The best punchlines: highest funniness, more raters first on ties.

    Replies that at least half their raters flagged are never shown off.
    """
    ranked = []
    for t in tallies:
        s = score(t)
        if s.funniness is None or (s.appropriateness is not None and s.appropriateness <= 0.5):
            continue
        ranked.append((t, s))
    ranked.sort(key=lambda ts: (-(ts[1].funniness or 0.0), -ts[1].raters, ts[0].reply_id))
    return ranked[:limit]
