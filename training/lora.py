"""LoRA set-up (as in the write-up: r=16, alpha=32, dropout=0.05 on q and v) and parameter counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from peft import PeftModel


@dataclass(frozen=True, slots=True)
class LoraOptions:
    """The LoRA hyper-parameters; each is a `punchline train` flag."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q", "v")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data


@dataclass(frozen=True, slots=True)
class ParamCounts:
    """Trainable and total parameters of a model (shared tensors counted once)."""

    trainable: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.trainable:,} trainable of {self.total:,} ({self.percent:.4f}%)"


def apply_lora(model: "torch.nn.Module", options: LoraOptions) -> "PeftModel":
    """Wrap a seq2seq model with LoRA adapters; only the adapters stay trainable."""
    from peft import LoraConfig, TaskType, get_peft_model

    from training.errors import TrainingError

    config = LoraConfig(
        task_type=TaskType.SEQ_2_SEQ_LM,
        r=options.r,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=list(options.target_modules),
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise TrainingError(
            f"LoRA target modules {','.join(options.target_modules)} do not fit this model: "
            f"{str(exc).splitlines()[0]}"
        ) from None


def count_parameters(model: "torch.nn.Module") -> ParamCounts:
    """Count parameters, each shared tensor once (works on the meta device)."""
    trainable = total = 0
    for param in model.parameters():  # parameters() yields a tied tensor once
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return ParamCounts(trainable=trainable, total=total)
