"""`punchline`: the one command line, with a sub-command per job.

Each package registers its own sub-commands (`training.commands`, `model.commands`,
`bot.commands`); heavy imports (torch, transformers, chat libraries) happen inside the handlers,
so `punchline --help` is instant. Errors meant for people (`PunchlineError`) print as one line
and exit 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from config import PunchlineError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The full parser; each package adds its sub-commands."""
    from bot import commands as bot_commands
    from model import commands as model_commands
    from model.broker import commands as fleet_commands
    from training import commands as training_commands

    parser = argparse.ArgumentParser(
        prog="punchline",
        description="Punchline: a joke bot on LoRA-tuned flan-t5-large. "
        "Settings come from PUNCHLINE_* environment variables and .env; flags override them.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    training_commands.register(sub)
    model_commands.register(sub)
    fleet_commands.register(sub)
    bot_commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `punchline` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except PunchlineError as exc:
        print(f"punchline {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"punchline {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
