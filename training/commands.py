"""Sub-commands of `punchline` that belong to `training/`: `data stats`, `train`, `align`, `compare`,
`eval`.

Heavy imports (torch, transformers, peft) happen inside the handlers so `punchline --help` stays
instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from config.errors import PunchlineError
from config.flags import add_flags, settings_from_args

if TYPE_CHECKING:
    from training.align import AlignOptions

EXIT_INTERRUPTED = 130
EXIT_GATE_FAILED = 1  # `align` and `eval --parent`: the candidate did not pass the gate


def _base_model(args: argparse.Namespace) -> str:
    """--base-model, else PUNCHLINE_MODEL__BASE (settings.model.base)."""
    return settings_from_args(args).model.base


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def _modules(text: str) -> tuple[str, ...]:
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    if not names:
        raise argparse.ArgumentTypeError("name at least one module, e.g. q,v")
    return names


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's sub-commands to the `punchline` parser."""
    data = sub.add_parser("data", help="inspect joke data files")
    data_sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    stats = data_sub.add_parser(
        "stats", help="rows read, dropped by reason, kept per split, token-length percentiles"
    )
    stats.add_argument("path", type=Path, help="CSV, JSON(L) or rJokes TSV(.gz) joke file")
    stats.add_argument("--tokenizer", metavar="ID_OR_DIR", help="tokenizer for the token lengths")
    add_flags(stats, "base_model")
    stats.add_argument("--max-answer-chars", type=_positive_int, default=200)
    stats.set_defaults(handler=_stats)

    train = sub.add_parser("train", help="train a LoRA adapter on a joke file")
    train.add_argument("--data", type=Path, required=True, help="joke file (see `data stats`)")
    add_flags(train, "base_model")
    train.add_argument("--output", type=Path, help="adapter directory to write (not needed with --dry-run)")
    train.add_argument("--epochs", type=float, default=5)
    train.add_argument("--batch-size", type=_positive_int, default=8, help="per device (default 8)")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    train.add_argument("--max-steps", type=_positive_int, help="stop after this many steps")
    train.add_argument("--limit", type=_positive_int, help="use only the first N cleaned rows")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    train.add_argument(
        "--dry-run", action="store_true", help="print the plan; build the model on the meta device"
    )
    train.add_argument("--force", action="store_true", help="overwrite an existing --output")
    train.add_argument("--lora-r", type=_positive_int, default=16)
    train.add_argument("--lora-alpha", type=_positive_int, default=32)
    train.add_argument("--lora-dropout", type=float, default=0.05)
    train.add_argument(
        "--target-modules", type=_modules, default=("q", "v"), help="comma-separated (default q,v)"
    )
    train.add_argument(
        "--max-source-length", type=_positive_int, help="prompt tokens (default: 99th percentile)"
    )
    train.add_argument(
        "--max-target-length", type=_positive_int, help="punchline tokens (default: 99th percentile)"
    )
    train.add_argument(
        "--max-answer-chars", type=_positive_int, default=200, help="drop longer answers (default 200)"
    )
    train.add_argument("--gradient-checkpointing", action="store_true", help="less memory, ~30%% slower")
    train.add_argument("--eval-samples", type=int, default=4, help="validation setups sampled each epoch")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.set_defaults(handler=_train)

    _register_align(sub)

    compare = sub.add_parser("compare", help="Markdown table: setup | original | base model | tuned")
    add_flags(compare, "base_model")
    compare.add_argument(
        "--adapter", type=Path, required=True, help="adapter directory from `punchline train`"
    )
    compare.add_argument("--data", type=Path, help="joke file with the original punchlines")
    compare.add_argument(
        "--setups", type=Path, help="file with one setup per line (default: the write-up's eight)"
    )
    compare.add_argument("--output", type=Path, help="also write the table to this file")
    compare.set_defaults(handler=_compare)

    evaluate = sub.add_parser(
        "eval",
        help="score base model and adapter on the test split",
        description="Score the test split under the base model and under the adapter; with "
        "--backend, score that serving backend against transformers float32 on the same adapter "
        "instead (loss, greedy agreement, echo/empty/distinct).",
    )
    add_flags(evaluate, "base_model", "backend", "device", "dtype")
    evaluate.add_argument("--adapter", type=Path, required=True)
    evaluate.add_argument("--data", type=Path, required=True)
    evaluate.add_argument(
        "--output-dir", type=Path, help="where eval.json and eval.md go (default: the adapter directory)"
    )
    evaluate.add_argument("--limit", type=_positive_int, help="score only the first N test jokes")
    evaluate.add_argument("--batch-size", type=_positive_int, default=16)
    evaluate.add_argument(
        "--parent",
        type=Path,
        metavar="DIR",
        help="run the offline gate: --adapter (the candidate) against this parent adapter",
    )
    evaluate.add_argument(
        "--feedback",
        type=Path,
        metavar="EXPORT",
        help="with --parent: a ratings export whose newest rows score the preference accuracy",
    )
    _add_gate_flags(evaluate)
    evaluate.set_defaults(handler=_eval)


