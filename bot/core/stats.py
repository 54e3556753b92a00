"""The text of `/stats`: replies made, ratings received, scores, the best punchlines, the worker,
and whatever sections other parts add (battles add their tally and Elo table)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from bot.core import ratings
from bot.core.texts import MSG_STATS_UNAVAILABLE
from bot.storage import Storage
from bot.storage.records import ReplyTally
from bot.types import ChatKind, ChatRef
from model.types import Generator, WorkerStats

log = logging.getLogger(__name__)

# A part of the bot that adds lines to /stats for a chat ("" adds nothing); never raises.
StatsSection = Callable[[ChatRef], Awaitable[str]]

TOP_N = 3
_MAX_QUOTE = 120  # characters of a setup or punchline quoted in /stats


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 1] + "…"


def _summary(tallies: Sequence[ReplyTally]) -> str:
    s = ratings.mean_scores(tallies)
    rated = sum(1 for t in tallies if t.rated)
    return (
        f"{len(tallies)} replies, {rated} rated, {s.raters} ratings · "
        f"funniness {_signed(s.funniness)} (−1…+1) · appropriate {_pct(s.appropriateness)}"
    )


def worker_line(stats: WorkerStats) -> str:
    """One line about the inference worker."""
    return (
        f"Model {stats.version} on {stats.backend}: queue {stats.queue_depth}, "
        f"p50 {stats.p50_latency_s:.2f}s, p95 {stats.p95_latency_s:.2f}s, "
        f"{stats.tokens_per_s:.1f} tokens/s, {stats.requests} requests"
    )


def render_stats(
    title: str,
    tallies: Sequence[ReplyTally],
    request_counts: Mapping[str, int],
    worker: WorkerStats | None,
) -> str:
    """The /stats text for the replies in `tallies` (usually one chat's)."""
    lines = [f"📊 {title}"]
    if not tallies:
        lines.append("No punchlines here yet — send me a setup!")
    else:
        lines.append(_summary(tallies))
        versions: dict[str, list[ReplyTally]] = {}
        for t in tallies:
            versions.setdefault(t.version, []).append(t)
        if len(versions) > 1:
            lines.append("By model version:")
            for version, group in sorted(versions.items()):
                lines.append(f"  • {version}: {_summary(group)}")
        best = ratings.best_rated(tallies, TOP_N)
        if best:
            lines.append("Best rated:")
            for i, (t, s) in enumerate(best, start=1):
                lines.append(
                    f"  {i}. {_quote(t.setup)} — {_quote(t.punchline)} "
                    f"({_signed(s.funniness)}, {s.raters} rating{'s' if s.raters != 1 else ''})"
                )
    busy = request_counts.get("busy", 0) + request_counts.get("error", 0)
    if busy:
        lines.append(f"{busy} request{'s' if busy != 1 else ''} could not be answered (busy or failed).")
    if worker is not None:
        lines.append(worker_line(worker))
    return "\n".join(lines)


async def stats_text(
    storage: Storage, generator: Generator, chat: ChatRef, sections: Sequence[StatsSection] = ()
) -> str:
    """The /stats answer for `chat`. Never raises."""
    try:
        tallies = await storage.ratings.tallies(chat=chat)
        counts = await storage.requests.counts(chat)
    except Exception:
        log.exception("could not read stats")
        return MSG_STATS_UNAVAILABLE
    worker = None
    try:
        worker = generator.stats()
    except Exception:
        log.warning("the generator gave no stats", exc_info=True)
    title = "Stats for this chat" if chat.kind is not ChatKind.PRIVATE else "Your stats"
    parts = [render_stats(title, tallies, counts, worker)]
    for section in sections:
        extra = await section(chat)
        if extra:
            parts.append(extra)
    return "\n\n".join(parts)
