"""The layering docs/DESIGN.md promises, checked on the source: no import cycles anywhere, chat
front-ends never import torch, the model never imports a chat library, battles import no chat
library, no front-end imports another, and `punchline --help` stays light.

Imports are read from the source with `ast`, all of them: at the top, inside functions and
under `TYPE_CHECKING`, so a cycle cannot hide behind a late import. Importing `a.b.c` also
imports the packages `a` and `a.b` (their `__init__`), so those count as edges too, except a
module's own packages (they are imported before it runs).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "model", "training", "config")
CHAT_LIBRARIES = {"telegram", "discord", "aiosqlite"}
ML_LIBRARIES = {"torch", "transformers", "peft", "ctranslate2", "accelerate", "onnxruntime"}
FRONT_ENDS = ("bot.telegram", "bot.discord", "bot.console")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(path: Path) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(module, names imported from it) for every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield module, tuple(alias.name for alias in node.names)


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def import_graph() -> dict[str, set[str]]:
    """Project module -> the project modules importing it runs."""
    modules = _project_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        # A module's own packages are imported before it runs, so they are no edge of its.
        own = set(_with_parents(name))
        for module, names in _imports(path):
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules] or [module]
            for target in targets:
                graph[name].update(m for m in _with_parents(target) if m in modules and m not in own)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def _top_levels(path: Path) -> set[str]:
    return {module.split(".")[0] for module, _ in _imports(path)}


def test_there_is_no_import_cycle() -> None:
    cycles = find_cycles(import_graph())
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", ["model", "training", "config"])
def test_model_side_never_imports_a_chat_library(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        assert not (_top_levels(path) & CHAT_LIBRARIES), path


def test_bot_package_never_imports_ml_libraries_directly() -> None:
    for path in (ROOT / "bot").rglob("*.py"):
        assert not (_top_levels(path) & ML_LIBRARIES), path


def test_battles_import_no_chat_library() -> None:
    for path in (ROOT / "bot" / "battles").rglob("*.py"):
        assert not (_top_levels(path) & {"telegram", "discord"}), path


def test_no_front_end_imports_another() -> None:
    graph = import_graph()
    for name, targets in graph.items():
        own = next((fe for fe in FRONT_ENDS if name == fe or name.startswith(fe + ".")), None)
        if own is None:
            continue
        others = {
            t for t in targets for fe in FRONT_ENDS if fe != own and (t == fe or t.startswith(fe + "."))
        }
        assert not others, f"{name} imports {sorted(others)}"


def test_core_and_storage_import_no_front_end_and_core_imports_no_battles() -> None:
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith(("bot.core", "bot.storage", "bot.battles")):
            assert not {t for t in targets if t.startswith(FRONT_ENDS)}, name
        if name.startswith("bot.core"):
            assert not {t for t in targets if t.startswith("bot.battles")}, name


def _modules_after_import(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_front_ends_load_without_torch() -> None:
    modules = [
        "bot.cli",
        "bot.core.service",
        "bot.telegram.app",
        "bot.discord.client",
        "bot.serve",
        "model.worker",
    ]
    loaded = _modules_after_import("; ".join(f"import {m}" for m in modules))
    assert "torch" not in loaded
    assert "transformers" not in loaded


def test_preference_data_and_bradley_terry_are_pure_python() -> None:
    """Building preference data and judging battles needs no ML library (the bot side calls both)."""
    modules = ["training.feedback", "training.preferences", "training.replay", "bot.battles.bradley_terry"]
    loaded = _modules_after_import("; ".join(f"import {m}" for m in modules))
    assert not loaded & ML_LIBRARIES


def test_the_content_filter_is_pure_python() -> None:
    """Family mode checks every candidate in the bot process: its filter loads no ML library."""
    loaded = _modules_after_import("import model.safety; from model.safety import classifier, wordlist")
    assert not loaded & ML_LIBRARIES
    assert not loaded & CHAT_LIBRARIES
