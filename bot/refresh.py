"""`punchline refresh`: the learning loop in one command, safe to run from cron
(docs/DESIGN.md, decision 12).

1. enough new feedback? ratings and battle votes since the last refresh, at least `min_new`,
   else `NotEnoughNewFeedback` with the counts (nothing is written);
2. export every row people allow training on (`bot.export`) into the run's directory;
3. the method: DPO from battle pairs or KTO from rated replies, whichever has more training
   examples (`--method` picks one); neither enough: `NotEnoughFeedback` with both counts;
4. align from the serving adapter (the registry's current version, else the configured one),
   which runs the offline gate (`training.align`);
5. a candidate that passed is registered as a challenger in the database: the running
   `punchline serve` serves it beside the current version at its next review and fields it in
   battles (`bot.battles.challengers`); one that failed is kept on disk, not registered;
6. the report: what was used, the gate, what happens next.

The feedback counted as used is what existed when the export was taken, whether the candidate
passed or not: the same data would only fail the same way again.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from bot.clock import Clock
from bot.export.collect import collect_rows
from bot.export.rows import ExportError, write_rows
from bot.storage import Storage
from bot.storage.connection import existing_database
from bot.storage.versions import NewFeedback
from config.errors import PunchlineError
from config.settings import Settings
from model.adapter_meta import DPO, KTO, AdapterMetadata, GateResult
from training.align import AlignOptions, plan, run
from training.errors import NotEnoughFeedback
from training.gate import family_flagger

log = logging.getLogger(__name__)

AUTO = "auto"
REFRESH = "refresh"  # the actor named in version events


class NotEnoughNewFeedback(PunchlineError):
    """Too little feedback arrived since the last refresh; nothing was done."""

    def __init__(self, message: str, new: NewFeedback) -> None:
        super().__init__(message)
        self.new = new


@dataclass(frozen=True, slots=True)
class RefreshOptions:
    """What `punchline refresh` takes. `tuning` holds the align flags; its method, adapter,
    feedback and output are filled in per run."""

    data: Path  # the joke corpus: replay and the gate's test split
    work_dir: Path  # each run writes work_dir/<stamp>/ (feedback.jsonl, adapter/)
    tuning: AlignOptions
    adapter: Path | None = None  # the parent; default: the serving version's directory
    method: str = AUTO
    # A refresh on a handful of new votes would re-learn yesterday's data: wait for this many
    # ratings and votes (0: run whenever asked).
    min_new: int = 50
    dry_run: bool = False  # count, export and plan; train nothing, register nothing


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What a refresh did; `lines` is what the command prints."""

    new: NewFeedback
    method: str
    parent: str
    output: Path | None = None
    version: str | None = None
    gate: GateResult | None = None
    registered: bool = False
    interrupted: bool = False
    lines: list[str] = field(default_factory=list)


async def refresh(settings: Settings, options: RefreshOptions, clock: Clock) -> RefreshReport:
    """Run the loop once (see the module's docstring).

    Raises `NotEnoughNewFeedback` or `NotEnoughFeedback` (with counts) when there is too little
    to learn from, `StorageError` without a database, `PunchlineError` without a parent
    adapter, `AdapterError` for an unreadable parent, `ExportError` when the export cannot be
    written, `FilterError` for an unusable family word list, and the errors of
    `training.align.run` (one line each).
    """
    path = existing_database(settings.storage.path)
    started = clock.now()
    async with await Storage.open(path) as storage:
        new = await _enough_new_feedback(storage, options.min_new)
        parent_dir = await _parent_dir(storage, options.adapter, settings)
        run_dir = options.work_dir / started.strftime("%Y%m%dT%H%M%SZ")
        feedback = run_dir / "feedback.jsonl"
        await _export(storage, settings, feedback)
    parent = AdapterMetadata.load(parent_dir).version
    align = _choose(options, parent_dir, feedback, run_dir / "adapter")
    lines = [
        f"new since the last refresh: {new.ratings} ratings, {new.votes} battle votes",
        f"exported to {feedback}; {align.method.upper()} from {parent} ({parent_dir})",
    ]
    if options.dry_run:
        lines.append(plan(align).describe(align))
        return RefreshReport(new, align.method, parent, lines=lines)

    result = run(align, flagger=family_flagger(settings.safety))
    if result.interrupted:
        lines.append(f"interrupted at step {result.global_step}: nothing registered")
        return RefreshReport(new, align.method, parent, align.output, interrupted=True, lines=lines)
    async with await Storage.open(path) as storage:
        registered = bool(result.gate and result.gate.passed and result.version)
        if registered and result.version:
            await storage.versions.register(
                result.version, str(align.output.resolve()), parent, REFRESH, clock.now()
            )
        # Only once the candidate is on record: a failure before this runs the refresh again.
        await storage.versions.mark_refresh(started)
    lines += _outcome(result.version, align.output, result.gate, registered, parent, settings)
    return RefreshReport(
        new, align.method, parent, align.output, result.version, result.gate, registered, lines=lines
    )


