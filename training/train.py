"""`punchline train`: a LoRA adapter for a seq2seq base model from a joke file.

The run: prepare data (read, clean, split) -> tokenise -> base model + LoRA -> Seq2SeqTrainer
(evaluation and sample punchlines each epoch, bf16 where supported, never fp16) -> the adapter
directory: what `save_pretrained` writes, `punchline.json`, `metrics.json`, `loss.png`.
Checkpoints go to `DIR/checkpoints/`; Ctrl-C saves one and `--resume` continues from it. The
same code runs on several GPUs under `accelerate launch` or `torchrun`.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.adapter_meta import SFT, AdapterMetadata, new_version_id
from model.prompt import DEFAULT_TEMPLATE
from training.cleaning import DEFAULT_MAX_ANSWER_CHARS
from training.dataset import PreparedData, prepare_data
from training.errors import TrainingError
from training.lora import LoraOptions, ParamCounts
from training.runs import (
    Schedule,
    bf16_supported,
    is_main_process,
    prepare_output,
    trainer_arguments,
    world_size,
    write_adapter_dir,
)
from training.tokenization import MaxLengths

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

log = logging.getLogger(__name__)

RUN_FILE = "run.json"  # options and data fingerprint of the run, checked by --resume


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """Everything `punchline train` takes."""

    data: Path
    base_model: str
    output: Path
    epochs: float = 5
    batch_size: int = 8
    lr: float = 1e-3
    max_steps: int | None = None
    limit: int | None = None
    seed: int = 42
    resume: bool = False
    force: bool = False
    lora: LoraOptions = field(default_factory=LoraOptions)
    max_source_length: int | None = None
    max_target_length: int | None = None
    gradient_checkpointing: bool = False
    eval_samples: int = 4
    max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS
    template: str = DEFAULT_TEMPLATE
    progress: bool = True

    def hyperparameters(self, lengths: MaxLengths, world_size: int) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "world_size": world_size,
            "learning_rate": self.lr,
            "max_steps": self.max_steps,
            "limit": self.limit,
            "seed": self.seed,
            "lora": self.lora.as_dict(),
            "max_source_length": lengths.source,
            "max_target_length": lengths.target,
            "max_answer_chars": self.max_answer_chars,
            "gradient_checkpointing": self.gradient_checkpointing,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run will do; `--dry-run` prints it."""

    data: PreparedData
    lengths: MaxLengths
    world_size: int
    steps_per_epoch: int
    total_steps: int
    params: ParamCounts
    bf16: bool

    def describe(self, options: TrainOptions) -> str:
        read, cleaning, split = self.data.read, self.data.cleaning, self.data.split
        dropped = ", ".join(f"{n} {r}" for r, n in sorted(cleaning.dropped.items())) or "none"
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(read.skipped.items())) or "none"
        counts = split.counts()
        lines = [
            f"data: {read.path} ({read.format}): {read.rows:,} rows read, {len(read.jokes):,} jokes "
            f"(unusable: {skipped})",
            f"cleaning: {len(cleaning.kept):,} kept, dropped: {dropped}; "
            f"{cleaning.edit_notes_removed} edit notes removed",
            f"used: {self.data.used:,}" + (f" (--limit {options.limit})" if options.limit else ""),
            f"split: {counts['train']:,} train, {counts['validation']:,} validation, {counts['test']:,} test",
            f"max lengths: source {self.lengths.source}, target {self.lengths.target} tokens",
            f"batch: {options.batch_size} per device x {self.world_size} device(s); "
            f"steps per epoch: {self.steps_per_epoch:,}; total steps: {self.total_steps:,}"
            + (
                f" (--max-steps {options.max_steps})"
                if options.max_steps
                else f" ({options.epochs:g} epochs)"
            ),
            f"model: {options.base_model}, LoRA r={options.lora.r} alpha={options.lora.alpha} "
            f"dropout={options.lora.dropout} on {','.join(options.lora.target_modules)}",
            f"parameters: {self.params}",
            f"precision: {'bf16' if self.bf16 else 'float32'}",
        ]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class TrainResult:
    """The outcome of a run."""

    output: Path
    interrupted: bool
    global_step: int
    metrics: dict[str, float]
    checkpoint: Path | None = None
    version: str | None = None
    is_main: bool = True  # False on the other processes of a multi-process run


