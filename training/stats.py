"""`punchline data stats PATH`: what a data file holds and what training would use of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model.prompt import DEFAULT_TEMPLATE
from model.text import clean_text
from model.types import ModelLoadError
from training.cleaning import DEFAULT_MAX_ANSWER_CHARS
from training.dataset import PreparedData, prepare_data
from training.tokenization import percentile, prompts_of, token_lengths

PERCENTILES = (50, 90, 95, 99, 100)


@dataclass(frozen=True, slots=True)
class LengthStats:
    """Token-length percentiles (50, 90, 95, 99, max) of one column."""

    name: str
    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DataStats:
    data: PreparedData
    tokenizer: str
    lengths: tuple[LengthStats, ...]  # empty when the tokenizer was unavailable
    note: str | None = None


def data_stats(
    path: Path,
    tokenizer_name: str,
    *,
    max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS,
    required: bool = True,
    template: str = DEFAULT_TEMPLATE,
) -> DataStats:
    """Read, clean and split `path`; measure token lengths with the real tokenizer.

    When the tokenizer was not asked for explicitly (`required=False`) and cannot be loaded, the
    counts are still reported, with a note instead of the token lengths.
    """
    from model.base_model import load_tokenizer

    data = prepare_data(path, max_answer_chars=max_answer_chars, require_train=False)
    try:
        tokenizer = load_tokenizer(tokenizer_name)
    except ModelLoadError as exc:
        if required:
            raise
        return DataStats(data, tokenizer_name, (), note=f"token lengths skipped: {exc}")
    kept = data.cleaning.kept
    lengths = (
        _lengths("prompt", token_lengths(tokenizer, prompts_of(kept, template))),
        _lengths("question", token_lengths(tokenizer, [clean_text(j.question) for j in kept])),
        _lengths("answer", token_lengths(tokenizer, [clean_text(j.answer) for j in kept])),
    )
    return DataStats(data, tokenizer_name, lengths)


def _lengths(name: str, values: list[int]) -> LengthStats:
    return LengthStats(name, tuple(percentile(values, q) for q in PERCENTILES))


def format_stats(stats: DataStats) -> str:
    """The report printed by `punchline data stats`."""
    read, cleaning, split = stats.data.read, stats.data.cleaning, stats.data.split
    lines = [
        f"file: {read.path}",
        f"format: {read.format}",
        f"rows read: {read.rows:,}",
        f"usable jokes: {len(read.jokes):,}",
    ]
    for reason, count in sorted(read.skipped.items()):
        lines.append(f"  unusable ({reason}): {count:,}")
    lines.append(f"kept after cleaning: {len(cleaning.kept):,}")
    for reason, count in sorted(cleaning.dropped.items()):
        lines.append(f"  dropped ({reason}): {count:,}")
    lines.append(f"  edit notes removed (row kept): {cleaning.edit_notes_removed:,}")
    counts = split.counts()
    lines.append(
        f"split: train {counts['train']:,}, validation {counts['validation']:,}, test {counts['test']:,}"
    )
    scores = [j.score for j in cleaning.kept if j.score is not None]
    if scores:
        lines.append(f"scores: {len(scores):,} rows, min {min(scores):g}, max {max(scores):g}")
    if stats.lengths:
        lines.append(f"token lengths ({stats.tokenizer}; p50 p90 p95 p99 max):")
        for entry in stats.lengths:
            lines.append(f"  {entry.name:<8} " + " ".join(f"{v:>4}" for v in entry.values))
    if stats.note:
        lines.append(stats.note)
    return "\n".join(lines)
