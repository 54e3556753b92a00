"""Real generation through both backends with the tiny T5 and a LoRA adapter made for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.settings import ModelSettings, Settings, WorkerSettings
from model.adapter_meta import AdapterMetadata
from model.backends import choose_backend, load_backend
from model.generation import GenerationParams
from model.loading import resolve_source
from model.types import AdapterError, InvalidSetup, ModelLoadError
from model.worker import create_worker
from tests.fakes.adapters import make_adapter

pytestmark = pytest.mark.shared_data

torch = pytest.importorskip("torch")

GREEDY = GenerationParams(
    max_new_tokens=8,
    do_sample=False,
    repetition_penalty=1.0,
    no_repeat_ngram_size=0,
    num_candidates=1,
)
PROMPTS = [
    "Answer this joke with a funny punchline: Why did the chicken cross the road?",
    "Answer this joke with a funny punchline: What do you call a fish with no eyes?",
]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def backend(settings: ModelSettings, adapter: Path | None, **changes: object):
    return load_backend(settings.model_copy(update=changes), WorkerSettings(threads=1), adapter)


def test_transformers_serves_adapter_version_and_adapter_changes_output(
    tiny_model_settings: ModelSettings, tiny_adapter: Path
) -> None:
    tuned = backend(tiny_model_settings, tiny_adapter)
    base = backend(tiny_model_settings, None)
    assert (tuned.version, base.version) == ("v-test-a", "base")
    assert tuned.name == "transformers-float32"
    tuned_out = tuned.generate(PROMPTS, 1, GREEDY)
    base_out = base.generate(PROMPTS, 1, GREEDY)
    assert [len(c) for c in tuned_out] == [1, 1]
    assert [c[0].text for c in tuned_out] != [c[0].text for c in base_out]
    for cands in tuned_out:
        assert cands[0].score < 0 and 1 <= cands[0].tokens <= 8


def test_ctranslate2_scores_match_transformers(
    tiny_model_settings: ModelSettings, tiny_adapter: Path
) -> None:
    hf = backend(tiny_model_settings, tiny_adapter)
    ct2 = backend(tiny_model_settings, tiny_adapter, backend="ctranslate2")
    assert ct2.name == "ctranslate2-float32" and ct2.version == "v-test-a"
    for n in (1, 3):  # greedy, then beam search with three hypotheses
        hf_out, ct2_out = hf.generate(PROMPTS, n, GREEDY), ct2.generate(PROMPTS, n, GREEDY)
        for a_list, b_list in zip(hf_out, ct2_out):
            assert [a.text for a in a_list] == [b.text for b in b_list]
            for a, b in zip(a_list, b_list):
                assert a.score == pytest.approx(b.score, abs=1e-4)


def test_scores_agree_when_replies_end_early(tiny_base_model: Path, tmp_path: Path) -> None:
    """Length normalisation counts the end token the same way in both backends."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_base_model)
    with torch.no_grad():
        model.lm_head.weight[1] *= 2.0  # make </s> likely after a few tokens
    base = tmp_path / "tiny-t5-eos"
    model.save_pretrained(base)
    AutoTokenizer.from_pretrained(tiny_base_model).save_pretrained(base)
    settings = ModelSettings(base=str(base), device="cpu", dtype="float32", cache_dir=tmp_path / "cache")
    hf = backend(settings, None, backend="transformers")
    ct2 = backend(settings, None, backend="ctranslate2")
    prompts = [f"Answer this joke with a funny punchline: setup number {i} about cats?" for i in range(8)]
    params = GREEDY.with_(max_new_tokens=12)
    hf_out, ct2_out = hf.generate(prompts, 1, params), ct2.generate(prompts, 1, params)
    lengths = [c[0].tokens for c in hf_out]
    assert any(1 < n < 12 for n in lengths), lengths  # some replies really ended early
    assert lengths == [c[0].tokens for c in ct2_out]
    for (a,), (b,) in zip(hf_out, ct2_out):
        assert a.text == b.text and a.score == pytest.approx(b.score, abs=1e-4)


def test_ctranslate2_converts_once_into_the_cache(
    tiny_model_settings: ModelSettings, tiny_adapter: Path, ct2_cache: Path
) -> None:
    first = backend(tiny_model_settings, tiny_adapter, backend="ctranslate2")
    source = resolve_source(tiny_model_settings.base, tiny_adapter)
    model_dir = ct2_cache / source.cache_key / "ct2-float32"
    assert source.cache_key.startswith("v-test-a-")
    assert (model_dir / "model.bin").is_file()
    record = json.loads((model_dir / "punchline-source.json").read_text())
    assert record["version"] == "v-test-a" and record["quantization"] == "float32"
    assert not [p for p in model_dir.parent.iterdir() if p.name.startswith(".")]  # scratch removed
    stamp = (model_dir / "model.bin").stat().st_mtime_ns
    second = backend(tiny_model_settings, tiny_adapter, backend="ctranslate2")
    assert (model_dir / "model.bin").stat().st_mtime_ns == stamp
    assert first.generate(PROMPTS, 1, GREEDY) == second.generate(PROMPTS, 1, GREEDY)


