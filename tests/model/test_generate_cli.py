"""`punchline generate` through the real command line, with the tiny T5 and its adapter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main

pytestmark = pytest.mark.shared_data


@pytest.fixture
def tiny_args(tiny_base_model: Path) -> list[str]:
    return [
        "--base-model",
        str(tiny_base_model),
        "--greedy",
        "--max-new-tokens",
        "6",
        "--dtype",
        "float32",
    ]


def test_generate_prints_punchlines_from_the_adapter(
    tiny_args: list[str], tiny_adapter: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "generate",
            "Why do Yoda's jokes always suck?",
            "-n",
            "2",
            "--adapter",
            str(tiny_adapter),
            "--backend",
            "transformers",
            "--json",
            *tiny_args,
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backend"] == "transformers-float32"
    assert 1 <= len(out["punchlines"]) <= 2
    assert {p["version"] for p in out["punchlines"]} == {"v-test-a"}
    assert all(p["text"].strip() and p["score"] <= 0 for p in out["punchlines"])


def test_generate_with_ctranslate2_prints_lines(
    tiny_args: list[str],
    tiny_adapter: Path,
    ct2_cache: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUNCHLINE_MODEL__CACHE_DIR", str(ct2_cache))
    code = main(
        [
            "generate",
            "Why do Yoda's jokes always suck?",
            "--adapter",
            str(tiny_adapter),
            "--backend",
            "ctranslate2",
            *tiny_args,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].strip()
    assert "version v-test-a, backend ctranslate2-float32" in captured.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["   "], "the setup is empty"),
        (["fine?", "-n", "40"], "n must be"),
        (["fine?", "--adapter", "/no/such/adapter"], "does not exist"),
    ],
)
def test_generate_bad_input_is_one_line(
    tiny_args: list[str], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = main(["generate", *args, "--backend", "transformers", *tiny_args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("punchline generate: error:") and message in err
    assert len(err.splitlines()) == 1


def test_unknown_hub_id_offline_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PUNCHLINE_MODEL__CACHE_DIR": str(tmp_path)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "generate",
            "Why?",
            "--base-model",
            "nobody-here/no-such-model",
            "--backend",
            "transformers",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("punchline generate: error: cannot")
    assert "nobody-here/no-such-model" in last and "Traceback" not in proc.stderr


def test_unknown_hub_id_offline_with_the_default_backend_is_one_line(tmp_path: Path) -> None:
    """The hub id fails before any conversion starts: stderr is the error and nothing else."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PUNCHLINE_MODEL__CACHE_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "generate", "Why?", "--base-model", "some-org/not-a-model"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("punchline generate: error: cannot load the")
    assert "'some-org/not-a-model'" in lines[0] and "hub cannot be reached" in lines[0]
