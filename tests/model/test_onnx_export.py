"""The ONNX export: checked against transformers, quantised, cached by adapter version, rebuilt
when an entry is corrupt or stale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.settings import ModelSettings, WorkerSettings
from model.backends import load_backend
from model.generation import GenerationParams
from model.loading import resolve_source
from tests.model.conftest import make_adapter

pytestmark = pytest.mark.shared_data

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from model.backends import onnx_cache, onnx_export, onnx_graphs  # noqa: E402
from model.backends.onnx_errors import OnnxBackendError, OnnxExportError  # noqa: E402

GREEDY = GenerationParams(
    max_new_tokens=6, do_sample=False, repetition_penalty=1.0, no_repeat_ngram_size=0, num_candidates=1
)
PROMPTS = ["Answer this joke with a funny punchline: Why did the chicken cross the road?", "Why?"]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def onnx_backend(settings: ModelSettings, adapter: Path | None, **changes: object):
    changes.setdefault("backend", "onnxruntime")
    return load_backend(settings.model_copy(update=changes), WorkerSettings(threads=1), adapter)


def entry(settings: ModelSettings, adapter: Path | None, cache: Path, quantization: str = "float32") -> Path:
    return onnx_cache.entry_dir(resolve_source(settings.base, adapter), cache, quantization)


# -- validation at export time -----------------------------------------------------------------


def test_export_records_how_close_it_came_to_transformers(
    tiny_model_settings: ModelSettings, tiny_adapter: Path, ct2_cache: Path
) -> None:
    b = onnx_backend(tiny_model_settings, tiny_adapter, dtype="int8")
    assert b.name == "onnxruntime-int8" and b.version == "v-test-a"
    directory = entry(tiny_model_settings, tiny_adapter, ct2_cache, "int8")
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["fp32_max_error"] < 1e-4  # float32 graphs: op order only
    assert 0 < manifest["quantized_error"] < onnx_export.QUANTIZED_TOLERANCE
    assert set(manifest["files"]) == {"encoder.onnx", "decoder.onnx"}  # no float32 leftovers
    assert manifest["version"] == "v-test-a" and manifest["quantization"] == "int8"
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(".")]  # scratch removed


def test_a_broken_export_fails_loudly_and_leaves_no_entry(
    tiny_model_settings: ModelSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A graph that ignores the padding mask (a trace that froze an all-ones mask) is refused."""
    monkeypatch.setattr(
        onnx_graphs, "_additive_mask", lambda mask: torch.zeros(mask.shape[0], 1, 1, mask.shape[1])
    )
    with pytest.raises(OnnxExportError, match="disagree with transformers: largest logit error"):
        onnx_backend(tiny_model_settings, None, cache_dir=tmp_path)
    directory = entry(tiny_model_settings, None, tmp_path)
    assert not directory.exists()
    assert list(directory.parent.iterdir()) == []  # the scratch directory is gone too


