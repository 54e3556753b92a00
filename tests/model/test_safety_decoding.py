"""Family chats' phrases blocked at decoding, on every backend, with the tiny T5: a word the
model writes is no longer written once it is banned, greedy, in beams and when sampling; a
banned phrase stops its last word only after the others; the ONNX Runtime loop bans exactly as
transformers does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config.settings import ModelSettings, SafetySettings, WorkerSettings
from model.backends import load_backend
from model.backends.blocking import casings
from model.generation import GenerationParams
from model.safety import blocked_phrases

pytestmark = pytest.mark.shared_data

torch = pytest.importorskip("torch")

GREEDY = GenerationParams(
    max_new_tokens=8, do_sample=False, repetition_penalty=1.0, no_repeat_ngram_size=0, num_candidates=1
)
SAMPLING = GREEDY.with_(do_sample=True, temperature=1.0, top_k=0, top_p=1.0)
PROMPTS = [
    "Answer this joke with a funny punchline: Why did the chicken cross the road?",
    "Answer this joke with a funny punchline: What do you call a fish with no eyes?",
    "Why?",
]
ENGINES = ["transformers", "ctranslate2", "onnxruntime"]
MODES = {"greedy": (GREEDY, 1), "beams": (GREEDY, 3), "sampling": (SAMPLING, 4)}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tiny_model_settings: ModelSettings, tiny_adapter: Path):  # type: ignore[no-untyped-def]
    settings = tiny_model_settings.model_copy(update={"backend": request.param})
    return load_backend(settings, WorkerSettings(threads=1), tiny_adapter)


def texts(out) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.text for cands in out for c in cands]


def words_of(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", text)


def one_piece(tokenizer, word: str) -> bool:  # type: ignore[no-untyped-def]
    """Whether the tokenizer writes `word` as one piece, in a casing a ban covers."""
    return word in casings(word.lower()) and len(tokenizer(word, add_special_tokens=False)["input_ids"]) == 1


def written_words(engine) -> list[str]:  # type: ignore[no-untyped-def]
    """Words the engine writes greedily for PROMPTS that a ban can name (one piece each)."""
    found = [w for text in texts(engine.generate(PROMPTS, 1, GREEDY)) for w in words_of(text)]
    picked = list(dict.fromkeys(w for w in found if one_piece(engine.tokenizer, w)))
    assert picked, f"the tiny model wrote no one-piece word: {found}"
    return picked[:6]


@pytest.mark.parametrize("mode", MODES, ids=MODES.keys())
def test_a_banned_word_is_never_written(engine, mode: str) -> None:  # type: ignore[no-untyped-def]
    params, n = MODES[mode]
    banned = written_words(engine)
    out = texts(engine.generate(PROMPTS, n, params.with_(blocked=tuple(w.lower() for w in banned))))
    assert len(out) == n * len(PROMPTS)
    written = {w.lower() for text in out for w in words_of(text)}
    assert not written & {w.lower() for w in banned}, (banned, out)


def test_a_banned_phrase_stops_only_its_last_word(engine) -> None:  # type: ignore[no-untyped-def]
    replies = texts(engine.generate(PROMPTS, 1, GREEDY))
    pairs = [
        (a, b)
        for text in replies
        for a, b in zip(words_of(text), words_of(text)[1:])
        if f"{a} {b}" in casings(f"{a} {b}".lower())
        and one_piece(engine.tokenizer, a)
        and one_piece(engine.tokenizer, b)
    ]
    assert pairs, replies
    first, second = pairs[0]
    phrase = f"{first} {second}".lower()
    again = texts(engine.generate(PROMPTS, 1, GREEDY.with_(blocked=(phrase,))))
    assert not any(re.search(rf"\b{first} {second}\b", t, re.IGNORECASE) for t in again), again
    # Only the two in a row are banned: the first word alone is still written.
    assert any(first.lower() in (w.lower() for w in words_of(t)) for t in again), again


@pytest.mark.parametrize("n", [1, 3], ids=["greedy", "beams"])
def test_onnxruntime_bans_exactly_as_transformers(
    tiny_model_settings: ModelSettings, tiny_adapter: Path, n: int
) -> None:
    pytest.importorskip("onnxruntime")
    hf = load_backend(tiny_model_settings, WorkerSettings(threads=1), tiny_adapter)
    ort = load_backend(
        tiny_model_settings.model_copy(update={"backend": "onnxruntime"}),
        WorkerSettings(threads=1),
        tiny_adapter,
    )
    phrases = tuple(w.lower() for w in written_words(hf)[:3]) + blocked_phrases(SafetySettings())
    params = GREEDY.with_(blocked=phrases)
    hf_out, ort_out = hf.generate(PROMPTS, n, params), ort.generate(PROMPTS, n, params)
    assert texts(hf_out) == texts(ort_out)
    assert texts(hf_out) != texts(hf.generate(PROMPTS, n, GREEDY))  # the ban changed something
    for a, b in zip(hf_out, ort_out):
        for x, y in zip(a, b):
            assert x.score == pytest.approx(y.score, abs=1e-4)


def test_the_shipped_severe_list_decodes_on_every_engine(engine) -> None:  # type: ignore[no-untyped-def]
    """The real list (hundreds of token sequences) is accepted by each engine's ban."""
    phrases = blocked_phrases(SafetySettings())
    out = engine.generate(PROMPTS, 2, SAMPLING.with_(blocked=phrases))
    assert [len(c) for c in out] == [2, 2, 2]
    for text in texts(out):
        assert not {w.lower() for w in words_of(text)} & set(phrases), text
