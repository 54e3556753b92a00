"""Command-line flags that override settings: one table, one translator, one help line each.

Every `punchline` sub-command adds its flags with `add_flags(parser, "base_model", "db", ...)`
and reads its settings with `settings_from_args(args)`, so `--base-model` means the same thing
(and says the same in `--help`) everywhere, and a flag always wins over the environment.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.settings import Settings, load_settings


@dataclass(frozen=True, slots=True)
class Flag:
    option: str  # e.g. "--base-model"
    section: str  # settings section, e.g. "model"
    field: str  # setting in that section, e.g. "base"
    help: str
    kind: type = str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None


FLAGS: dict[str, Flag] = {
    flag.option.removeprefix("--").replace("-", "_"): flag
    for flag in (
        Flag(
            "--base-model",
            "model",
            "base",
            "hub id or local directory of the base model "
            "(PUNCHLINE_MODEL__BASE, default google/flan-t5-large)",
            metavar="ID_OR_DIR",
        ),
        Flag(
            "--adapter",
            "model",
            "adapter",
            "adapter directory written by `punchline train` (PUNCHLINE_MODEL__ADAPTER)",
            Path,
            "DIR",
        ),
        Flag(
            "--backend",
            "model",
            "backend",
            "inference backend (PUNCHLINE_MODEL__BACKEND)",
            choices=("auto", "transformers", "ctranslate2", "onnxruntime"),
        ),
        Flag("--device", "model", "device", "PUNCHLINE_MODEL__DEVICE", choices=("auto", "cpu", "cuda")),
        Flag(
            "--dtype",
            "model",
            "dtype",
            "PUNCHLINE_MODEL__DTYPE",
            choices=("auto", "float32", "bfloat16", "int8"),
        ),
        Flag(
            "--max-new-tokens",
            "model",
            "max_new_tokens",
            "longest reply in tokens (PUNCHLINE_MODEL__MAX_NEW_TOKENS)",
            int,
        ),
        Flag(
            "--temperature",
            "model",
            "temperature",
            "sampling temperature (PUNCHLINE_MODEL__TEMPERATURE)",
            float,
        ),
        Flag("--db", "storage", "path", "SQLite database (PUNCHLINE_STORAGE__PATH)", Path, "PATH"),
    )
}
# Switches that set a fixed value.
SWITCHES: dict[str, tuple[str, str, Any, str]] = {
    "no_adapter": ("model", "adapter", None, "serve the base model alone"),
    "greedy": ("model", "do_sample", False, "deterministic decoding (no sampling)"),
}


def add_flags(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add the named flags (keys of FLAGS or SWITCHES) to `parser`."""
    for name in names:
        if name in SWITCHES:
            parser.add_argument("--" + name.replace("_", "-"), action="store_true", help=SWITCHES[name][3])
            continue
        flag = FLAGS[name]
        kwargs: dict[str, Any] = {"help": flag.help, "type": flag.kind}
        if flag.metavar:
            kwargs["metavar"] = flag.metavar
        if flag.choices:
            kwargs["choices"] = flag.choices
        parser.add_argument(flag.option, **kwargs)


def overrides_from_args(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The settings the flags in `args` override, as `load_settings` keyword arguments."""
    overrides: dict[str, dict[str, Any]] = {}
    for name, flag in FLAGS.items():
        value = getattr(args, name, None)
        if value is not None:
            overrides.setdefault(flag.section, {})[flag.field] = value
    for name, (section, field, value, _) in SWITCHES.items():
        if getattr(args, name, False):
            overrides.setdefault(section, {})[field] = value
    return overrides


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The environment's settings with the flags in `args` on top. Raises `SettingsError`."""
    return load_settings(**overrides_from_args(args))
