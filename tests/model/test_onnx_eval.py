"""`punchline eval --backend NAME`: what a serving engine costs in quality, against
transformers float32 on the same adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main

pytestmark = pytest.mark.shared_data

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def run_eval(base: Path, adapter: Path, data: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "eval",
            "--base-model",
            str(base),
            "--adapter",
            str(adapter),
            "--data",
            str(data),
            "--output-dir",
            str(out),
            "--limit",
            "12",
            "--batch-size",
            "5",  # uneven last batch
            "--device",
            "cpu",
            *extra,
        ]
    )


@pytest.mark.parametrize(
    "backend, dtype, name",
    [
        ("onnxruntime", "float32", "onnxruntime-float32"),
        ("onnxruntime", "int8", "onnxruntime-int8"),
        ("ctranslate2", "float32", "ctranslate2-float32"),  # any backend, not only ONNX
        ("transformers", "int8", "transformers-int8"),
    ],
)
def test_eval_compares_a_backend_with_transformers_float32(
    tiny_base_model: Path,
    tiny_adapter: Path,
    kaggle_csv: Path,
    ct2_cache: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
    dtype: str,
    name: str,
) -> None:
    monkeypatch.setenv("PUNCHLINE_MODEL__CACHE_DIR", str(ct2_cache))
    monkeypatch.setenv("PUNCHLINE_WORKER__THREADS", "1")
    code = run_eval(
        tiny_base_model, tiny_adapter, kaggle_csv, tmp_path, "--backend", backend, "--dtype", dtype
    )
    assert code == 0
    out = capsys.readouterr().out
    assert f"| metric | transformers-float32 | {name} |" in out
    assert "| greedy agreement with transformers-float32 |" in out
    report = json.loads((tmp_path / f"eval-{name}.json").read_text(encoding="utf-8"))
    assert report["test_jokes"] == 12 and report["adapter_version"] == "v-test-a"
    ref, cand = report["reference"], report["candidate"]
    assert (ref["backend"], cand["backend"]) == ("transformers-float32", name)
    assert ref["greedy_agreement"] == 1.0
    if dtype == "float32":  # the same model, exported: the same numbers
        assert cand["loss"] == pytest.approx(ref["loss"], rel=1e-4)
        assert cand["greedy_agreement"] == 1.0 and report["differences"] == []
        assert cand["replies"] == pytest.approx(ref["replies"])
    else:  # int8 moves the numbers a little, not a lot
        assert cand["loss"] == pytest.approx(ref["loss"], rel=0.05)
        assert 0.0 <= cand["greedy_agreement"] <= 1.0
    for stats in (ref["replies"], cand["replies"]):
        assert 0 <= stats["echo_rate"] <= 1 and 0 <= stats["empty_rate"] <= 1
    assert (tmp_path / f"eval-{name}.md").read_text(encoding="utf-8").strip() == out.split("written:")[
        0
    ].strip()


def test_eval_with_a_backend_and_a_bad_adapter_is_one_line(
    tiny_base_model: Path, kaggle_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_eval(tiny_base_model, tmp_path, kaggle_csv, tmp_path, "--backend", "onnxruntime")
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("punchline eval: error:") and "\n" not in err
