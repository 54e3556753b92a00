"""Sub-commands of `punchline` that belong to `model/`: `punchline generate`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from config.flags import add_flags, settings_from_args


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's sub-commands to the `punchline` parser."""
    gen = sub.add_parser(
        "generate",
        help="print punchlines for a joke setup with the configured model and adapter",
        description="Generate punchlines for SETUP with the configured base model, adapter and "
        "backend (PUNCHLINE_MODEL__*); flags override the settings for this run.",
    )
    gen.add_argument("setup", help='the joke setup, e.g. "Why do Yoda\'s jokes always suck?"')
    gen.add_argument("-n", type=int, default=1, help="how many punchlines to print (1-16)")
    add_flags(
        gen,
        "base_model",
        "adapter",
        "no_adapter",
        "backend",
        "device",
        "dtype",
        "greedy",
        "max_new_tokens",
        "temperature",
    )
    gen.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    gen.set_defaults(handler=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    """Load the model, print up to `-n` punchlines for the setup, best first."""
    from model.generation import check_request
    from model.worker import create_worker

    settings = settings_from_args(args)
    # Refuse a bad setup before spending seconds on loading the model.
    check_request(args.setup, args.n, settings.model.max_setup_chars)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars would bury the one-line output

    async def generate() -> tuple[list[Any], str]:
        worker = create_worker(settings)
        try:
            await worker.start()
            punchlines = await worker.punchlines(args.setup, n=args.n)
            return punchlines, worker.backend_name
        finally:
            await worker.close()

    punchlines, backend = asyncio.run(generate())
    if args.json:
        print(
            json.dumps(
                {
                    "setup": args.setup,
                    "backend": backend,
                    "punchlines": [
                        {"text": p.text, "version": p.version, "score": round(p.score, 4)} for p in punchlines
                    ],
                },
                ensure_ascii=False,
            )
        )
        return 0
    for p in punchlines:
        print(p.text)
    version = punchlines[0].version if punchlines else "?"
    scores = ", ".join(f"{p.score:.3f}" for p in punchlines)
    print(f"(version {version}, backend {backend}, scores {scores})", file=sys.stderr)
    return 0