@pytest.mark.parametrize(
    "backend_name, dtype, name",
    [
        ("transformers", "bfloat16", "transformers-bfloat16"),
        ("transformers", "int8", "transformers-int8"),
        ("transformers", "auto", "transformers-int8"),
        ("ctranslate2", "auto", "ctranslate2-int8"),
    ],
)
def test_other_dtypes_generate_and_sample(
    tiny_model_settings: ModelSettings, tiny_adapter: Path, backend_name: str, dtype: str, name: str
) -> None:
    b = backend(tiny_model_settings, tiny_adapter, backend=backend_name, dtype=dtype)
    assert b.name == name
    sampled = b.generate(PROMPTS, 3, GREEDY.with_(do_sample=True, temperature=1.0, top_k=0, top_p=1.0))
    assert [len(c) for c in sampled] == [3, 3]
    for cands in sampled:
        for c in cands:
            assert c.score <= 0 and 1 <= c.tokens <= 8


def test_auto_backend_on_cpu_without_onnxruntime_is_ctranslate2(monkeypatch: pytest.MonkeyPatch) -> None:
    import model.backends as backends

    monkeypatch.setattr(backends, "_installed", lambda name: name != "onnxruntime")
    assert choose_backend(ModelSettings(backend="auto", device="cpu")) == "ctranslate2"
    assert choose_backend(ModelSettings(backend="transformers")) == "transformers"


def test_auto_falls_back_to_transformers_when_ctranslate2_fails(
    tiny_model_settings: ModelSettings, tiny_adapter: Path, tmp_path: Path
) -> None:
    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("not a directory")
    with pytest.raises(ModelLoadError, match="cannot create the model cache"):
        backend(tiny_model_settings, tiny_adapter, backend="ctranslate2", cache_dir=blocked)
    fallback = backend(tiny_model_settings, tiny_adapter, backend="auto", cache_dir=blocked)
    assert fallback.name == "transformers-float32" and fallback.version == "v-test-a"


def test_unknown_backend_is_a_model_load_error() -> None:
    with pytest.raises(ModelLoadError, match="unknown backend 'onnx'"):
        choose_backend(ModelSettings.model_construct(backend="onnx", device="cpu"))


async def test_worker_generates_and_reloads_with_real_models(
    tiny_model_settings: ModelSettings, tiny_adapter: Path, tiny_adapter_b: Path
) -> None:
    settings = Settings(
        model=tiny_model_settings.model_copy(update={"adapter": tiny_adapter, "candidates": 3}),
        worker=WorkerSettings(threads=1, stats_log_s=0),
    )
    worker = create_worker(settings)
    await worker.start()
    try:
        first = await worker.punchlines("Why did the chicken cross the road?", n=2)
        assert 1 <= len(first) <= 2 and {p.version for p in first} == {"v-test-a"}
        assert all(p.text for p in first)
        assert first == sorted(first, key=lambda p: p.score, reverse=True)
        with pytest.raises(AdapterError, match="no punchline.json"):
            await worker.reload(tiny_adapter_b.parent)  # not an adapter directory
        assert worker.versions == ("v-test-a",)
        assert await worker.reload(tiny_adapter_b) == "v-test-b"
        second = await worker.punchlines("Why did the chicken cross the road?")
        assert second[0].version == "v-test-b" and second[0].text != first[0].text
        with pytest.raises(InvalidSetup):
            await worker.punchlines("   ")
        stats = worker.stats()
        assert stats.backend == "transformers-float32" and stats.requests == 2
    finally:
        await worker.close()


# -- bad model and adapter directories ---------------------------------------------------------


def test_missing_adapter_dir(tiny_base_model: Path, tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="does not exist"):
        resolve_source(str(tiny_base_model), tmp_path / "nope")


def test_corrupt_metadata(tiny_base_model: Path, tiny_adapter: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_adapter.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "punchline.json").write_text("{not json")
    with pytest.raises(AdapterError, match="corrupt"):
        resolve_source(str(tiny_base_model), broken)


def test_adapter_without_weights(tiny_base_model: Path, tmp_path: Path) -> None:
    AdapterMetadata(version="v-empty", base_model=str(tiny_base_model)).save(tmp_path)
    with pytest.raises(AdapterError, match="no adapter weights"):
        resolve_source(str(tiny_base_model), tmp_path)


def test_corrupt_adapter_weights(
    tiny_model_settings: ModelSettings, tiny_adapter: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_adapter.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "adapter_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(AdapterError, match="cannot load the adapter"):
        backend(tiny_model_settings, broken)


def test_adapter_for_another_base_model(tiny_base_model: Path, tmp_path: Path) -> None:
    other = make_adapter(tiny_base_model, tmp_path, "v-other", seed=3, base_name="google/t5-small")
    with pytest.raises(AdapterError, match="'google/t5-small'.*configured base model is"):
        resolve_source(str(tiny_base_model), other)


def test_base_dir_without_weights(flan_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="has a config but no weights"):
        resolve_source(str(flan_dir), None)


def test_missing_base_dir(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_source(str(tmp_path / "nowhere"), None)


def test_cache_key_follows_the_adapter_weights(tiny_base_model: Path, tmp_path: Path) -> None:
    one = make_adapter(tiny_base_model, tmp_path / "one", "v-same", seed=4)
    two = make_adapter(tiny_base_model, tmp_path / "two", "v-same", seed=5)
    key_one = resolve_source(str(tiny_base_model), one).cache_key
    assert key_one.startswith("v-same-")
    assert key_one == resolve_source(str(tiny_base_model), one).cache_key
    assert key_one != resolve_source(str(tiny_base_model), two).cache_key
    assert resolve_source(str(tiny_base_model), None).cache_key.startswith("base-")
