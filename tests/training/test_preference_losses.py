"""The preference losses and objectives on the tiny T5: sequence log-probabilities, DPO and KTO at
the reference, gradients only in LoRA, and a few dozen steps that learn synthetic preferences."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from model.prompt import DEFAULT_TEMPLATE
from tests.fakes.adapters import make_adapter
from training.preference_features import (
    DPO_LABELS,
    KTO_LABELS,
    PreferenceCollator,
    add_reference_logprobs,
    encode_dpo,
    encode_kto,
    mismatch,
)
from training.preference_losses import (
    KTO_RATIO_RANGE,
    dpo_loss,
    kto_loss,
    kto_reference_point,
    kto_weights,
    sequence_logprobs,
)
from training.preference_trainer import DpoObjective, KtoObjective, logprobs
from training.preferences import DpoPair, KtoRow
from training.readers import Joke
from training.tokenization import MaxLengths

torch = pytest.importorskip("torch")

LENGTHS = MaxLengths(32, 16)
WHEN = datetime(2026, 3, 1, tzinfo=UTC)
SETUPS = [
    "Why did the chicken cross the road?",
    "What do you call a fish with no eyes?",
    "Why was the math book sad?",
    "What do you call a bear with no teeth?",
    "Why can't a bicycle stand up?",
    "What did the ocean say to the beach?",
]


# --- pure tensor math -----------------------------------------------------------------------------


def test_dpo_at_the_reference_is_ln2_and_label_smoothing_softens_it() -> None:
    logp = torch.tensor([-3.0, -7.5, -1.0])
    terms = dpo_loss(logp, logp - 2.0, logp, logp - 2.0, beta=0.1)
    assert torch.allclose(terms.losses, torch.full((3,), math.log(2.0)))
    assert torch.all(terms.chosen_rewards == 0) and torch.all(terms.rejected_rewards == 0)
    ahead = dpo_loss(torch.tensor([0.0]), torch.tensor([-10.0]), torch.zeros(1), torch.zeros(1), beta=0.5)
    smoothed = dpo_loss(
        torch.tensor([0.0]), torch.tensor([-10.0]), torch.zeros(1), torch.zeros(1), 0.5, label_smoothing=0.2
    )
    assert ahead.losses.item() < math.log(2.0) < ahead.losses.item() + smoothed.losses.item()
    assert ahead.chosen_rewards.item() == 0.0 and ahead.rejected_rewards.item() == pytest.approx(-5.0)


def test_kto_at_the_reference_is_half_per_row_and_z0_is_clipped() -> None:
    logp = torch.tensor([-3.0, -4.0, -5.0])
    desirable = torch.tensor([True, False, True])
    terms = kto_loss(logp, logp, desirable, torch.tensor(0.0), beta=0.1)
    assert torch.allclose(terms.losses, torch.full((3,), 0.5))
    weighted = kto_loss(logp, logp, desirable, torch.tensor(0.0), 0.1, 2.0, 0.5)
    assert weighted.losses.tolist() == pytest.approx([1.0, 0.25, 1.0])
    assert kto_reference_point(torch.tensor([-5.0, -6.0]), torch.tensor([-4.0, -4.0])).item() == 0.0
    z0 = kto_reference_point(torch.tensor([-3.0, -3.0]), torch.tensor([-4.0, -5.0]))
    assert z0.item() == pytest.approx(1.5) and not z0.requires_grad


def test_kto_weights_keep_the_ratio_in_range() -> None:
    low, high = KTO_RATIO_RANGE
    balanced = kto_weights(110, 100)
    assert (balanced.desirable, balanced.undesirable, balanced.warning) == (1.0, 1.0, "")
    many_bad = kto_weights(50, 200)
    assert many_bad.desirable == 1.0 and many_bad.ratio == pytest.approx(low) and not many_bad.warning
    many_good = kto_weights(400, 100)
    assert many_good.undesirable == 1.0 and many_good.ratio == pytest.approx(high)
    given = kto_weights(400, 100, desirable=1.0, undesirable=1.0)
    assert given.ratio == 4.0 and "outside [1, 4/3]" in given.warning
    assert kto_weights(10, 0).warning == "only desirable rows"


# --- on the tiny T5 -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tiny_base_model: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_base_model)


@pytest.fixture
def policy(tiny_base_model: Path, tmp_path: Path) -> Any:
    """The tiny T5 with a trainable LoRA adapter loaded as `punchline align` loads its parent."""
    from peft import PeftModel
    from transformers import AutoModelForSeq2SeqLM

    torch.manual_seed(0)
    torch.set_num_threads(1)
    adapter = make_adapter(tiny_base_model, tmp_path / "parent", "v-parent", seed=3)
    base = AutoModelForSeq2SeqLM.from_pretrained(tiny_base_model)
    return PeftModel.from_pretrained(base, str(adapter), is_trainable=True)


def pairs() -> list[DpoPair]:
    return [
        DpoPair(s, f"Because of number {i}.", "No idea, really.", 1.0, "c", WHEN, str(i))
        for i, s in enumerate(SETUPS)
    ]


def kto_rows() -> list[KtoRow]:
    rows = []
    for i, s in enumerate(SETUPS):
        rows.append(KtoRow(s, f"Because of number {i}.", True, 1.0, "c", (), WHEN, "reply"))
        rows.append(KtoRow(s, "No idea, really.", False, 1.0, "c", (), WHEN, "reply"))
    return rows


def test_sequence_logprobs_equal_the_loss_times_the_label_tokens(policy: Any, tokenizer: Any) -> None:
    policy.eval()
    prompts = ["Why did the chicken cross the road?", "Why?"]
    answers = ["To get to the other side, of course.", "No."]
    singles = []
    with torch.no_grad():
        for prompt, answer in zip(prompts, answers, strict=True):
            batch = tokenizer([prompt], return_tensors="pt")
            labels = tokenizer(text_target=[answer], return_tensors="pt")["input_ids"]
            out = policy(**batch, labels=labels)
            singles.append(-out.loss.item() * labels.size(1))
            assert sequence_logprobs(out.logits, labels).item() == pytest.approx(singles[-1], rel=1e-5)
        padded = tokenizer(prompts, return_tensors="pt", padding=True)
        labels = tokenizer(text_target=answers, return_tensors="pt", padding=True)["input_ids"]
        labels[labels == tokenizer.pad_token_id] = -100
        both = sequence_logprobs(policy(**padded, labels=labels).logits, labels)
    assert both.tolist() == pytest.approx(singles, rel=1e-4)


def prepared_dpo(policy: Any, tokenizer: Any) -> tuple[dict[str, Any], PreferenceCollator]:
    collator = PreferenceCollator(tokenizer.pad_token_id)
    replay = [Joke("1", "Why is six afraid of seven?", "Because seven ate nine.", None, "qa_csv")]
    features = encode_dpo(tokenizer, pairs(), replay, DEFAULT_TEMPLATE, LENGTHS)
    add_reference_logprobs(policy, features, DPO_LABELS, collator, batch_size=4, progress=False)
    return collator(features), collator


def test_at_the_reference_dpo_is_ln2_and_kto_half(
    tiny_base_model: Path, tokenizer: Any, tmp_path: Path
) -> None:
    """In training mode, with flan-t5's dropout rate (0.1) in the config: `disable_dropout`
    must reach T5 attention's functional dropout too, or the log-ratio is noise."""
    from peft import PeftModel
    from transformers import AutoModelForSeq2SeqLM

    from training.align import disable_dropout

    adapter = make_adapter(tiny_base_model, tmp_path / "parent", "v-parent", seed=3)
    base = AutoModelForSeq2SeqLM.from_pretrained(tiny_base_model, dropout_rate=0.1)
    policy = PeftModel.from_pretrained(base, str(adapter), is_trainable=True)
    disable_dropout(policy)
    policy.train()
    batch, _ = prepared_dpo(policy, tokenizer)
    pairs_only = {k: v[:-1] for k, v in batch.items()}  # the last row is the replayed joke
    loss, metrics = DpoObjective(beta=0.1)(policy, pairs_only)
    assert loss.item() == pytest.approx(math.log(2.0), abs=1e-5)
    assert metrics["rewards/margin"] == pytest.approx(0.0, abs=1e-5)

    collator = PreferenceCollator(tokenizer.pad_token_id)
    features = encode_kto(tokenizer, kto_rows(), DEFAULT_TEMPLATE, LENGTHS)
    add_reference_logprobs(policy, features, KTO_LABELS, collator, batch_size=4, progress=False)
    kto_batch = collator(features)
    loss, metrics = KtoObjective(beta=0.1)(policy, kto_batch)
    assert loss.item() == pytest.approx(0.5, abs=1e-5) and metrics["kl"] == pytest.approx(0.0, abs=1e-5)


