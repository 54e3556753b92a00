"""Sub-commands of `punchline` that belong to `model/`: `punchline generate`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any


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
    gen.add_argument("--base-model", help="hub id or directory of the base model")
    gen.add_argument("--adapter", type=Path, help="adapter directory written by `punchline train`")
    gen.add_argument("--no-adapter", action="store_true", help="serve the base model alone")
    gen.add_argument("--backend", choices=["auto", "transformers", "ctranslate2"])
    gen.add_argument("--device", choices=["auto", "cpu", "cuda"])
    gen.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "int8"])
    gen.add_argument("--greedy", action="store_true", help="deterministic decoding (no sampling)")
    gen.add_argument("--max-new-tokens", type=int)
    gen.add_argument("--temperature", type=float)
    gen.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    gen.set_defaults(handler=run_generate)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    model: dict[str, Any] = {}
    for flag, key in [
        ("base_model", "base"),
        ("adapter", "adapter"),
        ("backend", "backend"),
        ("device", "device"),
        ("dtype", "dtype"),
        ("max_new_tokens", "max_new_tokens"),
        ("temperature", "temperature"),
    ]:
        value = getattr(args, flag)
        if value is not None:
            model[key] = value
    if args.no_adapter:
        model["adapter"] = None
    if args.greedy:
        model["do_sample"] = False
    return {"model": model} if model else {}


def run_generate(args: argparse.Namespace) -> int:
    """Load the model, print up to `-n` punchlines for the setup, best first."""
    from config.settings import load_settings
    from model.generation import check_request
    from model.worker import create_worker

    settings = load_settings(**_overrides(args))
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
                        {"text": p.text, "version": p.version, "score": round(p.score, 4)}
                        for p in punchlines
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
