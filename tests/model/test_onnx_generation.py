"""Generation on the ONNX Runtime backend: every option the other backends have, checked
against transformers on the tiny T5 (float32 graphs, where both must agree exactly)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import ModelSettings, WorkerSettings
from model.backends import load_backend
from model.generation import GenerationParams

pytestmark = pytest.mark.shared_data

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

GREEDY = GenerationParams(
    max_new_tokens=8, do_sample=False, repetition_penalty=1.0, no_repeat_ngram_size=0, num_candidates=1
)
SAMPLING = GREEDY.with_(do_sample=True, temperature=1.0, top_k=0, top_p=1.0)
PROMPTS = [
    "Answer this joke with a funny punchline: Why did the chicken cross the road?",
    "Why?",  # much shorter: the batch is padded
    "Answer this joke with a funny punchline: What do you call a fish with no eyes at all, ever?",
]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def load(settings: ModelSettings, adapter: Path | None, **changes: object):
    return load_backend(settings.model_copy(update=changes), WorkerSettings(threads=1), adapter)


@pytest.fixture
def pair(tiny_model_settings: ModelSettings, tiny_adapter: Path):
    """(transformers float32, onnxruntime float32) on the same adapter."""
    return load(tiny_model_settings, tiny_adapter), load(
        tiny_model_settings, tiny_adapter, backend="onnxruntime"
    )


def texts(out) -> list[list[str]]:
    return [[c.text for c in cands] for cands in out]


def assert_same(a, b) -> None:
    assert texts(a) == texts(b)
    for a_list, b_list in zip(a, b):
        for x, y in zip(a_list, b_list):
            assert x.tokens == y.tokens
            assert x.score == pytest.approx(y.score, abs=1e-4)


@pytest.mark.parametrize(
    "params",
    [
        GREEDY,
        GREEDY.with_(repetition_penalty=1.5),
        GREEDY.with_(no_repeat_ngram_size=2),
        GREEDY.with_(repetition_penalty=1.3, no_repeat_ngram_size=3),
        GREEDY.with_(max_new_tokens=3),
        GREEDY.with_(min_new_tokens=6, max_new_tokens=6),
    ],
    ids=["greedy", "repetition", "no-repeat", "both", "max-3", "min-6"],
)
@pytest.mark.parametrize("n", [1, 3], ids=["one", "beams"])
def test_greedy_and_beams_equal_transformers(pair, params: GenerationParams, n: int) -> None:
    hf, ort = pair
    assert ort.name == "onnxruntime-float32"
    hf_out, ort_out = hf.generate(PROMPTS, n, params), ort.generate(PROMPTS, n, params)
    assert [len(c) for c in ort_out] == [n] * len(PROMPTS)
    assert_same(hf_out, ort_out)


def test_replies_that_end_early_score_like_transformers(tiny_base_model: Path, tmp_path: Path) -> None:
    """The mean log-probability counts the end token, and ended rows leave the batch."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_base_model)
    with torch.no_grad():
        model.lm_head.weight[1] *= 2.0  # make </s> likely after a few tokens
    base = tmp_path / "tiny-t5-eos"
    model.save_pretrained(base)
    AutoTokenizer.from_pretrained(tiny_base_model).save_pretrained(base)
    settings = ModelSettings(base=str(base), device="cpu", dtype="float32", cache_dir=tmp_path / "cache")
    hf, ort = load(settings, None, backend="transformers"), load(settings, None, backend="onnxruntime")
    prompts = [f"Answer this joke with a funny punchline: setup number {i} about cats?" for i in range(8)]
    params = GREEDY.with_(max_new_tokens=12)
    hf_out, ort_out = hf.generate(prompts, 1, params), ort.generate(prompts, 1, params)
    lengths = [c[0].tokens for c in ort_out]
    assert any(1 < n < 12 for n in lengths) and len(set(lengths)) > 1, lengths
    assert_same(hf_out, ort_out)
    assert_same(hf.generate(prompts, 3, params), ort.generate(prompts, 3, params))  # beams that end


def test_a_batch_equals_its_prompts_one_by_one(pair) -> None:
    _, ort = pair
    batched = ort.generate(PROMPTS, 1, GREEDY)
    alone = [ort.generate([p], 1, GREEDY)[0] for p in PROMPTS]
    assert_same(batched, alone)


def test_int8_greedy_mostly_agrees_with_float32(
    tiny_model_settings: ModelSettings, tiny_adapter: Path
) -> None:
    fp32 = load(tiny_model_settings, tiny_adapter, backend="onnxruntime")
    int8 = load(tiny_model_settings, tiny_adapter, backend="onnxruntime", dtype="int8")
    assert int8.name == "onnxruntime-int8"
    a, b = fp32.generate(PROMPTS, 1, GREEDY), int8.generate(PROMPTS, 1, GREEDY)
    first_tokens = [x[0].text.split()[:1] == y[0].text.split()[:1] for x, y in zip(a, b)]
    assert sum(first_tokens) >= 2
    for (x,), (y,) in zip(a, b):
        assert y.score == pytest.approx(x.score, abs=0.5)


def test_sampling_gives_n_candidates_that_vary(pair) -> None:
    _, ort = pair
    torch.manual_seed(0)
    out = ort.generate(PROMPTS, 5, SAMPLING)
    assert [len(c) for c in out] == [5, 5, 5]
    assert all(len({c.text for c in cands}) > 1 for cands in out)
    for cands in out:
        for c in cands:
            assert c.score <= 0 and 1 <= c.tokens <= 8


