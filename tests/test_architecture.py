"""The layering DESIGN.md promises: chat front-ends never import torch, the model never imports a
chat library, and `punchline --help` stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAT_LIBRARIES = {"telegram", "discord", "aiosqlite"}
ML_LIBRARIES = {"torch", "transformers", "peft", "ctranslate2", "accelerate"}


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["model", "training", "config"])
def test_model_side_never_imports_a_chat_library(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        assert not (_imported_top_levels(path) & CHAT_LIBRARIES), path


def test_bot_package_never_imports_ml_libraries_directly() -> None:
    for path in (ROOT / "bot").rglob("*.py"):
        assert not (_imported_top_levels(path) & ML_LIBRARIES), path


def _modules_after_import(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {name.split(".")[0] for name in out.stdout.split()}


def test_front_ends_load_without_torch() -> None:
    modules = ["bot.cli", "bot.core", "bot.telegram_bot", "bot.discord_bot", "model.worker"]
    present = [m for m in modules if (ROOT / (m.replace(".", "/") + ".py")).exists()]
    loaded = _modules_after_import("; ".join(f"import {m}" for m in present))
    assert "torch" not in loaded
    assert "transformers" not in loaded
