"""The preference losses on tensors: sequence log-probabilities, DPO and KTO.

TRL's DPO and KTO trainers take causal language models only, so the two losses live here, for
T5. Every "log π(y|x)" is a *sequence* log-probability: the sum over the punchline's label
tokens of the log-probability of each. T5 shifts `labels` right into its decoder inputs itself,
so `logits[:, t]` already predicts `labels[:, t]`: nothing is shifted here (shifting again would
score each token by the prediction of the one after it).

- DPO (Rafailov et al. 2023): `−log σ(β·[(log πθ(y_w|x) − log π_ref(y_w|x)) −
  (log πθ(y_l|x) − log π_ref(y_l|x))])`; with label smoothing ε (noisy votes) the loss is
  `−(1−ε)·log σ(βh) − ε·log σ(−βh)` (conservative DPO).
- KTO (Ethayarajh et al. 2024): reward `r = log πθ(y|x) − log π_ref(y|x)`, reference point
  `z0` = the batch's detached KL estimate (mismatched prompt/punchline pairs) clipped at zero;
  loss `λ_D·(1 − σ(β(r − z0)))` for desirable rows, `λ_U·(1 − σ(β(z0 − r)))` for undesirable.

Rewards reported alongside are β times the log-ratio (the implicit reward), detached.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from training.tokenization import LABEL_PAD

KTO_RATIO_RANGE = (1.0, 4.0 / 3.0)  # λ_D·n_D / (λ_U·n_U), as the KTO paper recommends


def sequence_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per row, the sum of the label tokens' log-probabilities (labels == -100 are ignored).

    `logits` is (batch, length, vocab) from a T5 forward with these `labels`; no shift.
    """
    mask = labels != LABEL_PAD
    safe = labels.masked_fill(~mask, 0)
    logits = logits.float()
    picked = logits.gather(-1, safe.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return (picked * mask).sum(dim=-1)


def label_tokens(labels: torch.Tensor) -> torch.Tensor:
    """Per row, the number of label tokens (at least 1, so a mean never divides by zero)."""
    return (labels != LABEL_PAD).sum(dim=-1).clamp(min=1)


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Σ w·v / Σ w (0 for an empty or weightless batch, keeping the graph)."""
    total = weights.sum()
    if values.numel() == 0 or total <= 0:
        return values.sum() * 0.0
    return (values * weights).sum() / total


@dataclass(frozen=True, slots=True)
class DpoTerms:
    losses: torch.Tensor  # per pair
    chosen_rewards: torch.Tensor  # β·(log πθ − log π_ref) of the chosen, detached
    rejected_rewards: torch.Tensor


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
    label_smoothing: float = 0.0,
) -> DpoTerms:
    """The DPO loss per pair (ln 2 when the policy equals the reference)."""
    chosen = policy_chosen - ref_chosen
    rejected = policy_rejected - ref_rejected
    h = beta * (chosen - rejected)
    losses = -(1.0 - label_smoothing) * F.logsigmoid(h) - label_smoothing * F.logsigmoid(-h)
    return DpoTerms(losses, (beta * chosen).detach(), (beta * rejected).detach())


def kto_reference_point(policy_kl: torch.Tensor, ref_kl: torch.Tensor) -> torch.Tensor:
    """z0: the batch's mean log-ratio on mismatched pairs, clipped at zero and detached."""
    if policy_kl.numel() == 0:
        return policy_kl.new_zeros(())
    return (policy_kl - ref_kl).mean().clamp(min=0).detach()


@dataclass(frozen=True, slots=True)
class KtoTerms:
    losses: torch.Tensor  # per row
    rewards: torch.Tensor  # β·(log πθ − log π_ref), detached


def kto_loss(
    policy: torch.Tensor,
    ref: torch.Tensor,
    desirable: torch.Tensor,
    z0: torch.Tensor,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> KtoTerms:
    """The KTO loss per row (0.5·λ when the policy equals the reference and z0 is 0)."""
    r = policy - ref
    good = desirable_weight * (1.0 - torch.sigmoid(beta * (r - z0)))
    bad = undesirable_weight * (1.0 - torch.sigmoid(beta * (z0 - r)))
    return KtoTerms(torch.where(desirable.bool(), good, bad), (beta * r).detach())


@dataclass(frozen=True, slots=True)
class KtoWeights:
    """λ_D and λ_U, the ratio λ_D·n_D / (λ_U·n_U) they give, and a warning when it is off."""

    desirable: float
    undesirable: float
    ratio: float
    warning: str = ""


def kto_weights(
    n_desirable: float,
    n_undesirable: float,
    desirable: float | None = None,
    undesirable: float | None = None,
) -> KtoWeights:
    """λ_D, λ_U so that λ_D·n_D / (λ_U·n_U) lies in [1, 4/3] (`n` are weighted row counts).

    Unset weights are chosen: both 1 when the data is already in range, otherwise the weight of
    the larger side is lowered to the range's nearest end (never raised: the learning rate keeps
    its meaning). Given weights are used as they are, with a warning when out of range.
    """
    low, high = KTO_RATIO_RANGE
    if n_desirable <= 0 or n_undesirable <= 0:
        side = "undesirable" if n_desirable <= 0 else "desirable"
        return KtoWeights(
            desirable or 1.0,
            undesirable or 1.0,
            float("inf") if n_undesirable <= 0 else 0.0,
            f"only {side} rows",
        )
    if desirable is None and undesirable is None:
        ratio = n_desirable / n_undesirable
        if ratio < low:
            desirable, undesirable = 1.0, ratio / low
        elif ratio > high:
            desirable, undesirable = high / ratio, 1.0
        else:
            desirable, undesirable = 1.0, 1.0
    desirable = 1.0 if desirable is None else desirable
    undesirable = 1.0 if undesirable is None else undesirable
    ratio = desirable * n_desirable / (undesirable * n_undesirable)
    warning = ""
    if not low - 1e-9 <= ratio <= high + 1e-9:
        warning = f"λ_D·n_D / (λ_U·n_U) = {ratio:.2f}, outside [1, 4/3] that KTO recommends"
    return KtoWeights(desirable, undesirable, ratio, warning)