def _add_gate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-loss-increase",
        type=_non_negative,
        default=0.03,
        help="gate: gold loss may be at most this much above the parent's (default 0.03 = 3%%)",
    )
    parser.add_argument(
        "--gate-tolerance",
        type=_non_negative,
        default=0.0,
        help="gate: slack for echo/empty/flag rates and distinct-n (default 0: no worse at all)",
    )


def _register_align(sub: argparse._SubParsersAction) -> None:
    align = sub.add_parser(
        "align", help="tune an adapter on chat feedback (KTO from ratings, DPO from battles), then gate it"
    )
    align.add_argument("--method", choices=("kto", "dpo"), required=True)
    align.add_argument("--adapter", type=Path, required=True, metavar="DIR", help="the parent adapter")
    align.add_argument(
        "--feedback", type=Path, required=True, metavar="EXPORT", help="`punchline ratings export` file"
    )
    align.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="CORPUS",
        help="joke corpus: replay and the gate's test split",
    )
    align.add_argument("--output", type=Path, metavar="DIR", help="adapter directory to write")
    align.add_argument("--dry-run", action="store_true", help="build and count the data; load no model")
    align.add_argument("--force", action="store_true", help="overwrite an existing --output")
    add_tuning_flags(align)
    align.set_defaults(handler=_align)


def add_tuning_flags(align: argparse.ArgumentParser) -> None:
    """How `align` tunes and gates (also `punchline refresh`'s flags): the base model, the
    optimiser, the losses, the preference data's guards and the gate."""
    add_flags(align, "base_model")
    align.add_argument("--lr", type=float, default=5e-5, help="learning rate (default 5e-5, SFT's / 20)")
    align.add_argument("--beta", type=float, default=0.1, help="β of DPO/KTO (default 0.1)")
    align.add_argument("--epochs", type=float, default=2)
    align.add_argument("--batch-size", type=_positive_int, default=8, help="per device (default 8)")
    align.add_argument("--max-steps", type=_positive_int)
    align.add_argument("--seed", type=int, default=42)
    align.add_argument(
        "--label-smoothing", type=_fraction, default=0.0, help="DPO: share of votes assumed wrong (default 0)"
    )
    align.add_argument(
        "--nll-weight", type=_non_negative, default=0.0, help="DPO: NLL of the chosen punchline (default 0)"
    )
    align.add_argument(
        "--replay-ratio",
        type=_non_negative,
        default=0.5,
        help="corpus jokes per feedback example (default 0.5)",
    )
    align.add_argument(
        "--replay-weight", type=_non_negative, default=1.0, help="DPO: weight of the replayed jokes' NLL"
    )
    align.add_argument("--desirable-weight", type=_non_negative, help="KTO λ_D (default: balanced)")
    align.add_argument("--undesirable-weight", type=_non_negative, help="KTO λ_U (default: balanced)")
    align.add_argument(
        "--min-examples", type=_positive_int, default=32, help="refuse below this many (default 32)"
    )
    align.add_argument(
        "--min-raters", type=_positive_int, default=2, help="people behind a verdict (default 2)"
    )
    align.add_argument(
        "--desirable-funniness", type=float, default=0.5, help="funniness for desirable (default 0.5)"
    )
    align.add_argument(
        "--undesirable-funniness", type=float, default=-0.5, help="funniness for undesirable (default -0.5)"
    )
    align.add_argument(
        "--min-flags", type=_positive_int, default=1, help="flags that make it undesirable (1)"
    )
    align.add_argument("--min-battle-votes", type=_positive_int, default=3, help="votes a round needs (3)")
    align.add_argument(
        "--max-chat-share", type=_fraction, default=0.25, help="most weight one chat may carry (0.25)"
    )
    align.add_argument(
        "--max-rater-share", type=_fraction, default=0.1, help="most weight one person may carry (0.1)"
    )
    align.add_argument(
        "--eval-fraction", type=_fraction, default=0.1, help="newest share held out (default 0.1)"
    )
    align.add_argument(
        "--gate-limit", type=_positive_int, default=200, help="test jokes the gate scores (default 200)"
    )
    _add_gate_flags(align)
    align.add_argument("--max-source-length", type=_positive_int, help="default: the parent's")
    align.add_argument("--max-target-length", type=_positive_int, help="default: the parent's")
    align.add_argument("--gradient-checkpointing", action="store_true")
    align.add_argument("--eval-samples", type=int, default=4, help="held-out setups sampled each evaluation")
    align.add_argument("--no-progress", action="store_true", help="no progress bars")


