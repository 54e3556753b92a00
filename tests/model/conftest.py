"""Fixtures for the model tests: a LoRA adapter on the tiny T5, settings pointing at them."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import ModelSettings, WorkerSettings
from model.adapter_meta import AdapterMetadata


def make_adapter(base_dir: Path, out: Path, version: str, seed: int, base_name: str | None = None) -> Path:
    """Wrap the tiny T5 in LoRA (r=4 on q and v), perturb B so outputs change, save it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSeq2SeqLM

    torch.manual_seed(seed)
    base = AutoModelForSeq2SeqLM.from_pretrained(base_dir)
    model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, target_modules=["q", "v"], task_type="SEQ_2_SEQ_LM")
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)
    model.save_pretrained(out)
    AdapterMetadata(version=version, base_model=base_name or str(base_dir)).save(out)
    return out


@pytest.fixture(scope="session")
def tiny_adapter(tiny_base_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An adapter directory (PeftModel.save_pretrained + punchline.json) for the tiny T5."""
    return make_adapter(tiny_base_model, tmp_path_factory.mktemp("adapter-a"), "v-test-a", seed=1)


@pytest.fixture(scope="session")
def tiny_adapter_b(tiny_base_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second adapter version for reload tests."""
    return make_adapter(tiny_base_model, tmp_path_factory.mktemp("adapter-b"), "v-test-b", seed=2)


@pytest.fixture(scope="session")
def ct2_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One conversion cache for the whole session: each tiny model converts once."""
    return tmp_path_factory.mktemp("ct2-cache")


@pytest.fixture
def tiny_model_settings(tiny_base_model: Path, ct2_cache: Path) -> ModelSettings:
    """Deterministic generation on the tiny T5, short replies, one thread."""
    return ModelSettings(
        base=str(tiny_base_model),
        backend="transformers",
        device="cpu",
        dtype="float32",
        cache_dir=ct2_cache,
        max_new_tokens=8,
        do_sample=False,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        candidates=1,
    )


@pytest.fixture
def one_thread() -> WorkerSettings:
    return WorkerSettings(threads=1, stats_log_s=0)
