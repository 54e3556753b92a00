"""`punchline align`: a new adapter from an existing one, tuned on what the chat preferred.

The run, top to bottom:
1. the feedback: read the export, build KTO rows or DPO pairs (`training.preferences`, every
   guard applied), refuse with counts when there are fewer than `min_examples`;
2. replay: corpus jokes from the TRAIN split mixed in (`training.replay`);
3. the policy: the base model with the parent adapter, trainable
   (`PeftModel.from_pretrained(..., is_trainable=True)`), dropout off so the log-ratio measures
   the update and not noise (as TRL does);
4. the reference: the same model, before the first step, scores every row once (eval mode, no
   gradients); the log-probabilities are stored with the rows (`training.preference_features`);
5. training: `PreferenceTrainer` with the DPO or KTO objective (`training.preference_trainer`),
   progress bars, evaluation on the held-out (newest) preferences, Ctrl-C stops cleanly;
6. the adapter directory, exactly as `punchline train` writes it (`training.runs`), whose
   `punchline.json` names the parent version, the method and the data counts;
7. the offline gate against the parent (`training.gate`), recorded in that `punchline.json`.

Every default below has its reason beside it.
"""

from __future__ import annotations

import gc
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.adapter_meta import DPO, KTO, AdapterMetadata, GateResult, new_version_id
from model.loading import resolve_adapter
from training.dataset import prepare_data
from training.errors import NotEnoughFeedback, TrainingError
from training.feedback import read_feedback
from training.gate import Flagger, GateOptions, HeldOut
from training.preferences import PreferenceData, PreferenceOptions, build_preferences
from training.readers import Joke
from training.replay import kto_replay_rows, replay_count, replay_jokes
from training.runs import (
    Schedule,
    bf16_supported,
    prepare_output,
    trainer_arguments,
    world_size,
    write_adapter_dir,
)
from training.tokenization import MaxLengths

if TYPE_CHECKING:
    import torch
    from peft import PeftModel
    from transformers import PreTrainedTokenizerBase, TrainerCallback

    from training.preference_trainer import Objective

log = logging.getLogger(__name__)

METHODS = (KTO, DPO)


@dataclass(frozen=True, slots=True)
class AlignOptions:
    """Everything `punchline align` takes."""

    method: str  # "kto" (rated replies) or "dpo" (battle pairs)
    adapter: Path  # the parent adapter: the policy starts here and it is the reference
    feedback: Path  # a `punchline ratings export` file
    data: Path  # the joke corpus: replay (its train split) and the gate (its test split)
    output: Path
    base_model: str
    # The parent already answers; preference tuning only nudges it. 20x below SFT's 1e-3 (TRL's
    # DPO default is 1e-6 for full fine-tuning; LoRA's small update needs a larger rate).
    lr: float = 5e-5
    # β scales the log-ratio: 0.1, the DPO and KTO papers' default, keeps the policy near the
    # reference (larger β: stay closer; smaller: move further on the same data).
    beta: float = 0.1
    # Feedback sets are small and preference losses over-fit fast (implicit rewards keep growing
    # once pairs are separated): two passes, and the gate judges the result.
    epochs: float = 2
    # Eight rows a step: a DPO row is two punchlines and a KTO row two forwards (its KL pair).
    batch_size: int = 8
    max_steps: int | None = None
    seed: int = 42
    # DPO: cDPO's label smoothing, the share of votes assumed wrong; 0 trusts every vote
    # (0.1 is a sensible value for small, noisy chats).
    label_smoothing: float = 0.0
    # DPO: weight of the chosen punchline's NLL (RPO); 0 = pure DPO. Replay rows always have one.
    nll_weight: float = 0.0
    # One corpus joke for every two feedback examples: enough to keep the answers anchored, not
    # so many that the feedback drowns (`training.replay`).
    replay_ratio: float = 0.5
    # DPO: weight of a replayed joke's token-mean NLL beside the pair loss (about ln 2 per pair).
    replay_weight: float = 1.0
    # KTO: λ_D and λ_U; None chooses them so that λ_D·n_D / (λ_U·n_U) is in [1, 4/3].
    desirable_weight: float | None = None
    undesirable_weight: float | None = None
    # Fewer than four batches of eight is noise, however carefully weighed.
    min_examples: int = 32
    preferences: PreferenceOptions = field(default_factory=PreferenceOptions)
    gate: GateOptions = field(default_factory=GateOptions)
    max_source_length: int | None = None  # default: the parent's
    max_target_length: int | None = None
    gradient_checkpointing: bool = False
    eval_samples: int = 4
    force: bool = False
    progress: bool = True

    def hyperparameters(
        self, lengths: MaxLengths, parent: AdapterMetadata, weights: tuple[float, float]
    ) -> dict[str, Any]:
        return {
            "method": self.method,
            "learning_rate": self.lr,
            "beta": self.beta,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "world_size": world_size(),
            "max_steps": self.max_steps,
            "seed": self.seed,
            "label_smoothing": self.label_smoothing,
            "nll_weight": self.nll_weight,
            "replay_ratio": self.replay_ratio,
            "replay_weight": self.replay_weight,
            "desirable_weight": weights[0],
            "undesirable_weight": weights[1],
            "min_examples": self.min_examples,
            "preferences": {
                **asdict(self.preferences),
                "exclude_raters": len(self.preferences.exclude_raters),
            },
            "lora": parent.hyperparameters.get("lora", {}),
            "max_source_length": lengths.source,
            "max_target_length": lengths.target,
            "max_answer_chars": parent.hyperparameters.get("max_answer_chars", 200),
            "gradient_checkpointing": self.gradient_checkpointing,
        }