def test_a_wrong_position_bias_fails_loudly(
    tiny_model_settings: ModelSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = onnx_graphs._position_bias
    monkeypatch.setattr(onnx_graphs, "_position_bias", lambda attn, rel, bidirectional: real(attn, rel, True))
    with pytest.raises(OnnxExportError, match="tolerance"):
        onnx_backend(tiny_model_settings, None, cache_dir=tmp_path)


def test_quantised_graphs_are_checked_too(
    tiny_model_settings: ModelSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_export, "QUANTIZED_TOLERANCE", 0.0)
    with pytest.raises(OnnxExportError, match="the int8 graphs disagree"):
        onnx_backend(tiny_model_settings, None, dtype="int8", cache_dir=tmp_path)


def test_the_validation_batch_has_uneven_prompts() -> None:
    batch = onnx_export.validation_batch(100, 0)
    lengths = batch.attention_mask.sum(dim=1).tolist()
    assert len(set(lengths)) == len(lengths) > 1
    assert bool((batch.input_ids[batch.attention_mask == 0] == 0).all())  # padded with pad id 0


def test_errors_say_what_failed(
    tiny_model_settings: ModelSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Unsupported: aten::something\nmore detail")

    monkeypatch.setattr(torch.onnx, "export", fail)
    with pytest.raises(
        OnnxBackendError, match=r"^torch.onnx.export failed: RuntimeError: Unsupported: aten::something$"
    ):
        onnx_backend(tiny_model_settings, None, cache_dir=tmp_path)


def test_dtypes_it_cannot_serve(tiny_model_settings: ModelSettings, tmp_path: Path) -> None:
    with pytest.raises(OnnxBackendError, match="dtype 'bfloat16' is not available with onnxruntime"):
        onnx_backend(tiny_model_settings, None, dtype="bfloat16", cache_dir=tmp_path)


# -- the cache -----------------------------------------------------------------------------------


def test_each_adapter_version_has_its_own_entry(
    tiny_model_settings: ModelSettings, tiny_base_model: Path, tmp_path: Path
) -> None:
    one = make_adapter(tiny_base_model, tmp_path / "one", "v-same", seed=4)
    two = make_adapter(tiny_base_model, tmp_path / "two", "v-same", seed=5)
    cache = tmp_path / "cache"
    first, second = (
        onnx_backend(tiny_model_settings, one, cache_dir=cache),
        onnx_backend(tiny_model_settings, two, cache_dir=cache),
    )
    dir_one, dir_two = entry(tiny_model_settings, one, cache), entry(tiny_model_settings, two, cache)
    assert dir_one != dir_two and dir_one.name == dir_two.name == "onnx-float32"
    assert dir_one.parent.name.startswith("v-same-") and dir_two.parent.name.startswith("v-same-")
    assert first.generate(PROMPTS, 1, GREEDY) != second.generate(PROMPTS, 1, GREEDY)


def test_a_cached_entry_is_reused(tiny_model_settings: ModelSettings, tmp_path: Path) -> None:
    first = onnx_backend(tiny_model_settings, None, cache_dir=tmp_path)
    directory = entry(tiny_model_settings, None, tmp_path)
    stamp = (directory / "decoder.onnx").stat().st_mtime_ns
    second = onnx_backend(tiny_model_settings, None, cache_dir=tmp_path)
    assert (directory / "decoder.onnx").stat().st_mtime_ns == stamp
    assert first.generate(PROMPTS, 1, GREEDY) == second.generate(PROMPTS, 1, GREEDY)


def _truncate(directory: Path) -> None:
    path = directory / "decoder.onnx"
    path.write_bytes(path.read_bytes()[:1000])


def _delete_encoder(directory: Path) -> None:
    (directory / "encoder.onnx").unlink()


def _scramble(directory: Path) -> None:
    """Same size, garbage content: only ONNX Runtime can tell."""
    path = directory / "decoder.onnx"
    path.write_bytes(b"\x07" * path.stat().st_size)


def _drop_manifest(directory: Path) -> None:
    (directory / "manifest.json").unlink()


def _old_format(directory: Path) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    (directory / "manifest.json").write_text(json.dumps({**manifest, "format": 0}))


def _corrupt_manifest(directory: Path) -> None:
    (directory / "manifest.json").write_text("{not json")


@pytest.mark.parametrize(
    "damage", [_truncate, _delete_encoder, _scramble, _drop_manifest, _old_format, _corrupt_manifest]
)
def test_a_corrupt_or_stale_entry_is_rebuilt(
    tiny_model_settings: ModelSettings, tmp_path: Path, damage, caplog: pytest.LogCaptureFixture
) -> None:
    expected = onnx_backend(tiny_model_settings, None, cache_dir=tmp_path).generate(PROMPTS, 1, GREEDY)
    directory = entry(tiny_model_settings, None, tmp_path)
    damage(directory)
    rebuilt = onnx_backend(tiny_model_settings, None, cache_dir=tmp_path)
    assert rebuilt.generate(PROMPTS, 1, GREEDY) == expected
    assert onnx_cache.problem(directory, resolve_source(tiny_model_settings.base, None), "float32") is None
    assert "rebuilding the ONNX cache entry" in caplog.text
    assert [p.name for p in directory.parent.iterdir()] == ["onnx-float32"]  # nothing left aside


def test_an_entry_is_stale_once_the_base_weights_change(tiny_base_model: Path, tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    for f in tiny_base_model.iterdir():
        (base / f.name).write_bytes(f.read_bytes())
    settings = ModelSettings(base=str(base), device="cpu", dtype="float32", cache_dir=tmp_path / "cache")
    onnx_backend(settings, None)
    source = resolve_source(str(base), None)
    directory = onnx_cache.entry_dir(source, tmp_path / "cache", "float32")
    assert onnx_cache.problem(directory, source, "float32") is None
    (base / "model.safetensors").write_bytes((base / "model.safetensors").read_bytes())  # rewritten
    assert "weights changed" in (onnx_cache.problem(directory, source, "float32") or "")


def test_an_unwritable_cache_is_one_error_line(tiny_model_settings: ModelSettings, tmp_path: Path) -> None:
    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("not a directory")
    with pytest.raises(OnnxBackendError, match="cannot create the model cache"):
        onnx_backend(tiny_model_settings, None, cache_dir=blocked)