def test_the_replayed_joke_adds_its_nll(policy: Any, tokenizer: Any) -> None:
    policy.eval()
    batch, _ = prepared_dpo(policy, tokenizer)
    loss, metrics = DpoObjective(beta=0.1)(policy, batch)
    rows = batch["input_ids"].size(0)
    assert loss.item() == pytest.approx(math.log(2.0) + metrics["nll"] / rows, rel=1e-4)


def test_only_lora_parameters_get_gradients(policy: Any, tokenizer: Any) -> None:
    policy.train()
    batch, _ = prepared_dpo(policy, tokenizer)
    with torch.no_grad():  # move the policy off the reference so the loss has a slope
        for name, param in policy.named_parameters():
            if "lora_A" in name:
                param.add_(0.01 * torch.randn_like(param))
    loss, _ = DpoObjective(beta=0.1)(policy, batch)
    loss.backward()
    with_grad = {n for n, p in policy.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert with_grad and with_grad <= trainable
    assert all("lora_" in n for n in trainable)
    assert {n for n in trainable if "lora_B" in n} <= with_grad


def train_steps(
    policy: Any, batch: dict[str, Any], objective: Any, steps: int, lr: float
) -> dict[str, float]:
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=lr)
    policy.train()
    metrics: dict[str, float] = {}
    for _ in range(steps):
        loss, metrics = objective(policy, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return metrics


def test_a_few_dozen_dpo_steps_separate_every_pair(policy: Any, tokenizer: Any) -> None:
    batch, _ = prepared_dpo(policy, tokenizer)
    metrics = train_steps(policy, batch, DpoObjective(beta=0.1), steps=30, lr=1e-2)
    policy.eval()
    with torch.no_grad():
        loss, metrics = DpoObjective(beta=0.1)(policy, batch)
    assert metrics["rewards/accuracy"] == 1.0
    assert metrics["rewards/margin"] > 0 and loss.item() < math.log(2.0)


def test_a_few_dozen_kto_steps_move_rewards_to_the_right_signs(policy: Any, tokenizer: Any) -> None:
    collator = PreferenceCollator(tokenizer.pad_token_id)
    features = encode_kto(tokenizer, kto_rows(), DEFAULT_TEMPLATE, LENGTHS)
    add_reference_logprobs(policy, features, KTO_LABELS, collator, batch_size=4, progress=False)
    batch = collator(features)
    train_steps(policy, batch, KtoObjective(beta=0.1), steps=30, lr=1e-2)
    policy.eval()
    with torch.no_grad():
        rewards = logprobs(policy, batch, batch["labels"]) - batch["ref_labels"]
    desirable = batch["desirable"] > 0
    assert torch.all(rewards[desirable] > 0) and torch.all(rewards[~desirable] < 0)


def test_the_collator_pads_every_label_column_to_one_length(tokenizer: Any) -> None:
    features = encode_dpo(tokenizer, pairs()[:2], [], DEFAULT_TEMPLATE, LENGTHS)
    features[0]["rejected_labels"] = features[0]["rejected_labels"] + [5, 6, 7, 8, 9, 10, 11, 12]
    batch = PreferenceCollator(tokenizer.pad_token_id, pad_to_multiple_of=8)(features)
    assert batch["chosen_labels"].shape == batch["rejected_labels"].shape
    assert batch["chosen_labels"].shape[1] % 8 == 0 and batch["input_ids"].shape[1] % 8 == 0
    assert (batch["chosen_labels"] == -100).any() and batch["weight"].dtype == torch.float32
    assert batch["attention_mask"].sum().item() == sum(len(f["input_ids"]) for f in features)


def test_every_kto_row_meets_another_rows_punchline() -> None:
    partner = mismatch(kto_rows(), seed=5)
    assert sorted(partner) == list(range(len(partner)))
    assert all(i != j for i, j in enumerate(partner))
