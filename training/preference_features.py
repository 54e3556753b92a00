"""Preference rows as model features, with the reference model's log-probabilities in them.

Prompts and punchlines are encoded exactly as `punchline train` encodes jokes
(`training.tokenization.encode_jokes`: the adapter's prompt template, `clean_text`, the same
maximum lengths). Features per kind:
- DPO: `input_ids`, `attention_mask`, `chosen_labels`, `rejected_labels`, `weight`, `is_pair`
  (1 for a battle pair, 0 for a replayed corpus joke, whose "chosen" is the corpus punchline and
  which only feeds the NLL term), `nll_weight`;
- KTO: `input_ids`, `attention_mask`, `labels`, `kl_labels` (another row's punchline: the
  mismatched pair whose log-ratio estimates the KL reference point), `weight`, `desirable`.

`add_reference_logprobs` runs the model once over every feature before training (eval mode, so
no dropout; no gradients) and stores `ref_<labels key>` per row: the reference is the parent
adapter as it was before the first step, and never has to be kept in memory beside the policy.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from training.preferences import DpoPair, KtoRow
from training.readers import Joke
from training.tokenization import LABEL_PAD, MaxLengths, encode_jokes

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

Feature = dict[str, Any]
DPO_LABELS = ("chosen_labels", "rejected_labels")
KTO_LABELS = ("labels", "kl_labels")


def reference_key(labels_key: str) -> str:
    """Where a labels column's reference log-probability is stored: `ref_chosen_labels`, ..."""
    return f"ref_{labels_key}"


def _encode(
    tokenizer: "PreTrainedTokenizerBase",
    pairs: Sequence[tuple[str, str]],
    template: str,
    lengths: MaxLengths,
) -> list[dict[str, list[int]]]:
    jokes = [Joke(str(i), setup, punchline, None, "preference") for i, (setup, punchline) in enumerate(pairs)]
    return encode_jokes(tokenizer, jokes, template, lengths)


def encode_dpo(
    tokenizer: "PreTrainedTokenizerBase",
    pairs: Sequence[DpoPair],
    replay: Sequence[Joke],
    template: str,
    lengths: MaxLengths,
    *,
    nll_weight: float = 0.0,
    replay_weight: float = 1.0,
) -> list[Feature]:
    """One feature per pair, then one per replayed joke (NLL only)."""
    chosen = _encode(tokenizer, [(p.setup, p.chosen) for p in pairs], template, lengths)
    rejected = _encode(tokenizer, [(p.setup, p.rejected) for p in pairs], template, lengths)
    gold = _encode(tokenizer, [(j.question, j.answer) for j in replay], template, lengths)
    features: list[Feature] = []
    for pair, c, r in zip(pairs, chosen, rejected, strict=True):
        features.append(
            {
                "input_ids": c["input_ids"],
                "attention_mask": c["attention_mask"],
                "chosen_labels": c["labels"],
                "rejected_labels": r["labels"],
                "weight": pair.weight,
                "is_pair": 1.0,
                "nll_weight": nll_weight,
            }
        )
    for g in gold:
        features.append(
            {
                "input_ids": g["input_ids"],
                "attention_mask": g["attention_mask"],
                "chosen_labels": g["labels"],
                "rejected_labels": [LABEL_PAD],  # no rejected punchline: scores 0, never used
                "weight": 0.0,
                "is_pair": 0.0,
                "nll_weight": replay_weight,
            }
        )
    return features


def mismatch(rows: Sequence[KtoRow], seed: int) -> list[int]:
    """For each row, another row whose punchline it is paired with for the KL estimate: a seeded
    shuffle shifted by one, so no row meets its own punchline (unless there is only one row)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    partner = [0] * len(rows)
    for position, row in enumerate(order):
        partner[row] = order[(position + 1) % len(order)]
    return partner


def encode_kto(
    tokenizer: "PreTrainedTokenizerBase",
    rows: Sequence[KtoRow],
    template: str,
    lengths: MaxLengths,
    *,
    seed: int = 0,
) -> list[Feature]:
    """One feature per row, with the mismatched punchline for the KL reference point."""
    encoded = _encode(tokenizer, [(r.setup, r.punchline) for r in rows], template, lengths)
    partner = mismatch(rows, seed)
    return [
        {
            "input_ids": e["input_ids"],
            "attention_mask": e["attention_mask"],
            "labels": e["labels"],
            "kl_labels": encoded[partner[i]]["labels"],
            "weight": row.weight,
            "desirable": 1.0 if row.desirable else 0.0,
        }
        for i, (row, e) in enumerate(zip(rows, encoded, strict=True))
    ]


class PreferenceCollator:
    """Pads a batch: `input_ids` with the pad token, `attention_mask` with 0, every `*labels`
    column with -100 to one common length (so chosen and rejected can be stacked); numbers
    become float tensors."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def _length(self, longest: int) -> int:
        multiple = self.pad_to_multiple_of
        return longest if not multiple else -(-longest // multiple) * multiple

    def __call__(self, features: Sequence[Feature]) -> dict[str, "torch.Tensor"]:
        import torch

        keys = list(features[0])
        label_keys = [k for k in keys if k.endswith("labels") and isinstance(features[0][k], list)]
        source = self._length(max(len(f["input_ids"]) for f in features))
        target = self._length(max(len(f[k]) for f in features for k in label_keys)) if label_keys else 0
        batch: dict[str, torch.Tensor] = {}
        for key in keys:
            if key == "input_ids":
                batch[key] = _pad([f[key] for f in features], source, self.pad_token_id)
            elif key == "attention_mask":
                batch[key] = _pad([f[key] for f in features], source, 0)
            elif key in label_keys:
                batch[key] = _pad([f[key] for f in features], target, LABEL_PAD)
            else:
                batch[key] = torch.tensor([float(f[key]) for f in features], dtype=torch.float32)
        return batch


def _pad(rows: Sequence[Sequence[int]], length: int, value: int) -> "torch.Tensor":
    import torch

    return torch.tensor([list(r) + [value] * (length - len(r)) for r in rows], dtype=torch.long)


def add_reference_logprobs(
    model: "torch.nn.Module",
    features: list[Feature],
    labels_keys: Sequence[str],
    collator: PreferenceCollator,
    *,
    batch_size: int,
    bf16: bool = False,
    progress: bool = True,
) -> None:
    """Store `ref_<key>` = the model's sequence log-probability of each labels column, in place.

    Eval mode (dropout off), no gradients, the same precision as training; the model's mode is
    restored afterwards.
    """
    import torch
    from tqdm.auto import tqdm

    from training.preference_losses import sequence_logprobs

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    starts = range(0, len(features), batch_size)
    try:
        for start in tqdm(starts, desc="reference log-probs", disable=not progress, leave=False):
            chunk = features[start : start + batch_size]
            batch = {k: v.to(device) for k, v in collator(chunk).items()}
            for key in labels_keys:
                with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    logits = model(
                        input_ids=batch["input_ids"],
                        attention_mask=batch["attention_mask"],
                        labels=batch[key],
                    ).logits
                values = sequence_logprobs(logits, batch[key]).tolist()
                for feature, value in zip(chunk, values, strict=True):
                    feature[reference_key(key)] = value
    finally:
        model.train(was_training)
