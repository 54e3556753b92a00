"""Sub-commands of `punchline` that belong to `training/`: `data stats`, `train`, `compare`, `eval`.

Heavy imports (torch, transformers, peft) happen inside the handlers so `punchline --help` stays
instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from config.errors import PunchlineError
from config.flags import add_flags, settings_from_args

EXIT_INTERRUPTED = 130


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
    evaluate.set_defaults(handler=_eval)


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
