"""Fixtures shared by every test package: the injected dependencies (`clock`, `storage`,
`generator`, `settings`), defined once here, and the reference data.

Tests that need the real tokenizer or joke data read their location from
`PUNCHLINE_SHARED_DATA` and skip with a reason when it is unset (CI always sets it).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.storage import Storage
from config.settings import Settings
from tests.fakes.generator import FakeGenerator
from tests.fakes.redis_server import RedisServer

SHARED_DATA_ENV = "PUNCHLINE_SHARED_DATA"


def _shared_data_dir() -> Path | None:
    value = os.environ.get(SHARED_DATA_ENV)
    if not value:
        return None
    path = Path(value).resolve()
    if not (path / "flan-t5-large" / "tokenizer.json").is_file():
        raise RuntimeError(f"{SHARED_DATA_ENV}={value} does not hold flan-t5-large/tokenizer.json")
    return path


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when a test says so."""
    return ManualClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bot.db"


@pytest.fixture
async def storage(db_path: Path) -> AsyncIterator[Storage]:
    """A real SQLite file in the test's temporary folder."""
    opened = await Storage.open(db_path)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def generator() -> FakeGenerator:
    """A scripted generator serving version "v7", answering "To get to the other side." until
    told otherwise (`answer_with`, `fail_next`, `block`)."""
    return FakeGenerator(["To get to the other side."], version="v7")


@pytest.fixture
def settings(db_path: Path) -> Settings:
    """Default settings with the test's database (built directly: no environment, no .env)."""
    return Settings(storage={"path": db_path})


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session (tests keep apart by namespace)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker_namespace(request: pytest.FixtureRequest) -> str:
    """A namespace of the test's own, so tests sharing one Redis never see each other's keys."""
    return "t" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`, or skip when PUNCHLINE_SHARED_DATA is unset."""
    path = _shared_data_dir()
    if path is None:
        pytest.skip(f"{SHARED_DATA_ENV} is not set: the real tokenizer and joke data are needed")
    return path


@pytest.fixture(scope="session")
def flan_dir(shared_data: Path) -> Path:
    """The real flan-t5-large tokenizer and config (no weights)."""
    return shared_data / "flan-t5-large"


@pytest.fixture(scope="session")
def kaggle_csv(shared_data: Path) -> Path:
    return shared_data / "qa_jokes" / "qa_jokes_kaggle_original.csv"


@pytest.fixture(scope="session")
def tiny_base_model(flan_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny T5 with random weights and the real flan-t5 tokenizer, saved as a model directory.

    It stands in for google/flan-t5-large wherever a test needs a loadable base model.
    """
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(flan_dir)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        tie_word_embeddings=False,
        decoder_start_token_id=tokenizer.pad_token_id,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(config)
    out = tmp_path_factory.mktemp("tiny-t5")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
