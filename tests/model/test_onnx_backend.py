"""Choosing the ONNX Runtime backend, falling back from it, and using it from the command line
(`punchline generate`, `punchline chat`) with the tiny T5 and an adapter."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from config.settings import ModelSettings, Settings, WorkerSettings
from model.backends import choose_backend, load_backend
from model.worker import create_worker

pytestmark = pytest.mark.shared_data

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from model.backends.onnx import OnnxRuntimeBackend  # noqa: E402
from model.backends.onnx_errors import OnnxBackendError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_auto_on_cpu_is_onnxruntime_when_it_is_installed() -> None:
    assert choose_backend(ModelSettings(backend="auto", device="cpu")) == "onnxruntime"
    assert choose_backend(ModelSettings(backend="onnxruntime", device="cpu")) == "onnxruntime"
    assert choose_backend(ModelSettings(backend="auto", device="cuda")) == "transformers"


def test_auto_falls_back_to_ctranslate2_when_onnxruntime_fails(
    tiny_model_settings: ModelSettings, tiny_adapter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise OnnxBackendError("ONNX Runtime cannot load the cache: boom")

    monkeypatch.setattr(OnnxRuntimeBackend, "load", fail)
    settings = tiny_model_settings.model_copy(update={"backend": "auto", "dtype": "auto"})
    fallback = load_backend(settings, WorkerSettings(threads=1), tiny_adapter)
    assert fallback.name == "ctranslate2-int8" and fallback.version == "v-test-a"
    with pytest.raises(OnnxBackendError, match="boom"):  # asked for by name: no fallback
        load_backend(
            settings.model_copy(update={"backend": "onnxruntime"}), WorkerSettings(threads=1), tiny_adapter
        )


async def test_worker_serves_and_reloads_on_onnxruntime(
    tiny_model_settings: ModelSettings, tiny_adapter: Path, tiny_adapter_b: Path
) -> None:
    settings = Settings(
        model=tiny_model_settings.model_copy(
            update={"adapter": tiny_adapter, "candidates": 3, "backend": "onnxruntime", "dtype": "int8"}
        ),
        worker=WorkerSettings(threads=1, stats_log_s=0),
    )
    worker = create_worker(settings)
    await worker.start()
    try:
        first = await worker.punchlines("Why did the chicken cross the road?", n=2)
        assert 1 <= len(first) <= 2 and {p.version for p in first} == {"v-test-a"}
        assert await worker.reload(tiny_adapter_b) == "v-test-b"
        second = await worker.punchlines("Why did the chicken cross the road?")
        assert second[0].version == "v-test-b"
        assert worker.stats().backend == "onnxruntime-int8"
    finally:
        await worker.close()


def test_generate_with_onnxruntime_and_an_adapter(
    tiny_base_model: Path,
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
            "-n",
            "2",
            "--adapter",
            str(tiny_adapter),
            "--backend",
            "onnxruntime",
            "--base-model",
            str(tiny_base_model),
            "--greedy",
            "--max-new-tokens",
            "6",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backend"] == "onnxruntime-int8"  # dtype auto on CPU
    assert 1 <= len(out["punchlines"]) <= 2
    assert {p["version"] for p in out["punchlines"]} == {"v-test-a"}
    assert all(p["text"].strip() and p["score"] <= 0 for p in out["punchlines"])


def test_generate_with_the_base_model_alone_prints_lines(
    tiny_base_model: Path,
    ct2_cache: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUNCHLINE_MODEL__CACHE_DIR", str(ct2_cache))
    args = [
        "generate",
        "Why?",
        "--backend",
        "onnxruntime",
        "--base-model",
        str(tiny_base_model),
        "--dtype",
        "float32",
    ]
    assert main([*args, "--max-new-tokens", "4"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() and "version base, backend onnxruntime-float32" in captured.err


def test_generate_with_a_dtype_it_cannot_serve_is_one_line(
    tiny_base_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "generate",
            "Why?",
            "--backend",
            "onnxruntime",
            "--base-model",
            str(tiny_base_model),
            "--dtype",
            "bfloat16",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "dtype 'bfloat16' is not available with onnxruntime" in err


@pytest.mark.slow
def test_punchline_chat_on_onnxruntime_with_an_adapter(
    tiny_base_model: Path, tiny_adapter: Path, tiny_adapter_b: Path, tmp_path: Path
) -> None:
    """The real command: chat, rate, reload another adapter (a second export), chat again."""
    db = tmp_path / "chat.db"
    env = dict(
        os.environ,
        PUNCHLINE_MODEL__DEVICE="cpu",
        PUNCHLINE_MODEL__BACKEND="onnxruntime",
        PUNCHLINE_MODEL__ADAPTER=str(tiny_adapter),
        PUNCHLINE_MODEL__MAX_NEW_TOKENS="8",
        PUNCHLINE_MODEL__CANDIDATES="2",
        PUNCHLINE_WORKER__THREADS="1",
        PUNCHLINE_WORKER__TIMEOUT_S="120",
        PUNCHLINE_MODEL__CACHE_DIR=str(tmp_path / "cache"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--base-model", str(tiny_base_model), "--db", str(db)],
        input=f"Why did the chicken cross the road?\nf\n/reload {tiny_adapter_b}\nWhy is six afraid of seven?\n\n/quit\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "Now serving v-test-b (was v-test-a)" in result.stdout
    with sqlite3.connect(db) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM replies ORDER BY id")]
    assert versions == ["v-test-a", "v-test-b"]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir())[0].startswith("v-test-a-")
