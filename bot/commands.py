"""Sub-commands of `punchline` that belong to `bot/`: `chat`, `serve`, `ratings export`.

Handlers import the heavy parts (model worker, chat libraries) inside, so `punchline --help`
stays instant. Flags override settings through `config.flags`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import warnings
from collections import Counter
from datetime import datetime
from pathlib import Path

from config.flags import add_flags, settings_from_args
from config.settings import PrivacySettings

EXIT_GATE_FAILED = 1  # `refresh`: a candidate was trained but failed the gate (not registered)
EXIT_NOTHING_NEW = 3  # `refresh`: too little new feedback; nothing was done


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's sub-commands to the `punchline` parser."""
    chat = sub.add_parser(
        "chat",
        help="chat with the bot in this terminal (no tokens needed)",
        description="A local chat with the same core, storage and model as the chat bots. "
        "Type a setup, get a punchline, rate it with f/m/i. /help, /stats, /reload [adapter_dir], /quit.",
    )
    add_flags(chat, "base_model", "adapter", "db")
    chat.set_defaults(handler=_chat)

    serve = sub.add_parser(
        "serve",
        help="run the Telegram and/or Discord bot",
        description="Starts every configured front-end (Telegram when PUNCHLINE_TELEGRAM__TOKEN is "
        "set, Discord when PUNCHLINE_DISCORD__TOKEN is set) with the model worker, in one process. "
        "Ctrl-C or SIGTERM stops it cleanly.",
    )
    add_flags(serve, "db")
    serve.set_defaults(handler=_serve)

    ratings = sub.add_parser("ratings", help="work with the collected ratings")
    ratings_sub = ratings.add_subparsers(dest="ratings_command", metavar="ACTION", required=True)
    export = ratings_sub.add_parser(
        "export",
        help="export rated replies as JSON lines or CSV",
        description="One row per rated reply (kind 'reply'): setup, punchline, adapter version, "
        "platform, funniness (-1..1) and appropriateness (0..1) scores, and counts; battle "
        "entries follow as their own kind.",
    )
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument(
        "--since", metavar="DATE", help="only replies made on or after DATE (YYYY-MM-DD, UTC)"
    )
    export.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here instead of stdout")
    add_flags(export, "db")
    export.set_defaults(handler=_export)

    privacy = sub.add_parser("privacy", help="people's data: the retention purge")
    privacy_sub = privacy.add_subparsers(dest="privacy_command", metavar="ACTION", required=True)
    purge = privacy_sub.add_parser(
        "purge",
        help="erase setup texts and names older than the retention period now",
        description="Blanks setup texts and display names older than PUNCHLINE_PRIVACY__RETENTION_DAYS "
        "(ratings and battle results stay, anonymous) and prints what it erased. `punchline serve` "
        "does the same every PUNCHLINE_PRIVACY__PURGE_INTERVAL_S.",
    )
    add_flags(purge, "db")
    purge.set_defaults(handler=_purge)
    _register_learning(sub)


def _register_learning(sub: argparse._SubParsersAction) -> None:
    from training.commands import add_tuning_flags

    versions = sub.add_parser(
        "versions",
        help="adapter versions: current, challengers, their battle strength and history",
        description="The registry in the database: each version's status, parent and directory; "
        "the Bradley–Terry strength of every version that battled (interval, games); with "
        "--events, every registration, promotion and retirement and why.",
    )
    versions.add_argument("--events", action="store_true", help="also list every recorded event")
    add_flags(versions, "db")
    versions.set_defaults(handler=_versions)

    refresh = sub.add_parser(
        "refresh",
        help="learn from the chat: export, align, gate, register a challenger (cron-safe)",
        description="Exports the feedback people allow, aligns the serving adapter on it (DPO "
        "from battles or KTO from ratings, whichever has more), runs the offline gate and "
        "registers a passing candidate as a challenger for the running bot to field in "
        f"battles. Exits {EXIT_NOTHING_NEW} (nothing done) when too little feedback arrived "
        f"since the last refresh, {EXIT_GATE_FAILED} when the candidate fails the gate.",
    )
    refresh.add_argument("--data", type=Path, required=True, metavar="CORPUS", help="the joke corpus")
    refresh.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="where each run's export and adapter go (default: refresh/ beside the database)",
    )
    refresh.add_argument("--adapter", type=Path, metavar="DIR", help="parent (default: the serving one)")
    refresh.add_argument("--method", choices=("auto", "dpo", "kto"), default="auto")
    refresh.add_argument(
        "--min-new",
        type=int,
        default=50,
        help="ratings + battle votes needed since the last refresh (default 50; 0: always run)",
    )
    refresh.add_argument("--dry-run", action="store_true", help="count, export and plan; train nothing")
    add_flags(refresh, "db")
    add_tuning_flags(refresh)
    refresh.set_defaults(handler=_refresh)