def _steps(options: TrainOptions, train_rows: int) -> tuple[int, int]:
    per_epoch = max(1, math.ceil(train_rows / (options.batch_size * world_size())))
    total = options.max_steps or math.ceil(per_epoch * options.epochs)
    return per_epoch, total


def _validate(options: TrainOptions) -> None:
    if options.batch_size < 1:
        raise TrainingError("--batch-size must be at least 1")
    if options.epochs <= 0:
        raise TrainingError("--epochs must be positive")
    if options.lr <= 0:
        raise TrainingError("--lr must be positive")
    if options.max_steps is not None and options.max_steps < 1:
        raise TrainingError("--max-steps must be at least 1")
    if options.limit is not None and options.limit < 1:
        raise TrainingError("--limit must be at least 1")
    if options.lora.r < 1 or not 0 <= options.lora.dropout < 1:
        raise TrainingError("--lora-r must be >= 1 and --lora-dropout in [0, 1)")


def plan(options: TrainOptions) -> Plan:
    """The dry run: data, lengths, steps and parameter counts, with the model on the meta device."""
    from model.base_model import build_meta_model, load_tokenizer
    from training.lora import apply_lora, count_parameters
    from training.tokenization import choose_max_lengths

    _validate(options)
    data = prepare_data(options.data, limit=options.limit, max_answer_chars=options.max_answer_chars)
    tokenizer = load_tokenizer(options.base_model)
    lengths = choose_max_lengths(
        tokenizer, data.split.train, options.template, options.max_source_length, options.max_target_length
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers deprecations inside peft
        model = apply_lora(build_meta_model(options.base_model), options.lora)
    per_epoch, total = _steps(options, len(data.split.train))
    return Plan(data, lengths, world_size(), per_epoch, total, count_parameters(model), bf16_supported())


def _check_resume(options: TrainOptions, fingerprint: str) -> None:
    path = options.output / RUN_FILE
    if not path.is_file():
        return
    recorded = json.loads(path.read_text(encoding="utf-8")).get("data_fingerprint")
    if recorded and recorded != fingerprint:
        raise TrainingError(
            f"--resume: the data differs from the run in {options.output} "
            "(other file, --limit or cleaning options); use the same data or start anew with --force"
        )


def _load_model(options: TrainOptions) -> "PeftModel":
    """The base model with its weights, LoRA applied (and gradient checkpointing if asked)."""
    import torch

    from model.base_model import load_base_model
    from training.lora import apply_lora, count_parameters

    torch.manual_seed(options.seed)
    base = load_base_model(options.base_model)
    # T5's forward takes **kwargs but averages its loss itself and ignores `num_items_in_batch`;
    # left to guess, the Trainer would then multiply the loss by the number of processes.
    base.accepts_loss_kwargs = False
    if options.gradient_checkpointing:
        base.config.use_cache = False
        # LoRA freezes the embeddings; without this the checkpointed blocks see no input that
        # requires grad and the adapters get no gradient.
        base.enable_input_require_grads()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers deprecations inside peft
        model = apply_lora(base, options.lora)
    log.info("parameters: %s", count_parameters(model))
    return model


def _training_args(
    options: TrainOptions, per_epoch: int, total: int, has_validation: bool, resuming: bool
) -> "Seq2SeqTrainingArguments":
    # Evaluate (and checkpoint) once per epoch, or at the end when --max-steps ends earlier.
    schedule = Schedule(
        epochs=options.epochs,
        max_steps=options.max_steps,
        batch_size=options.batch_size,
        lr=options.lr,
        warmup_steps=min(100, total // 20),
        eval_every=min(per_epoch, total),
        seed=options.seed,
    )
    return trainer_arguments(
        options.output,
        schedule,
        has_validation=has_validation,
        resuming=resuming,
        progress=options.progress,
        gradient_checkpointing=options.gradient_checkpointing,
    )


def _final_metrics(trainer: "Seq2SeqTrainer", train_output: Any, has_validation: bool) -> dict[str, float]:
    """Training loss and steps, and the validation loss at the last step (evaluated if needed)."""
    step = trainer.state.global_step
    metrics: dict[str, float] = {
        "train_loss": float(train_output.training_loss),
        "global_step": float(step),
        "epochs": float(trainer.state.epoch or 0.0),
        "train_runtime_s": float(train_output.metrics.get("train_runtime", 0.0)),
    }
    if has_validation:
        evals = [e for e in trainer.state.log_history if "eval_loss" in e]
        if not evals or evals[-1].get("step") != step:
            trainer.evaluate()
            evals = [e for e in trainer.state.log_history if "eval_loss" in e]
        metrics["eval_loss"] = float(evals[-1]["eval_loss"])
        metrics["eval_perplexity"] = float(math.exp(min(metrics["eval_loss"], 50.0)))
        metrics["first_eval_loss"] = float(evals[0]["eval_loss"])
    return metrics


def _write_run_file(options: TrainOptions, data: PreparedData, hyper: dict[str, Any]) -> None:
    record = {
        "base_model": options.base_model,
        "data": str(options.data),
        "data_fingerprint": data.fingerprint,
        "hyperparameters": hyper,
    }
    (options.output / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def run(options: TrainOptions, callbacks: Sequence["TrainerCallback"] = ()) -> TrainResult:
    """Train, or continue training, and write the adapter directory.

    `callbacks` are extra Trainer callbacks (monitoring, tests).
    """
    import torch
    from transformers import Seq2SeqTrainer
    from transformers.trainer_utils import get_last_checkpoint

    from model.base_model import load_tokenizer
    from training.callbacks import InterruptCallback, SampleCallback
    from training.tokenization import choose_max_lengths, encode_jokes, make_collator

    _validate(options)
    resume_from = prepare_output(options.output, resume=options.resume, force=options.force)
    data = prepare_data(options.data, limit=options.limit, max_answer_chars=options.max_answer_chars)
    if resume_from is not None:
        _check_resume(options, data.fingerprint)
    tokenizer = load_tokenizer(options.base_model)
    lengths = choose_max_lengths(
        tokenizer, data.split.train, options.template, options.max_source_length, options.max_target_length
    )
    train_features = encode_jokes(tokenizer, data.split.train, options.template, lengths)
    val_features = encode_jokes(tokenizer, data.split.validation, options.template, lengths)
    per_epoch, total = _steps(options, len(train_features))
    hyper = options.hyperparameters(lengths, world_size())
    model = _load_model(options)

    options.output.mkdir(parents=True, exist_ok=True)
    if is_main_process():
        _write_run_file(options, data, hyper)
    args = _training_args(options, per_epoch, total, bool(val_features), resume_from is not None)
    samples = SampleCallback(
        tokenizer,
        [(j.question, j.answer) for j in data.split.validation[: options.eval_samples]],
        options.template,
    )
    interrupt = InterruptCallback()
    trainer = Seq2SeqTrainer(
        model=model,
        args=args,
        data_collator=make_collator(tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None),
        train_dataset=train_features,
        eval_dataset=val_features or None,
        processing_class=tokenizer,
        callbacks=[samples, interrupt, *callbacks],
    )
    interrupt.install()
    try:
        train_output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    finally:
        interrupt.uninstall()
    step, is_main = trainer.state.global_step, trainer.is_world_process_zero()
    if interrupt.interrupted:
        last = get_last_checkpoint(args.output_dir)
        return TrainResult(options.output, True, step, {}, Path(last) if last else None, is_main=is_main)

    metrics = _final_metrics(trainer, train_output, bool(val_features))
    if not is_main:
        return TrainResult(options.output, False, step, metrics, is_main=False)
    out = options.output
    metadata = AdapterMetadata(
        version=new_version_id(),
        base_model=options.base_model,
        prompt_template=options.template,
        data_fingerprint=data.fingerprint,
        hyperparameters=hyper,
        metrics=metrics,
        method=SFT,
        data_counts=data.split.counts(),
    )
    counts = {"file": str(options.data), "read": data.read.rows, **data.split.counts()}
    title = f"LoRA on {Path(options.base_model).name}"
    write_adapter_dir(out, trainer, tokenizer, metadata, metrics, samples.samples, counts, title)
    return TrainResult(out, False, step, metrics, version=metadata.version)
