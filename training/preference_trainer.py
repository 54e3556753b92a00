"""The DPO and KTO objectives on a batch, and the Seq2SeqTrainer that optimises them.

`PreferenceTrainer` is a `Seq2SeqTrainer` whose `compute_loss` is an injected `Objective`
(`DpoObjective` or `KtoObjective`); everything else (optimiser, schedule, checkpoints,
evaluation, progress bars, logging, several GPUs) is the Trainer's. The objectives read the
reference log-probabilities stored in the batch (`training.preference_features`), so no second
model is kept. Metrics (rewards, accuracy, KL) are averaged over the logging interval and
logged beside the loss, `eval_` prefixed during evaluation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import Seq2SeqTrainer

from training.preference_features import reference_key
from training.preference_losses import (
    dpo_loss,
    kto_loss,
    kto_reference_point,
    label_tokens,
    sequence_logprobs,
    weighted_mean,
)

Batch = dict[str, torch.Tensor]


class Objective(Protocol):
    """A preference loss on one batch, with the numbers worth logging."""

    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]: ...


def logprobs(model: torch.nn.Module, batch: Batch, labels: torch.Tensor) -> torch.Tensor:
    """Sequence log-probabilities of `labels` given the batch's prompts (T5 shifts the labels)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).logits
    return sequence_logprobs(logits, labels)


def _mean(values: torch.Tensor) -> float:
    return float(values.float().mean()) if values.numel() else float("nan")


@dataclass(frozen=True, slots=True)
class DpoObjective:
    """DPO over the batch's pairs, plus the NLL of the chosen punchlines where asked (the replayed
    corpus jokes always, the pairs with `--nll-weight`)."""

    beta: float
    label_smoothing: float = 0.0

    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        n = batch["input_ids"].size(0)
        # Chosen and rejected in one forward: the prompts twice, the two label columns stacked.
        both = {
            "input_ids": batch["input_ids"].repeat(2, 1),
            "attention_mask": batch["attention_mask"].repeat(2, 1),
        }
        labels = torch.cat([batch["chosen_labels"], batch["rejected_labels"]])
        logp = logprobs(model, both, labels)
        chosen, rejected = logp[:n], logp[n:]
        pair = batch["is_pair"] > 0
        terms = dpo_loss(
            chosen[pair],
            rejected[pair],
            batch[reference_key("chosen_labels")][pair],
            batch[reference_key("rejected_labels")][pair],
            self.beta,
            self.label_smoothing,
        )
        nll = -chosen / label_tokens(batch["chosen_labels"])  # per token, so length does not dominate
        loss = weighted_mean(terms.losses, batch["weight"][pair]) + (batch["nll_weight"] * nll).mean()
        margin = terms.chosen_rewards - terms.rejected_rewards
        metrics = {
            "rewards/chosen": _mean(terms.chosen_rewards),
            "rewards/rejected": _mean(terms.rejected_rewards),
            "rewards/accuracy": _mean((margin > 0).float()),
            "rewards/margin": _mean(margin),
            "nll": _mean(nll.detach()[batch["nll_weight"] > 0]),
        }
        return loss, metrics


@dataclass(frozen=True, slots=True)
class KtoObjective:
    """KTO over the batch's rows, with the batch's own KL reference point."""

    beta: float
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0

    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        policy = logprobs(model, batch, batch["labels"])
        with torch.no_grad():  # z0 is detached anyway: no graph for the mismatched pairs
            policy_kl = logprobs(model, batch, batch["kl_labels"])
        z0 = kto_reference_point(policy_kl, batch[reference_key("kl_labels")])
        desirable = batch["desirable"] > 0
        terms = kto_loss(
            policy,
            batch[reference_key("labels")],
            desirable,
            z0,
            self.beta,
            self.desirable_weight,
            self.undesirable_weight,
        )
        loss = weighted_mean(terms.losses, batch["weight"])
        metrics = {
            "kl": float(z0),
            "rewards/desirable": _mean(terms.rewards[desirable]),
            "rewards/undesirable": _mean(terms.rewards[~desirable]),
        }
        return loss, metrics


class PreferenceTrainer(Seq2SeqTrainer):
    """A Seq2SeqTrainer optimising an injected preference `Objective`."""

    # The objective returns a per-batch mean: the Trainer divides it for gradient accumulation.
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, objective: Objective, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.objective = objective
        self._metrics: dict[str, dict[str, list[float]]] = {
            "train": defaultdict(list),
            "eval": defaultdict(list),
        }

    def _store(self, metrics: dict[str, float], split: str) -> None:
        for key, value in metrics.items():
            if value == value:  # NaN: the batch had none of that kind
                self._metrics[split][key].append(value)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: Batch,
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        loss, metrics = self.objective(model, inputs)
        self._store(metrics, "train")
        return (loss, metrics) if return_outputs else loss

    def prediction_step(
        self,
        model: torch.nn.Module,
        inputs: Batch,
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor, None, None]:
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss, metrics = self.objective(model, inputs)
        self._store(metrics, "eval")
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        split = "eval" if any(key.startswith("eval_") for key in logs) else "train"
        prefix = "eval_" if split == "eval" else ""
        for key, values in self._metrics[split].items():
            if values:
                logs[f"{prefix}{key}"] = sum(values) / len(values)
        self._metrics[split].clear()
        super().log(logs, start_time)