def _versions(args: argparse.Namespace) -> int:
    from bot.storage import Storage
    from bot.storage.connection import existing_database

    settings = settings_from_args(args)
    path = existing_database(settings.storage.path)

    async def show() -> list[str]:
        from bot.battles import bradley_terry
        from bot.battles.challengers import all_games, format_standings

        async with await Storage.open(path) as storage:
            records = await storage.versions.all()
            games = await all_games(storage)
            events = await storage.versions.events() if args.events else []
        confidence = settings.learning.confidence
        lines = [f"{len(records)} registered version(s)" + (":" if records else "")]
        lines += [
            f"  {r.version}: {r.status}, from {r.parent or '-'}, since {r.updated_at:%Y-%m-%d %H:%M}, "
            f"{r.path or 'directory unknown'}"
            for r in records
        ]
        table = bradley_terry.strength_table(games, confidence=confidence)
        lines += format_standings(table, {r.version: r.status for r in records}, confidence) or [
            "no battles between versions yet"
        ]
        if args.events:
            lines.append("events:")
            lines += [
                f"  {e.at:%Y-%m-%d %H:%M} {e.version} {e.event} by {e.actor}: {e.reason}" for e in events
            ]
        return lines

    print("\n".join(asyncio.run(show())))
    return 0


def _refresh(args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.refresh import NotEnoughNewFeedback, RefreshOptions, refresh
    from training.commands import tuning_options

    settings = settings_from_args(args)
    work_dir = args.work_dir or settings.storage.path.parent / "refresh"
    placeholder = Path(".")  # per run: the method, parent, export and output are chosen inside
    tuning = tuning_options(
        args,
        method="dpo",
        adapter=placeholder,
        feedback=placeholder,
        data=args.data,
        output=placeholder,
        force=False,
    )
    options = RefreshOptions(
        args.data, work_dir, tuning, args.adapter, args.method, args.min_new, args.dry_run
    )
    try:
        report = asyncio.run(refresh(settings, options, SystemClock()))
    except NotEnoughNewFeedback as exc:
        print(f"punchline refresh: {exc}", file=sys.stderr)
        return EXIT_NOTHING_NEW
    print("\n".join(report.lines))
    if report.interrupted:
        return 130
    if args.dry_run or report.registered:
        return 0
    return EXIT_GATE_FAILED


def _chat(args: argparse.Namespace) -> int:
    from bot.console.chat import run_chat

    settings = settings_from_args(args)
    if not args.verbose:
        # An interactive chat: INFO logs (migrations, model loading) would interleave with it.
        logging.getLogger().setLevel(logging.WARNING)
        # So would the "Loading weights" bars transformers draws on stderr. huggingface_hub
        # reads this once, at import, and nothing has imported it yet (the model loads lazily,
        # in run_chat). bot/ never imports transformers itself; an explicit setting wins.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        # Deprecation notices transformers prints while converting a model are for developers.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
    return asyncio.run(run_chat(settings, sys.stdin, sys.stdout))


def _serve(args: argparse.Namespace) -> int:
    from bot.serve import run_serve

    asyncio.run(run_serve(settings_from_args(args)))
    return 0


def _purge(args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.core.privacy import PrivacyDesk
    from bot.storage import Storage
    from bot.storage.connection import existing_database

    settings = settings_from_args(args)
    path = existing_database(settings.storage.path)

    async def purge() -> dict[str, int]:
        async with await Storage.open(path) as storage:
            return await PrivacyDesk(settings.privacy, storage, SystemClock()).purge()

    counts = asyncio.run(purge())
    days = settings.privacy.retention_days
    if not days:
        print("retention is off (PUNCHLINE_PRIVACY__RETENTION_DAYS=0): nothing purged")
        return 0
    print(f"purged what is older than {days} days: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    return 0


def _export(args: argparse.Namespace) -> int:
    from bot.export.rows import parse_since
    from bot.storage.connection import existing_database

    settings = settings_from_args(args)
    since = parse_since(args.since)
    path = existing_database(settings.storage.path)
    return asyncio.run(_export_async(path, args.format, since, args.output, settings.privacy))


async def _export_async(
    path: Path, fmt: str, since: datetime | None, output: Path | None, privacy: PrivacySettings
) -> int:
    from bot.export.collect import collect_rows
    from bot.export.rows import ExportError, write_rows
    from bot.storage import Storage

    async with await Storage.open(path) as storage:
        rows = await collect_rows(storage, since, privacy)
    if output is None:
        write_rows(rows, fmt, sys.stdout)
    else:
        try:
            with output.open("w", encoding="utf-8", newline="") as fh:
                write_rows(rows, fmt, fh)
        except OSError as exc:
            raise ExportError(f"cannot write {output}: {exc.strerror or exc}") from None
    kinds = Counter(row.kind for row in rows)
    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "nothing rated yet"
    print(f"exported {len(rows)} rows ({detail})" + (f" to {output}" if output else ""), file=sys.stderr)
    return 0
