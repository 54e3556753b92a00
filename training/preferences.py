"""Preference data from the chat: KTO rows from rated replies, DPO pairs from battles.

From rated replies (`reply` and per-rater `rating` rows of the export), one KTO row per
punchline:
- *desirable* when its funniness (funny - not funny over the votes, in [-1, 1]) is at least
  `desirable_funniness` from at least `min_raters` people and nobody flagged it;
- *undesirable* when its funniness is at most `undesirable_funniness` from at least `min_raters`
  people, or when anyone (`min_flags`) flagged it as inappropriate;
- left out otherwise (too few raters, or not clearly either).
Per-rater `rating` rows are the votes; a reply without them (an older export) falls back to its
aggregate `reply` row, whose counts become anonymous votes. Flags from both are counted.

From battles, DPO pairs: rounds with at least `min_battle_votes` votes and one winner; the winner
(chosen) paired with every entry that got fewer votes (rejected), each pair weighted
1 / (pairs in its round), so a crowded round counts as much as a small one. Identical entries
(case and punctuation ignored) never form a pair; people's entries are data too.

Guards against trolls and feedback loops:
- a flagged punchline (anywhere in the export) is never desirable and never chosen;
- duplicate punchlines are merged: the same (setup, punchline) rated in several replies is one
  row with everyone's votes (one vote per person), the same pair from several rounds one pair;
- no person's votes carry more than `max_rater_share` of all votes, and no chat more than
  `max_chat_share` of the rows or pairs (`training.shares`: over the cap, weights shrink);
  battle pairs count for the person who wrote the chosen entry;
- the newest `eval_fraction` of rows and of pairs is held out (a split by time, so evaluation
  data is always newer than training data);
- rows of people in `exclude_raters` are never used (the exporter already leaves out people who
  opted out; this is the second line of that promise).

Pure Python: nothing here imports torch. Every decision is counted in `PreferenceSummary`.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Generic, TypeVar

from model.filters import dedupe_key
from model.text import clean_text
from training.feedback import BATTLE, KINDS, PERSON, RATING, REPLY, FeedbackRow
from training.shares import cap_shares
from training.split import question_key

# Reasons, as they appear in the summary (and in `punchline align`'s refusal).
DESIRABLE = "desirable"
UNDESIRABLE_NOT_FUNNY = "undesirable: not funny"
UNDESIRABLE_FLAGGED = "undesirable: flagged"
TOO_FEW_RATERS = "dropped: too few raters"
NOT_CLEAR = "dropped: not clear"
EMPTY = "dropped: empty punchline"
DUPLICATE = "merged: duplicate punchline"
VOTES_CAPPED = "votes capped: rater share"
CHAT_CAPPED = "capped: chat share"
AUTHOR_CAPPED = "capped: author share"
OPTED_OUT = "dropped: opted out"

ROUNDS = "rounds"
PAIRS = "pairs"
TOO_FEW_VOTES = "dropped round: too few votes"
NO_WINNER = "dropped round: no winner"
WINNER_FLAGGED = "dropped round: winner flagged"
WINNER_OPTED_OUT = "dropped round: winner opted out"
IDENTICAL = "skipped entry: identical to the winner"
EMPTY_ENTRY = "skipped entry: empty"
NO_BATTLE_ID = "dropped entry: no battle id"
DUPLICATE_PAIR = "merged: duplicate pair"

_CAP_ROUNDS = 20  # alternating two caps converges in a few; this bounds it


@dataclass(frozen=True, slots=True)
class PreferenceOptions:
    """Thresholds and caps for building preference data; each is a `punchline align` flag."""

    # One person's taste is not a verdict: a row needs two people behind it.
    min_raters: int = 2
    # "Clearly" funny / not funny: 0.5 is a 3-to-1 majority of the votes either way.
    desirable_funniness: float = 0.5
    undesirable_funniness: float = -0.5
    # One flag keeps a punchline from ever being learned as good: better to lose a joke than to
    # teach an offensive one.
    min_flags: int = 1
    # Fewer votes than this cannot rank a round's entries.
    min_battle_votes: int = 3
    # No chat carries more than a quarter of the rows or pairs, no person more than a tenth of the
    # votes (or of the winning entries): one lively group or one keen troll cannot steer it.
    max_chat_share: float = 0.25
    max_rater_share: float = 0.1
    # The newest tenth is held out: training loss on it, and the gate's preference accuracy.
    eval_fraction: float = 0.1
    # Rater hashes never to use (the exporter already drops people who opted out).
    exclude_raters: frozenset[str] = frozenset()

    def validate(self) -> None:
        """Raise `ValueError` naming the first option out of range."""
        if self.min_raters < 1 or self.min_flags < 1 or self.min_battle_votes < 1:
            raise ValueError("min_raters, min_flags and min_battle_votes must be at least 1")
        if not -1 <= self.undesirable_funniness < self.desirable_funniness <= 1:
            raise ValueError("need -1 <= undesirable_funniness < desirable_funniness <= 1")
        if not (0 < self.max_chat_share <= 1 and 0 < self.max_rater_share <= 1):
            raise ValueError("max_chat_share and max_rater_share must be in (0, 1]")
        if not 0 <= self.eval_fraction < 1:
            raise ValueError("eval_fraction must be in [0, 1)")


@dataclass(frozen=True, slots=True)
class KtoRow:
    """One punchline judged desirable or undesirable, with the weight it trains with."""

    setup: str
    punchline: str
    desirable: bool
    weight: float
    chat: str  # salted chat hash ("" when unknown)
    raters: tuple[str, ...]  # hashes of the people whose votes made the verdict
    created_at: datetime
    source: str  # "reply" (a rated bot reply) or "replay" (a corpus joke, `training.replay`)
    reason: str = ""  # DESIRABLE, UNDESIRABLE_NOT_FUNNY, UNDESIRABLE_FLAGGED, or "corpus"


@dataclass(frozen=True, slots=True)
class DpoPair:
    """A battle's winner (chosen) against an entry with fewer votes (rejected)."""

    setup: str
    chosen: str
    rejected: str
    weight: float
    chat: str
    created_at: datetime
    battle_id: str
    author: str = ""  # hash of the person who wrote the chosen entry ("" for the bot, the classic)


