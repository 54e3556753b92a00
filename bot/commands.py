"""Sub-commands of `punchline` that belong to `bot/`: `chat`, `serve`, `ratings export`.

Handlers import the heavy parts (model worker, chat libraries) inside, so `punchline --help`
stays instant.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import warnings
from collections import Counter
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's sub-commands to the `punchline` parser."""
    chat = sub.add_parser(
        "chat",
        help="chat with the bot in this terminal (no tokens needed)",
        description="A local chat with the same core, storage and model as the chat bots. "
        "Type a setup, get a punchline, rate it with f/m/i. /help, /stats, /reload [adapter_dir], /quit.",
    )
    chat.add_argument("--base-model", metavar="ID_OR_DIR", help="base model (PUNCHLINE_MODEL__BASE)")
    chat.add_argument("--adapter", type=Path, metavar="DIR", help="adapter directory (PUNCHLINE_MODEL__ADAPTER)")
    chat.add_argument("--db", type=Path, metavar="PATH", help="SQLite database (PUNCHLINE_STORAGE__PATH)")
    chat.set_defaults(handler=_chat)

    serve = sub.add_parser(
        "serve",
        help="run the Telegram and/or Discord bot",
        description="Starts every configured front-end (Telegram when PUNCHLINE_TELEGRAM__TOKEN is "
        "set, Discord when PUNCHLINE_DISCORD__TOKEN is set) with the model worker, in one process. "
        "Ctrl-C or SIGTERM stops it cleanly.",
    )
    serve.add_argument("--db", type=Path, metavar="PATH", help="SQLite database (PUNCHLINE_STORAGE__PATH)")
    serve.set_defaults(handler=_serve)

    ratings = sub.add_parser("ratings", help="work with the collected ratings")
    ratings_sub = ratings.add_subparsers(dest="ratings_command", metavar="ACTION", required=True)
    export = ratings_sub.add_parser(
        "export",
        help="export rated replies as JSON lines or CSV",
        description="One row per rated reply (kind 'reply'): setup, punchline, adapter version, "
        "platform, funniness (-1..1) and appropriateness (0..1) scores, and counts; battle "
        "entries follow as their own kind when battles are installed.",
    )
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--since", metavar="DATE", help="only replies made on or after DATE (YYYY-MM-DD, UTC)")
    export.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here instead of stdout")
    export.add_argument("--db", type=Path, metavar="PATH", help="SQLite database (PUNCHLINE_STORAGE__PATH)")
    export.set_defaults(handler=_export)


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from config.settings import load_settings

    overrides: dict[str, dict[str, object]] = {}
    if getattr(args, "base_model", None):
        overrides.setdefault("model", {})["base"] = args.base_model
    if getattr(args, "adapter", None):
        overrides.setdefault("model", {})["adapter"] = args.adapter
    if getattr(args, "db", None):
        overrides.setdefault("storage", {})["path"] = args.db
    return load_settings(**overrides)


def _chat(args: argparse.Namespace) -> int:
    from bot.console import run_chat

    settings = _settings(args)
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
    from bot.app import run_serve

    settings = _settings(args)
    asyncio.run(run_serve(settings))
    return 0


def _export(args: argparse.Namespace) -> int:
    from bot.export import ExportError, parse_since

    settings = _settings(args)
    since = parse_since(args.since)
    path = settings.storage.path
    if not path.is_file():
        raise ExportError(f"no database at {path}; set PUNCHLINE_STORAGE__PATH or --db")
    return asyncio.run(_export_async(path, args.format, since, args.output))


async def _export_async(path: Path, fmt: str, since, output: Path | None) -> int:  # type: ignore[no-untyped-def]
    from bot.export import ExportError, collect_rows, write_rows
    from bot.storage import Storage

    async with await Storage.open(path) as storage:
        rows = await collect_rows(storage, since)
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