@pytest.mark.parametrize(
    "sampling",
    [
        SAMPLING.with_(top_k=1),
        SAMPLING.with_(top_p=1e-6),
        SAMPLING.with_(temperature=1e-4),
    ],
    ids=["top-k 1", "top-p tiny", "temperature tiny"],
)
def test_sampling_options_that_leave_one_choice_are_greedy(pair, sampling: GenerationParams) -> None:
    """Each option is applied: with one token left to choose, sampling is greedy decoding,
    and scores stay the raw log-probabilities (before temperature) that greedy reports."""
    _, ort = pair
    greedy = ort.generate(PROMPTS, 1, GREEDY)
    sampled = ort.generate(PROMPTS, 4, sampling)
    for (g,), cands in zip(greedy, sampled):
        for c in cands:
            assert (c.text, c.tokens) == (g.text, g.tokens)
            assert c.score == pytest.approx(g.score, abs=1e-4)


def test_top_k_limits_the_first_token(pair) -> None:
    """With top-k 2 every first token is one of the two likeliest."""
    hf, ort = pair
    beams = hf.generate(PROMPTS[:1], 2, GREEDY.with_(max_new_tokens=1))
    likely = {c.text for c in beams[0]}
    torch.manual_seed(1)
    sampled = ort.generate(PROMPTS[:1], 16, SAMPLING.with_(top_k=2, max_new_tokens=1))
    assert {c.text for c in sampled[0]} <= likely


def test_sampled_repetition_controls_hold(pair) -> None:
    _, ort = pair
    torch.manual_seed(2)
    out = ort.generate(PROMPTS, 4, SAMPLING.with_(no_repeat_ngram_size=1, max_new_tokens=8))
    for cands in out:
        for c in cands:
            ids = ort.tokenizer(c.text, add_special_tokens=False)["input_ids"]
            assert len(ids) == len(set(ids)) or len(c.text.split()) == len(set(c.text.split()))


def test_min_and_max_new_tokens_hold_when_sampling(pair) -> None:
    _, ort = pair
    torch.manual_seed(3)
    out = ort.generate(PROMPTS, 3, SAMPLING.with_(min_new_tokens=5, max_new_tokens=5))
    assert {c.tokens for cands in out for c in cands} == {5}


def test_teacher_forced_scores_equal_transformers_loss(pair) -> None:
    hf, ort = pair
    targets = ["to get to the other side", "a fsh", "nothing"]
    enc = hf.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    labels = hf.tokenizer(targets, return_tensors="pt", padding=True)["input_ids"]
    labels[labels == hf.tokenizer.pad_token_id] = -100
    with torch.no_grad():
        logits = hf.model(**enc, labels=labels).logits
    logp = torch.log_softmax(logits, dim=-1)
    expected = [
        float(
            logp[i, : int((labels[i] != -100).sum())].gather(1, labels[i, labels[i] != -100][:, None]).sum()
        )
        for i in range(len(targets))
    ]
    got = ort.score(PROMPTS, targets)
    assert [t for _, t in got] == [int((row != -100).sum()) for row in labels]
    assert [s for s, _ in got] == pytest.approx(expected, abs=1e-3)


# -- the sampling arithmetic, against transformers' own warpers ---------------------------------


@pytest.mark.parametrize("top_k, top_p", [(50, 0.95), (5, 1.0), (0, 0.9), (0, 1.0), (3, 0.5), (100000, 0.8)])
@pytest.mark.parametrize("temperature_scale", [1.0, 30.0])  # random weights: logits with std 30
def test_top_k_top_p_is_transformers_distribution(top_k: int, top_p: float, temperature_scale: float) -> None:
    from transformers import TopKLogitsWarper, TopPLogitsWarper

    from model.backends.onnx_decoding import filter_top_k_top_p

    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(4, 1000, generator=generator) * temperature_scale
    scores[0, :10] = float("-inf")  # banned tokens (no-repeat n-grams) stay banned
    expected = scores.clone()
    if top_k:
        expected = TopKLogitsWarper(top_k)(None, expected)
    if top_p < 1.0:
        expected = TopPLogitsWarper(top_p)(None, expected)
    expected = torch.softmax(expected, dim=-1)
    ids, probs = filter_top_k_top_p(scores.clone(), top_k, top_p)
    got = torch.zeros_like(expected)
    if ids is None:
        got = probs
    else:
        got.scatter_(1, ids, probs)
    assert torch.allclose(got, expected, atol=1e-6)
    assert bool((got[0, :10] == 0).all())


def test_drawing_never_picks_a_token_of_probability_zero() -> None:
    from model.backends.onnx_decoding import _draw

    probs = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]).repeat(500, 1)
    ids = torch.tensor([[7, 8, 9], [4, 5, 6]]).repeat(500, 1)
    picked = _draw(ids, probs, torch.Generator().manual_seed(0))
    assert set(picked[0::2].tolist()) == {8} and set(picked[1::2].tolist()) == {4, 6}
    share = (picked[1::2] == 4).float().mean().item()
    assert 0.4 < share < 0.6  # drawn in proportion


def test_log_normaliser_equals_logsumexp() -> None:
    from model.backends.onnx_decoding import log_normaliser

    x = torch.randn(3, 500) * 40
    x[1, :100] = float("-inf")
    assert torch.allclose(log_normaliser(x.clone()), torch.logsumexp(x, dim=-1), atol=1e-5)
