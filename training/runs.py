"""What every training run shares (`punchline train` and `punchline align`): processes and
precision, the output directory, the Trainer's arguments, and the adapter directory it leaves.

An adapter directory is the same whatever made it (docs/DESIGN.md, decision 2): what
`PeftModel.save_pretrained` writes, the tokenizer, `punchline.json`, `metrics.json`, `loss.png`,
and `checkpoints/` while it trains.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.adapter_meta import AdapterMetadata
from training.errors import OutputExistsError, TrainingError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, Seq2SeqTrainer, Seq2SeqTrainingArguments

    from training.callbacks import Sample

CHECKPOINTS = "checkpoints"


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def bf16_supported() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def prepare_output(out: Path, *, resume: bool, force: bool, resumable: bool = True) -> Path | None:
    """Check the output directory; return the checkpoint to resume from, if any.

    Raises `OutputExistsError` for a non-empty directory without `force` (or `resume`), and
    `TrainingError` when `resume` finds no checkpoint.
    """
    from transformers.trainer_utils import get_last_checkpoint

    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output {out} exists and is not a directory")
    checkpoints = out / CHECKPOINTS
    if resume:
        last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
        if last is None:
            raise TrainingError(f"nothing to resume in {out}: it has no checkpoint; start without --resume")
        return Path(last)
    if out.is_dir() and any(out.iterdir()) and is_main_process():
        if not force:
            also = ", --resume to continue its run" if resumable else ""
            raise OutputExistsError(
                f"output directory {out} already exists and is not empty: "
                f"use --force to overwrite it{also}, or another --output"
            )
        shutil.rmtree(checkpoints, ignore_errors=True)  # stale checkpoints must not be resumed
    return None


def _version_specific_args(checkpointing: bool) -> dict[str, Any]:
    """Arguments whose names changed in transformers 5 (older releases use the old names)."""
    from transformers import Seq2SeqTrainingArguments

    names = {f.name for f in fields(Seq2SeqTrainingArguments)}
    prefix = "activation" if "activation_checkpointing" in names else "gradient"
    extra: dict[str, Any] = {
        f"{prefix}_checkpointing": checkpointing,
        f"{prefix}_checkpointing_kwargs": {"use_reentrant": False} if checkpointing else None,
    }
    # Length-grouped batches: less padding per batch.
    if "train_sampling_strategy" in names:
        extra["train_sampling_strategy"] = "group_by_length"
    else:
        extra["group_by_length"] = True
    return extra


@dataclass(frozen=True, slots=True)
class Schedule:
    """How long a run trains, how fast, and how often it evaluates and checkpoints."""

    epochs: float
    max_steps: int | None
    batch_size: int
    lr: float
    warmup_steps: int
    eval_every: int
    seed: int


def trainer_arguments(
    output: Path,
    schedule: Schedule,
    *,
    has_validation: bool,
    resuming: bool = False,
    progress: bool = True,
    gradient_checkpointing: bool = False,
) -> "Seq2SeqTrainingArguments":
    """The Seq2SeqTrainingArguments both runs use: linear decay after warm-up, evaluation and a
    checkpoint every `eval_every` steps, bf16 where supported (never fp16), CPU-safe DDP."""
    import torch
    from transformers import Seq2SeqTrainingArguments

    use_cuda = torch.cuda.is_available()
    return Seq2SeqTrainingArguments(
        output_dir=str(output / CHECKPOINTS),
        num_train_epochs=schedule.epochs,
        max_steps=schedule.max_steps or -1,
        per_device_train_batch_size=schedule.batch_size,
        per_device_eval_batch_size=schedule.batch_size * 2,
        learning_rate=schedule.lr,
        warmup_steps=schedule.warmup_steps,
        lr_scheduler_type="linear",
        eval_strategy="steps" if has_validation else "no",
        eval_steps=schedule.eval_every,
        eval_on_start=has_validation and not resuming,  # the loss curve's starting point
        save_strategy="steps",
        save_steps=schedule.eval_every,
        save_total_limit=1,
        logging_steps=max(1, min(50, schedule.eval_every // 5)),
        logging_first_step=True,
        prediction_loss_only=True,  # the loss is all we need; keeping logits costs gigabytes
        bf16=bf16_supported(),  # never fp16: T5 overflows to NaN
        remove_unused_columns=False,
        label_names=["labels"],
        seed=schedule.seed,
        report_to="none",
        dataloader_pin_memory=use_cuda,
        ddp_find_unused_parameters=False,
        # Without a GPU, several processes (torchrun/accelerate) still train as one, over gloo.
        use_cpu=not use_cuda,
        ddp_backend=None if use_cuda or world_size() == 1 else "gloo",
        disable_tqdm=not progress,
        **_version_specific_args(gradient_checkpointing),
    )


def write_adapter_dir(
    out: Path,
    trainer: "Seq2SeqTrainer",
    tokenizer: "PreTrainedTokenizerBase",
    metadata: AdapterMetadata,
    metrics: dict[str, float],
    samples: "list[Sample]",
    counts: dict[str, Any],
    title: str,
) -> None:
    """Save the adapter, the tokenizer, `punchline.json`, `metrics.json` and `loss.png`."""
    from training.artifacts import plot_loss, write_metrics

    trainer.model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    metadata.save(out)
    write_metrics(out, metrics, trainer.state.log_history, samples, counts)
    plot_loss(out, trainer.state.log_history, title)
