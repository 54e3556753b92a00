"""Fixtures for the model tests: a LoRA adapter on the tiny T5, settings pointing at them."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import ModelSettings, WorkerSettings
from tests.fakes.adapters import make_adapter


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