def _stats(args: argparse.Namespace) -> int:
    from training.stats import data_stats, format_stats

    explicit = args.tokenizer or args.base_model
    tokenizer = explicit or _base_model(args)
    result = data_stats(args.path, tokenizer, max_answer_chars=args.max_answer_chars, required=bool(explicit))
    print(format_stats(result))
    return 0


def _train(args: argparse.Namespace) -> int:
    from training.lora import LoraOptions
    from training.train import TrainOptions, plan, run

    if args.output is None and not args.dry_run:
        raise PunchlineError("--output DIR is required (the adapter directory to write)")
    options = TrainOptions(
        data=args.data,
        base_model=_base_model(args),
        output=args.output or Path("."),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_steps=args.max_steps,
        limit=args.limit,
        seed=args.seed,
        resume=args.resume,
        force=args.force,
        lora=LoraOptions(args.lora_r, args.lora_alpha, args.lora_dropout, tuple(args.target_modules)),
        max_source_length=args.max_source_length,
        max_target_length=args.max_target_length,
        gradient_checkpointing=args.gradient_checkpointing,
        eval_samples=max(0, args.eval_samples),
        max_answer_chars=args.max_answer_chars,
        progress=not args.no_progress,
    )
    if args.dry_run:
        print(plan(options).describe(options))
        return 0
    result = run(options)
    if not result.is_main:  # under torchrun/accelerate only the first process reports
        return EXIT_INTERRUPTED if result.interrupted else 0
    if result.interrupted:
        where = result.checkpoint or result.output
        print(
            f"interrupted at step {result.global_step}: checkpoint in {where}; "
            f"continue with the same command and --resume"
        )
        return EXIT_INTERRUPTED
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items())
    print(f"adapter {result.version} written to {result.output} ({metrics})")
    return 0


def _align_options(args: argparse.Namespace) -> "AlignOptions":
    return tuning_options(
        args,
        method=args.method,
        adapter=args.adapter,
        feedback=args.feedback,
        data=args.data,
        output=args.output or Path("."),
        force=args.force,
    )