@dataclass(frozen=True, slots=True)
class AlignPlan:
    """The data side of a run (`--dry-run` prints it): no model is loaded for it."""

    parent: AdapterMetadata
    preferences: PreferenceData
    replay: list[Joke]
    feedback_skipped: dict[str, int]

    def examples(self, method: str) -> tuple[int, int]:
        """(training, held-out) preference examples for `method`."""
        if method == KTO:
            return len(self.preferences.kto.train), len(self.preferences.kto.eval)
        return len(self.preferences.dpo.train), len(self.preferences.dpo.eval)

    def counts(self, method: str) -> dict[str, int]:
        train, held = self.examples(method)
        return {
            **self.preferences.counts(),
            "train_examples": train,
            "eval_examples": held,
            "replay": len(self.replay),
        }

    def describe(self, options: AlignOptions) -> str:
        train, held = self.examples(options.method)
        unit = "rows" if options.method == KTO else "pairs"
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(self.feedback_skipped.items())) or "none"
        return "\n".join(
            [
                f"parent: {self.parent.version} ({options.adapter})",
                self.preferences.summary.describe(),
                f"unreadable feedback rows: {skipped}",
                f"{options.method.upper()}: {train} training {unit}, {held} held out (newest), "
                f"{len(self.replay)} corpus jokes replayed (--replay-ratio {options.replay_ratio:g})",
            ]
        )


@dataclass(frozen=True, slots=True)
class AlignResult:
    """The outcome of a run."""

    output: Path
    interrupted: bool
    global_step: int
    metrics: dict[str, float]
    version: str | None = None
    gate: GateResult | None = None
    is_main: bool = True


def _validate(options: AlignOptions) -> None:
    if options.method not in METHODS:
        raise TrainingError(f"--method must be one of {', '.join(METHODS)}, got {options.method!r}")
    if options.batch_size < 1 or options.epochs <= 0 or options.lr <= 0 or options.beta <= 0:
        raise TrainingError("--batch-size must be >= 1 and --epochs, --lr, --beta positive")
    if not 0 <= options.label_smoothing < 0.5:
        raise TrainingError(
            "--label-smoothing must be in [0, 0.5): above it, votes would mean their opposite"
        )
    if options.replay_ratio < 0 or options.nll_weight < 0 or options.replay_weight < 0:
        raise TrainingError("--replay-ratio, --nll-weight and --replay-weight must be >= 0")
    if options.min_examples < 1:
        raise TrainingError("--min-examples must be at least 1")
    try:
        options.preferences.validate()
        options.gate.validate()
    except ValueError as exc:
        raise TrainingError(str(exc)) from None


def plan(options: AlignOptions) -> AlignPlan:
    """Read and build the data, check there is enough of it, pick the replay jokes.

    Raises `NotEnoughFeedback` (with counts) below `min_examples`, `AdapterError` for a bad
    parent, `DataError` for unreadable files.
    """
    _validate(options)
    parent = resolve_adapter(options.adapter, options.base_model)
    read = read_feedback(options.feedback)
    preferences = build_preferences(read.rows, options.preferences)
    plan_ = AlignPlan(parent, preferences, [], dict(read.skipped))
    train, _ = plan_.examples(options.method)
    if train < options.min_examples:
        unit = "rows from rated replies" if options.method == KTO else "pairs from battles"
        summary = preferences.summary.describe()
        raise NotEnoughFeedback(
            f"not enough feedback for {options.method.upper()}: {train} training {unit}, "
            f"--min-examples is {options.min_examples}; " + summary.replace("\n", "; "),
            method=options.method,
            have=train,
            need=options.min_examples,
            summary=summary,
        )
    corpus = prepare_data(
        options.data, max_answer_chars=int(parent.hyperparameters.get("max_answer_chars", 200))
    )
    replay = replay_jokes(corpus.split.train, replay_count(train, options.replay_ratio), options.seed)
    return AlignPlan(parent, preferences, replay, dict(read.skipped))