async def _enough_new_feedback(storage: Storage, min_new: int) -> NewFeedback:
    since = await storage.versions.last_refresh()
    new = await storage.versions.new_feedback(since)
    if new.total < min_new:
        when = f"since the last refresh ({since:%Y-%m-%d %H:%M} UTC)" if since else "so far"
        raise NotEnoughNewFeedback(
            f"not enough new feedback {when}: {new.ratings} ratings and {new.votes} battle votes, "
            f"--min-new is {min_new}; nothing done",
            new,
        )
    return new


async def _parent_dir(storage: Storage, given: Path | None, settings: Settings) -> Path:
    """--adapter, else the directory of the version recorded as current, else the configured
    adapter (PUNCHLINE_MODEL__ADAPTER)."""
    if given is not None:
        return given
    current = await storage.versions.current()
    if current is not None and current.path and Path(current.path).is_dir():
        return Path(current.path)
    if settings.model.adapter is not None:
        return settings.model.adapter
    raise PunchlineError(
        "no serving adapter to start from: pass --adapter DIR or set PUNCHLINE_MODEL__ADAPTER"
    )


async def _export(storage: Storage, settings: Settings, out: Path) -> None:
    rows = await collect_rows(storage, None, settings.privacy)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8", newline="") as fh:
            write_rows(rows, "jsonl", fh)
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from None


def _choose(options: RefreshOptions, parent_dir: Path, feedback: Path, output: Path) -> AlignOptions:
    """The align run: `options.method`, or under "auto" the method with more training examples.
    Raises `NotEnoughFeedback` naming every method tried."""
    base = dataclasses.replace(
        options.tuning, adapter=parent_dir, feedback=feedback, data=options.data, output=output
    )
    methods = (DPO, KTO) if options.method == AUTO else (options.method,)
    best: tuple[int, AlignOptions] | None = None
    refusals = []
    for method in methods:
        candidate = dataclasses.replace(base, method=method)
        try:
            train, _ = plan(candidate).examples(method)
        except NotEnoughFeedback as exc:
            refusals.append(exc)
            continue
        if best is None or train > best[0]:  # ties: DPO, tried first (votes compare directly)
            best = (train, candidate)
    if best is None:
        first = refusals[0]
        raise NotEnoughFeedback(
            "; ".join(str(e).split("; ")[0] for e in refusals),
            method=first.method,
            have=first.have,
            need=first.need,
            summary=first.summary,
        )
    return best[1]


def _outcome(
    version: str | None,
    output: Path,
    gate: GateResult | None,
    registered: bool,
    parent: str,
    settings: Settings,
) -> list[str]:
    lines = [gate.describe()] if gate is not None else []
    if registered:
        learning = settings.learning
        promote = (
            "is promoted automatically"
            if learning.auto_promote
            else f"waits for an admin's /promote {version}"
        )
        lines += [
            f"challenger {version} registered ({output}).",
            f"A running `punchline serve` serves it beside {parent} within "
            f"{learning.review_interval_s:.0f} s and fields it in battles. After "
            f"{learning.min_games} games against {parent}, one clearly worse is retired and one "
            f"clearly better {promote}. `punchline versions` shows how it fares.",
        ]
    else:
        lines.append(f"candidate {version} did not pass the gate: kept in {output}, not registered")
    return lines