T = TypeVar("T", KtoRow, DpoPair)


@dataclass(frozen=True, slots=True)
class TimeSplit(Generic[T]):
    """Training items and the newest ones held out for evaluation (all strictly newer)."""

    train: list[T]
    eval: list[T]


@dataclass(slots=True)
class PreferenceSummary:
    """What happened to every row, by reason."""

    rows: Counter[str] = field(default_factory=Counter)  # export rows by kind, unreadable by reason
    kto: Counter[str] = field(default_factory=Counter)
    dpo: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """Three lines (rows, KTO, DPO) plus notes, for the command line and refusals."""

        def join(counts: Counter[str]) -> str:
            return ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()) if n) or "none"

        lines = [
            f"feedback rows: {join(self.rows)}",
            f"rated replies (KTO): {join(self.kto)}",
            f"battles (DPO): {join(self.dpo)}",
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


@dataclass(frozen=True, slots=True)
class PreferenceData:
    """KTO rows and DPO pairs, each split by time, and the summary of how they were made."""

    kto: TimeSplit[KtoRow]
    dpo: TimeSplit[DpoPair]
    summary: PreferenceSummary

    def counts(self) -> dict[str, int]:
        """The sizes recorded in an aligned adapter's `punchline.json`."""
        return {
            "kto_train": len(self.kto.train),
            "kto_eval": len(self.kto.eval),
            "kto_desirable": sum(r.desirable for r in self.kto.train),
            "kto_undesirable": sum(not r.desirable for r in self.kto.train),
            "dpo_train": len(self.dpo.train),
            "dpo_eval": len(self.dpo.eval),
            "feedback_rows": sum(n for kind, n in self.summary.rows.items() if kind in KINDS),
        }

    def fingerprint(self) -> str:
        """SHA-256 over the training rows and pairs (recorded as the adapter's data fingerprint)."""
        digest = hashlib.sha256()
        for row in self.kto.train:
            digest.update(
                f"k\x1f{row.setup}\x1f{row.punchline}\x1f{row.desirable}\x1f{row.weight:.6f}\x1e".encode()
            )
        for pair in self.dpo.train:
            digest.update(
                f"d\x1f{pair.setup}\x1f{pair.chosen}\x1f{pair.rejected}\x1f{pair.weight:.6f}\x1e".encode()
            )
        return digest.hexdigest()


def build_preferences(
    rows: Iterable[FeedbackRow], options: PreferenceOptions | None = None
) -> PreferenceData:
    """KTO rows and DPO pairs from export rows, split by time, with every guard applied.

    Raises `ValueError` for options out of range; rows are never raised, only counted.
    """
    options = options or PreferenceOptions()
    options.validate()
    summary = PreferenceSummary()
    rows = list(rows)
    summary.rows.update(row.kind for row in rows)
    kept = [r for r in rows if not (r.rater and r.rater in options.exclude_raters)]
    if len(kept) < len(rows):
        summary.rows[OPTED_OUT] += len(rows) - len(kept)
    items = _reply_items(rows, options.exclude_raters, summary)
    _cap_rater_votes(items, options, summary)
    flags = _flags_by_punchline(items)
    kto = [row for item in items if (row := _verdict(item, flags, options, summary)) is not None]
    flagged = {key for key, (count, _) in flags.items() if count >= options.min_flags}
    flagged |= {dedupe_key(r.punchline) for r in kept if r.kind == BATTLE and r.flagged}
    pairs = _merge_pairs(_battle_pairs(rows, flagged, options, summary), summary)
    kto_split = time_split(kto, options.eval_fraction)
    dpo_split = time_split(pairs, options.eval_fraction)
    return PreferenceData(
        kto=TimeSplit(
            _cap_kto(kto_split.train, options, summary), _cap_kto(kto_split.eval, options, summary)
        ),
        dpo=TimeSplit(
            _cap_pairs(dpo_split.train, options, summary), _cap_pairs(dpo_split.eval, options, summary)
        ),
        summary=summary,
    )


def time_split(items: Sequence[T], fraction: float) -> TimeSplit[T]:
    """The newest `fraction` (rounded up) held out; items sharing the boundary's time stay in
    training, so every held-out item is strictly newer than every training item."""
    ordered = sorted(items, key=lambda item: item.created_at)
    held = math.ceil(len(ordered) * fraction) if fraction > 0 and len(ordered) > 1 else 0
    boundary = len(ordered) - held
    while 0 < boundary < len(ordered) and ordered[boundary].created_at == ordered[boundary - 1].created_at:
        boundary += 1
    return TimeSplit(train=ordered[:boundary], eval=ordered[boundary:])


# --- rated replies -> KTO rows -------------------------------------------------------------------


@dataclass(slots=True)
class _Vote:
    """One person's verdict on a punchline (rater "" = an anonymous count from an aggregate row)."""

    rater: str
    funniness: int  # -1, 0 (no funniness vote, e.g. only a flag), +1
    flagged: bool
    at: datetime
    weight: float = 1.0


@dataclass(slots=True)
class _Item:
    """One (setup, punchline) with every vote on it, duplicates merged."""

    setup: str
    punchline: str
    chat: str
    created_at: datetime
    votes: list[_Vote]
    extra_flags: int = 0  # flags in aggregate rows beyond the per-rater ones (anonymous reactions)


def _reply_items(
    rows: Sequence[FeedbackRow], exclude: frozenset[str], summary: PreferenceSummary
) -> list[_Item]:
    """One item per rated reply, then duplicates (same setup and punchline) merged."""
    replies: dict[str, FeedbackRow] = {}
    ratings: dict[str, list[FeedbackRow]] = defaultdict(list)
    for row in rows:
        if row.kind == REPLY:
            replies[row.id] = row
        elif row.kind == RATING:
            ratings[row.id].append(row)
    merged: dict[tuple[str, str], _Item] = {}
    for reply_id in list(replies) + [i for i in ratings if i not in replies]:
        item = _item(replies.get(reply_id), ratings.get(reply_id, []), exclude)
        if not clean_text(item.punchline) or not dedupe_key(item.punchline):
            summary.kto[EMPTY] += 1
            continue
        key = (question_key(item.setup), dedupe_key(item.punchline))
        if key in merged:
            summary.kto[DUPLICATE] += 1
            _merge_into(merged[key], item)
        else:
            merged[key] = item
    return list(merged.values())


def _item(reply: FeedbackRow | None, ratings: list[FeedbackRow], exclude: frozenset[str]) -> _Item:
    """The votes on one reply: its per-rater rows, else its aggregate counts as anonymous votes.

    People in `exclude` cast no vote; their rows still tell which of the aggregate's flags were
    theirs, so none of their flags comes back as an anonymous one, and a reply they alone rated
    does not fall back to the aggregate (which would count them).
    """
    head = reply or max(ratings, key=lambda r: r.created_at)
    latest: dict[str, FeedbackRow] = {}
    anonymous: list[FeedbackRow] = []
    for rating in sorted(ratings, key=lambda r: r.created_at):
        if rating.rater:
            latest[rating.rater] = rating  # one voice per person: their latest
        else:
            anonymous.append(rating)
    voices = [r for r in [*latest.values(), *anonymous] if r.rater not in exclude]
    votes = [
        _Vote(r.rater, _sign(r.funniness, r.funny - r.not_funny), r.flagged, r.created_at) for r in voices
    ]
    extra_flags = 0
    if reply is not None:
        aggregate_flags = reply.inappropriate or (1 if reply.flagged else 0)
        if not ratings:  # an older export: the aggregate is all there is
            votes = [_Vote("", 1, False, reply.created_at) for _ in range(reply.funny)]
            votes += [_Vote("", -1, False, reply.created_at) for _ in range(reply.not_funny)]
        personal_flags = sum(r.flagged for r in [*latest.values(), *anonymous])
        extra_flags = max(0, aggregate_flags - personal_flags)
    created = max([head.created_at, *(r.created_at for r in ratings)])
    return _Item(head.setup, head.punchline, head.chat, created, votes, extra_flags)


def _sign(funniness: float | None, fallback: int) -> int:
    value = funniness if funniness is not None else float(fallback)
    return (value > 0) - (value < 0)


def _merge_into(target: _Item, other: _Item) -> None:
    """Pool the votes of a duplicate: one vote per named person (their latest), all anonymous ones."""
    named: dict[str, _Vote] = {}
    anonymous: list[_Vote] = []
    for vote in sorted([*target.votes, *other.votes], key=lambda v: v.at):
        if vote.rater:
            named[vote.rater] = vote
        else:
            anonymous.append(vote)
    target.votes = [*named.values(), *anonymous]
    target.extra_flags += other.extra_flags
    if other.created_at > target.created_at:
        target.created_at, target.chat = other.created_at, other.chat or target.chat


def _cap_rater_votes(items: list[_Item], options: PreferenceOptions, summary: PreferenceSummary) -> None:
    """No person's votes weigh more than `max_rater_share` of all votes (anonymous ones exempt)."""
    votes = [vote for item in items for vote in item.votes]
    result = cap_shares([v.weight for v in votes], [v.rater for v in votes], options.max_rater_share)
    for vote, weight in zip(votes, result.weights, strict=True):
        vote.weight = weight
    summary.kto[VOTES_CAPPED] += result.capped
    if result.loosened:
        summary.notes.append(
            f"fewer than {1 / options.max_rater_share:.0f} raters: the rater cap "
            f"{options.max_rater_share:g} cannot hold, so each rater's votes weigh the same in total"
        )


def _flags_by_punchline(items: Sequence[_Item]) -> dict[str, tuple[int, float]]:
    """Punchline (case and punctuation ignored) -> (flags, their weight), over every setup it
    answered: a punchline flagged anywhere is never desirable anywhere."""
    flags: dict[str, tuple[int, float]] = {}
    for item in items:
        marked = [v for v in item.votes if v.flagged]
        key = dedupe_key(item.punchline)
        count, mass = flags.get(key, (0, 0.0))
        flags[key] = (
            count + len(marked) + item.extra_flags,
            mass + sum(v.weight for v in marked) + item.extra_flags,
        )
    return flags


def _verdict(
    item: _Item,
    flags: dict[str, tuple[int, float]],
    options: PreferenceOptions,
    summary: PreferenceSummary,
) -> KtoRow | None:
    """The item's KTO row, or None (counted) when it is left out."""
    flag_count, flag_mass = flags.get(dedupe_key(item.punchline), (0, 0.0))
    raters = tuple(sorted({v.rater for v in item.votes if v.rater}))
    row = KtoRow(item.setup, item.punchline, False, 1.0, item.chat, raters, item.created_at, "reply")
    if flag_count >= options.min_flags:
        summary.kto[UNDESIRABLE_FLAGGED] += 1
        # Weighted by the flags' weight, so a capped troll's flags still block but weigh little.
        return replace(row, weight=min(1.0, flag_mass / options.min_flags), reason=UNDESIRABLE_FLAGGED)
    voters = [v for v in item.votes if v.funniness != 0]
    mass = sum(v.weight for v in voters)
    if len(voters) < options.min_raters or mass <= 0:
        summary.kto[TOO_FEW_RATERS] += 1
        return None
    funniness = sum(v.weight * v.funniness for v in voters) / mass
    weight = min(1.0, mass / options.min_raters)
    if funniness >= options.desirable_funniness:
        summary.kto[DESIRABLE] += 1
        return replace(row, desirable=True, weight=weight, reason=DESIRABLE)
    if funniness <= options.undesirable_funniness:
        summary.kto[UNDESIRABLE_NOT_FUNNY] += 1
        return replace(row, weight=weight, reason=UNDESIRABLE_NOT_FUNNY)
    summary.kto[NOT_CLEAR] += 1
    return None


def _cap_kto(rows: list[KtoRow], options: PreferenceOptions, summary: PreferenceSummary) -> list[KtoRow]:
    result = cap_shares([r.weight for r in rows], [r.chat for r in rows], options.max_chat_share)
    summary.kto[CHAT_CAPPED] += result.capped
    if result.loosened:
        _note_chats(summary, options)
    return [replace(r, weight=w) for r, w in zip(rows, result.weights, strict=True)]


def _note_chats(summary: PreferenceSummary, options: PreferenceOptions) -> None:
    note = (
        f"fewer than {1 / options.max_chat_share:.0f} chats: the chat cap {options.max_chat_share:g} "
        "cannot hold, so each chat weighs the same in total"
    )
    if note not in summary.notes:
        summary.notes.append(note)


# --- battles -> DPO pairs ------------------------------------------------------------------------


def _battle_pairs(
    rows: Sequence[FeedbackRow], flagged: set[str], options: PreferenceOptions, summary: PreferenceSummary
) -> list[DpoPair]:
    rounds: dict[str, list[FeedbackRow]] = defaultdict(list)
    for row in rows:
        if row.kind != BATTLE:
            continue
        if not row.battle_id:
            summary.dpo[NO_BATTLE_ID] += 1
        else:
            rounds[row.battle_id].append(row)
    pairs: list[DpoPair] = []
    for battle_id, entries in rounds.items():
        summary.dpo[ROUNDS] += 1
        pairs.extend(_round_pairs(battle_id, entries, flagged, options, summary))
    return pairs


def _round_pairs(
    battle_id: str,
    entries: list[FeedbackRow],
    flagged: set[str],
    options: PreferenceOptions,
    summary: PreferenceSummary,
) -> list[DpoPair]:
    """The winner against every entry with fewer votes, each pair weighing 1/(pairs in the round)."""
    votes = max(max(e.raters for e in entries), sum(e.funny for e in entries))
    if votes < options.min_battle_votes:
        summary.dpo[TOO_FEW_VOTES] += 1
        return []
    winners = [e for e in entries if e.won]
    if len(winners) != 1 or not dedupe_key(winners[0].punchline):
        summary.dpo[NO_WINNER] += 1
        return []
    winner = winners[0]
    if _opted_out(winner, options):
        summary.dpo[WINNER_OPTED_OUT] += 1
        return []
    if winner.flagged or dedupe_key(winner.punchline) in flagged:
        summary.dpo[WINNER_FLAGGED] += 1
        return []
    rejected: list[FeedbackRow] = []
    for entry in entries:
        if entry is winner or entry.funny >= winner.funny:
            continue
        if _opted_out(entry, options):
            summary.dpo[OPTED_OUT] += 1
        elif not dedupe_key(entry.punchline):
            summary.dpo[EMPTY_ENTRY] += 1
        elif dedupe_key(entry.punchline) == dedupe_key(winner.punchline):
            summary.dpo[IDENTICAL] += 1
        else:
            rejected.append(entry)
    author = winner.rater if winner.author_kind == PERSON else ""
    return [
        DpoPair(
            setup=winner.setup,
            chosen=winner.punchline,
            rejected=loser.punchline,
            weight=1.0 / len(rejected),
            chat=winner.chat,
            created_at=max(e.created_at for e in entries),
            battle_id=battle_id,
            author=author,
        )
        for loser in rejected
    ]


def _opted_out(entry: FeedbackRow, options: PreferenceOptions) -> bool:
    return bool(entry.rater) and entry.rater in options.exclude_raters


def _merge_pairs(pairs: list[DpoPair], summary: PreferenceSummary) -> list[DpoPair]:
    """The same (setup, chosen, rejected) from several rounds counts once (the newest round's)."""
    merged: dict[tuple[str, str, str], DpoPair] = {}
    for pair in sorted(pairs, key=lambda p: p.created_at):
        key = (question_key(pair.setup), dedupe_key(pair.chosen), dedupe_key(pair.rejected))
        if key in merged:
            summary.dpo[DUPLICATE_PAIR] += 1
            pair = replace(pair, weight=max(pair.weight, merged[key].weight))
        merged[key] = pair
    summary.dpo[PAIRS] += len(merged)
    return list(merged.values())


def _cap_pairs(pairs: list[DpoPair], options: PreferenceOptions, summary: PreferenceSummary) -> list[DpoPair]:
    """Author and chat caps together: alternate until neither changes anything (each pass only
    lowers weights, so this settles)."""
    weights = [p.weight for p in pairs]
    authors, chats = [p.author for p in pairs], [p.chat for p in pairs]
    by_author: set[int] = set()
    by_chat: set[int] = set()
    for _ in range(_CAP_ROUNDS):
        before = weights
        after_author = cap_shares(weights, authors, options.max_rater_share).weights
        after_chat = cap_shares(after_author, chats, options.max_chat_share)
        by_author |= {i for i, (w, a) in enumerate(zip(weights, after_author, strict=True)) if a < w}
        by_chat |= {i for i, (a, c) in enumerate(zip(after_author, after_chat.weights, strict=True)) if c < a}
        if after_chat.loosened:
            _note_chats(summary, options)
        weights = after_chat.weights
        if all(abs(a - b) <= 1e-12 * max(1.0, b) for a, b in zip(weights, before, strict=True)):
            break
    summary.dpo[AUTHOR_CAPPED] += len(by_author)
    summary.dpo[CHAT_CAPPED] += len(by_chat)
    return [replace(p, weight=w) for p, w in zip(pairs, weights, strict=True)]