def tuning_options(
    args: argparse.Namespace,
    *,
    method: str,
    adapter: Path,
    feedback: Path,
    data: Path,
    output: Path,
    force: bool,
) -> "AlignOptions":
    """`AlignOptions` from the flags `add_tuning_flags` added and the run's own inputs."""
    from training.align import AlignOptions
    from training.gate import GateOptions
    from training.preferences import PreferenceOptions

    return AlignOptions(
        method=method,
        adapter=adapter,
        feedback=feedback,
        data=data,
        output=output,
        base_model=_base_model(args),
        lr=args.lr,
        beta=args.beta,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_steps=args.max_steps,
        seed=args.seed,
        label_smoothing=args.label_smoothing,
        nll_weight=args.nll_weight,
        replay_ratio=args.replay_ratio,
        replay_weight=args.replay_weight,
        desirable_weight=args.desirable_weight,
        undesirable_weight=args.undesirable_weight,
        min_examples=args.min_examples,
        preferences=PreferenceOptions(
            min_raters=args.min_raters,
            desirable_funniness=args.desirable_funniness,
            undesirable_funniness=args.undesirable_funniness,
            min_flags=args.min_flags,
            min_battle_votes=args.min_battle_votes,
            max_chat_share=args.max_chat_share,
            max_rater_share=args.max_rater_share,
            eval_fraction=args.eval_fraction,
        ),
        gate=GateOptions(
            max_loss_increase=args.max_loss_increase, tolerance=args.gate_tolerance, limit=args.gate_limit
        ),
        max_source_length=args.max_source_length,
        max_target_length=args.max_target_length,
        gradient_checkpointing=args.gradient_checkpointing,
        eval_samples=max(0, args.eval_samples),
        force=force,
        progress=not args.no_progress,
    )


def _align(args: argparse.Namespace) -> int:
    from training.align import plan, run
    from training.gate import family_flagger

    if args.output is None and not args.dry_run:
        raise PunchlineError("--output DIR is required (the adapter directory to write)")
    options = _align_options(args)
    if args.dry_run:
        print(plan(options).describe(options))
        return 0
    result = run(options, flagger=family_flagger(settings_from_args(args).safety))
    if not result.is_main:
        return EXIT_INTERRUPTED if result.interrupted else 0
    if result.interrupted:
        print(
            f"interrupted at step {result.global_step}: no adapter written "
            f"(run the same command again with --force)"
        )
        return EXIT_INTERRUPTED
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items())
    print(f"adapter {result.version} written to {result.output} ({metrics})")
    if result.gate is not None:
        print(result.gate.describe())
        return 0 if result.gate.passed else EXIT_GATE_FAILED
    return 0


def _compare(args: argparse.Namespace) -> int:
    from training.compare import compare, load_setups

    setups = load_setups(args.setups, args.data)
    table = compare(_base_model(args), args.adapter, setups)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(table + "\n", encoding="utf-8")
    print(table)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from training.evaluate import BackendReport, EvalReport, evaluate, evaluate_backend, write_report

    if args.parent is not None:
        return _gate(args)
    if args.feedback is not None:
        raise PunchlineError("--feedback goes with --parent (the gate's preference accuracy)")

    report: EvalReport | BackendReport
    if args.backend is not None:
        settings = settings_from_args(args)
        report = evaluate_backend(
            settings.model,
            settings.worker,
            args.adapter,
            args.data,
            limit=args.limit,
            batch_size=args.batch_size,
        )
    else:
        report = evaluate(
            _base_model(args), args.adapter, args.data, limit=args.limit, batch_size=args.batch_size
        )
    json_path, md_path = write_report(report, args.output_dir or args.adapter)
    print(report.markdown())
    print(f"written: {json_path}, {md_path}")
    return 0


def _gate(args: argparse.Namespace) -> int:
    """`punchline eval --parent`: the offline gate, printed (and written as gate.json)."""
    from training.feedback import read_feedback
    from training.gate import GateOptions, HeldOut, family_flagger, run_gate
    from training.preferences import build_preferences

    held_out = None
    if args.feedback is not None:
        data = build_preferences(read_feedback(args.feedback).rows)
        held_out = HeldOut(rows=data.kto.eval, pairs=data.dpo.eval)
    options = GateOptions(
        max_loss_increase=args.max_loss_increase,
        tolerance=args.gate_tolerance,
        limit=args.limit or GateOptions().limit,
        batch_size=args.batch_size,
    )
    result = run_gate(
        _base_model(args),
        args.adapter,
        args.parent,
        args.data,
        held_out=held_out,
        options=options,
        flagger=family_flagger(settings_from_args(args).safety),
    )
    print(result.describe())
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        path = args.output_dir / "gate.json"
        path.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
        print(f"written: {path}")
    return 0 if result.passed else EXIT_GATE_FAILED