def _lengths(options: AlignOptions, parent: AdapterMetadata) -> MaxLengths:
    hyper = parent.hyperparameters
    return MaxLengths(
        options.max_source_length or int(hyper.get("max_source_length", 128)),
        options.max_target_length or int(hyper.get("max_target_length", 64)),
    )


def _load_policy(options: AlignOptions) -> "PeftModel":
    """The base model with the parent adapter, trainable, dropout off."""
    import torch
    from peft import PeftModel

    from model.base_model import load_base_model
    from model.types import AdapterError

    torch.manual_seed(options.seed)
    base = load_base_model(options.base_model)
    base.accepts_loss_kwargs = False  # our loss is a per-batch mean (see training.train)
    if options.gradient_checkpointing:
        base.config.use_cache = False
        base.enable_input_require_grads()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(base, str(options.adapter), is_trainable=True)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise AdapterError(f"cannot load adapter {options.adapter}: {str(exc).splitlines()[0]}") from None
    disable_dropout(model)
    return model


def disable_dropout(model: "torch.nn.Module") -> None:
    """No dropout anywhere: `nn.Dropout` modules (LoRA's included) and T5 attention's own rate,
    a float it applies functionally. The log-ratio to the reference must measure the update,
    not noise (TRL's trainers do the same)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        elif isinstance(getattr(module, "dropout", None), float):
            module.dropout = 0.0


def _features(
    options: AlignOptions,
    aplan: AlignPlan,
    tokenizer: "PreTrainedTokenizerBase",
    lengths: MaxLengths,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], tuple[float, float], Sequence[str]]:
    """Training and held-out features, the KTO weights (λ_D, λ_U) and the label columns."""
    from training.preference_features import DPO_LABELS, KTO_LABELS, encode_dpo, encode_kto
    from training.preference_losses import kto_weights

    template = aplan.parent.prompt_template
    data = aplan.preferences
    if options.method == DPO:
        train = encode_dpo(
            tokenizer,
            data.dpo.train,
            aplan.replay,
            template,
            lengths,
            nll_weight=options.nll_weight,
            replay_weight=options.replay_weight,
        )
        held = encode_dpo(tokenizer, data.dpo.eval, [], template, lengths, nll_weight=options.nll_weight)
        return train, held, (1.0, 1.0), DPO_LABELS
    rows = [*data.kto.train, *kto_replay_rows(aplan.replay)]
    weights = kto_weights(
        sum(r.weight for r in rows if r.desirable),
        sum(r.weight for r in rows if not r.desirable),
        options.desirable_weight,
        options.undesirable_weight,
    )
    if weights.warning:
        log.warning("KTO weights: %s", weights.warning)
    train = encode_kto(tokenizer, rows, template, lengths, seed=options.seed)
    held = encode_kto(tokenizer, data.kto.eval, template, lengths, seed=options.seed)
    return train, held, (weights.desirable, weights.undesirable), KTO_LABELS


def _objective(options: AlignOptions, weights: tuple[float, float]) -> "Objective":
    from training.preference_trainer import DpoObjective, KtoObjective

    if options.method == DPO:
        return DpoObjective(beta=options.beta, label_smoothing=options.label_smoothing)
    return KtoObjective(beta=options.beta, desirable_weight=weights[0], undesirable_weight=weights[1])


def _samples(options: AlignOptions, aplan: AlignPlan) -> list[tuple[str, str]]:
    """Held-out setups whose punchlines are logged at each evaluation, with the preferred answer."""
    if options.method == DPO:
        return [(p.setup, p.chosen) for p in aplan.preferences.dpo.eval[: options.eval_samples]]
    good = [r for r in aplan.preferences.kto.eval if r.desirable] or aplan.preferences.kto.eval
    return [(r.setup, r.punchline) for r in good[: options.eval_samples]]


def run(
    options: AlignOptions,
    callbacks: Sequence["TrainerCallback"] = (),
    flagger: Flagger | None = None,
) -> AlignResult:
    """Align, write the adapter directory, run the gate and record it.

    `callbacks` are extra Trainer callbacks; `flagger` family mode's filter for the gate's flag
    rate (`training.gate.family_flagger`; None skips that check). Raises `NotEnoughFeedback`, `OutputExistsError`, `AdapterError`,
    `DataError` or `TrainingError` with one line each.
    """
    import torch

    from model.base_model import load_tokenizer
    from training.callbacks import InterruptCallback, SampleCallback
    from training.gate import run_gate
    from training.preference_features import PreferenceCollator, add_reference_logprobs
    from training.preference_trainer import PreferenceTrainer

    _validate(options)
    prepare_output(options.output, resume=False, force=options.force, resumable=False)
    aplan = plan(options)
    tokenizer = load_tokenizer(options.base_model)
    lengths = _lengths(options, aplan.parent)
    train_features, eval_features, weights, label_keys = _features(options, aplan, tokenizer, lengths)
    model = _load_policy(options)
    collator = PreferenceCollator(
        tokenizer.pad_token_id, pad_to_multiple_of=8 if torch.cuda.is_available() else None
    )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    for features in (train_features, eval_features):
        add_reference_logprobs(
            model,
            features,
            label_keys,
            collator,
            batch_size=options.batch_size * 2,
            bf16=bf16_supported(),
            progress=options.progress,
        )

    per_epoch = max(1, math.ceil(len(train_features) / (options.batch_size * world_size())))
    total = options.max_steps or math.ceil(per_epoch * options.epochs)
    schedule = Schedule(
        epochs=options.epochs,
        max_steps=options.max_steps,
        batch_size=options.batch_size,
        lr=options.lr,
        warmup_steps=math.ceil(0.1 * total),  # 10%: Adam's first moments settle before full steps
        eval_every=min(per_epoch, total),
        seed=options.seed,
    )
    options.output.mkdir(parents=True, exist_ok=True)
    args = trainer_arguments(
        options.output,
        schedule,
        has_validation=bool(eval_features),
        progress=options.progress,
        gradient_checkpointing=options.gradient_checkpointing,
    )
    samples = SampleCallback(tokenizer, _samples(options, aplan), aplan.parent.prompt_template)
    interrupt = InterruptCallback()
    trainer = PreferenceTrainer(
        model=model,
        args=args,
        data_collator=collator,
        train_dataset=train_features,
        eval_dataset=eval_features or None,
        processing_class=tokenizer,
        callbacks=[samples, interrupt, *callbacks],
        objective=_objective(options, weights),
    )
    interrupt.install()
    try:
        train_output = trainer.train()
    finally:
        interrupt.uninstall()
    step, is_main = trainer.state.global_step, trainer.is_world_process_zero()
    if interrupt.interrupted:
        return AlignResult(options.output, True, step, {}, is_main=is_main)
    metrics = _final_metrics(trainer, train_output, bool(eval_features))
    if not is_main:
        return AlignResult(options.output, False, step, metrics, is_main=False)

    counts = aplan.counts(options.method)
    metadata = AdapterMetadata(
        version=new_version_id(),
        base_model=options.base_model,
        prompt_template=aplan.parent.prompt_template,
        data_fingerprint=aplan.preferences.fingerprint(),
        hyperparameters=options.hyperparameters(lengths, aplan.parent, weights),
        metrics=metrics,
        parent_version=aplan.parent.version,
        method=options.method,
        data_counts=counts,
    )
    title = f"{options.method.upper()} from {aplan.parent.version} on {Path(options.base_model).name}"
    files = {"feedback": str(options.feedback), "data": str(options.data), **counts}
    write_adapter_dir(options.output, trainer, tokenizer, metadata, metrics, samples.samples, files, title)
    del trainer, model  # the gate loads both adapters afresh, from what was written
    gc.collect()

    # The held-out data of the kind it learned from: a DPO run is judged on battle pairs, a KTO
    # run on rated replies (`punchline eval --parent --feedback` scores both).
    data = aplan.preferences
    held_out = HeldOut(pairs=data.dpo.eval) if options.method == DPO else HeldOut(rows=data.kto.eval)
    gate = run_gate(
        options.base_model,
        options.output,
        options.adapter,
        options.data,
        held_out=held_out,
        options=options.gate,
        flagger=flagger,
        require_preferences=True,
    )
    metadata = metadata.model_copy(update={"gate": gate})
    metadata.save(options.output)
    return AlignResult(options.output, False, step, metrics, version=metadata.version, gate=gate)


def _final_metrics(trainer: Any, train_output: Any, has_validation: bool) -> dict[str, float]:
    """Training loss and steps, and the held-out loss and reward accuracy at the last step."""
    metrics: dict[str, float] = {
        "train_loss": float(train_output.training_loss),
        "global_step": float(trainer.state.global_step),
        "epochs": float(trainer.state.epoch or 0.0),
        "train_runtime_s": float(train_output.metrics.get("train_runtime", 0.0)),
    }
    if has_validation:
        evals = [e for e in trainer.state.log_history if "eval_loss" in e]
        if not evals or evals[-1].get("step") != trainer.state.global_step:
            trainer.evaluate()
            evals = [e for e in trainer.state.log_history if "eval_loss" in e]
        last = evals[-1]
        metrics["eval_loss"] = float(last["eval_loss"])
        metrics["first_eval_loss"] = float(evals[0]["eval_loss"])
        for key in ("eval_rewards/accuracy", "eval_rewards/margin", "eval_kl"):
            if key in last:
                metrics[key.replace("/", "_")] = float(last[key])
    return metrics
