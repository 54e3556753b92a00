"""The offline gate: is a candidate adapter at least as good as its parent before it may serve?

Both adapters are loaded onto one base model (two named LoRA adapters, switched per check) and
scored on the corpus's test split and the held-out (newest) preference data:

| check | passes when |
| --- | --- |
| gold loss | the candidate's loss on the test split's original punchlines is at most `max_loss_increase` (3%) above the parent's: preference tuning may trade a little corpus likelihood, not more |
| echo rate, empty rate | the candidate's greedy replies echo the setup / say nothing no more often |
| distinct-1, distinct-2 | its replies are no less varied |
| flag rate | family mode's filter (`family_flagger`, the configured `model.safety` filter) flags its replies no more often; skipped when no `flagger` is passed |
| preference accuracy | its implicit reward ranks held-out human judgements right more often than the parent's: above 0.5 (battle pairs and rated replies each a check of their own) |

The preference accuracy needs care to mean something. The implicit reward of a model is
`log π(y|x) − log π_ref(y|x)`; with the parent as the reference, the parent's own reward is 0
for every punchline, so it ranks nothing and its accuracy is 0.5 by definition (ties count
half). The candidate's reward `log π_cand − log π_parent` is the change alignment made; its
accuracy is the share of held-out judgements that change agrees with: each battle pair counts
right when the chosen punchline's reward is above the rejected one's, each KTO row when its
reward's sign matches its verdict (weights as in training). Above 0.5 means the update moved
toward what people preferred on data it never saw; the newest data, because the split is by
time.

`run_gate` returns `model.adapter_meta.GateResult`: passed, and every check with both values,
its limit and the reason it failed. `punchline align` stores it in the candidate's
`punchline.json`; `punchline eval --parent` prints it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from config.settings import SafetySettings
from model.adapter_meta import AdapterMetadata, GateCheck, GateResult
from model.loading import resolve_adapter
from model.safety import build_filter
from model.types import AdapterError
from training.evaluate import ReplyStats, load_test_split, reply_stats, token_loss
from training.preferences import DpoPair, KtoRow
from training.readers import Joke
from training.tokenization import MaxLengths

if TYPE_CHECKING:
    import torch
    from peft import PeftModel
    from transformers import PreTrainedTokenizerBase

PARENT, CANDIDATE = "parent", "candidate"  # the two adapters' names on the shared base model


class Flagger(Protocol):
    """A family-mode filter: whether a punchline is inappropriate (`family_flagger`)."""

    def __call__(self, punchline: str) -> bool: ...


def family_flagger(settings: SafetySettings) -> Flagger:
    """Family mode's configured filter as the gate's flagger: the same rule the bot applies in
    family chats. Raises `FilterError` for an unusable word list."""
    content_filter = build_filter(settings)
    return lambda punchline: content_filter.check(punchline).flagged


@dataclass(frozen=True, slots=True)
class GateOptions:
    """The gate's limits; each is a flag of `punchline align` and `punchline eval --parent`."""

    # Preference tuning may cost a little likelihood of the corpus punchlines; 3% is about the
    # noise between two SFT runs with different seeds, so more than that is real forgetting.
    max_loss_increase: float = 0.03
    # Echo/empty rates "no worse", distinct-n "no lower": exact by default; a tolerance (0.01 =
    # one point) allows for sampling noise on a small --limit.
    tolerance: float = 0.0
    # Test jokes scored (greedy replies from both adapters): 200 shows a 3% loss change and takes
    # about a minute for flan-t5-large on a GPU.
    limit: int | None = 200
    batch_size: int = 16
    max_new_tokens: int = 32

    def validate(self) -> None:
        if self.max_loss_increase < 0 or self.tolerance < 0:
            raise ValueError("--max-loss-increase and --gate-tolerance must be >= 0")


@dataclass(frozen=True, slots=True)
class HeldOut:
    """Held-out preference data: KTO rows and battle pairs the candidate never trained on."""

    rows: Sequence[KtoRow] = ()
    pairs: Sequence[DpoPair] = ()

    def __bool__(self) -> bool:
        return bool(self.rows or self.pairs)


@dataclass(slots=True)
class Scores:
    """One adapter's numbers on the test split."""

    loss: float
    replies: ReplyStats
    flag_rate: float | None = None
    punchlines: list[str] = field(default_factory=list)


def run_gate(
    base_model: str,
    candidate_dir: Path,
    parent_dir: Path,
    data: Path,
    *,
    held_out: HeldOut | None = None,
    options: GateOptions | None = None,
    flagger: Flagger | None = None,
    require_preferences: bool = False,
) -> GateResult:
    """Compare the candidate adapter with its parent; see the module docstring for the checks.

    `require_preferences`: fail (rather than skip) the preference check without held-out data,
    as `punchline align` does. Raises `AdapterError` when either adapter is missing, corrupt or
    made for another base model, and `DataError` when `data` has no test split.
    """
    options = options or GateOptions()
    options.validate()
    candidate_meta = resolve_adapter(candidate_dir, base_model)
    parent_meta = resolve_adapter(parent_dir, base_model)
    test, lengths = load_test_split(data, candidate_meta.hyperparameters, options.limit)
    model, tokenizer = _load_pair(base_model, candidate_dir, parent_dir)
    scores = {
        name: _score(model, tokenizer, name, meta, test, lengths, options, flagger)
        for name, meta in ((PARENT, parent_meta), (CANDIDATE, candidate_meta))
    }
    checks = _surface_checks(scores[CANDIDATE], scores[PARENT], options, flagger is not None)
    checks += _preference_checks(
        model,
        tokenizer,
        candidate_meta.prompt_template,
        held_out or HeldOut(),
        lengths,
        options,
        require_preferences,
    )
    return GateResult(
        passed=not any(c.passed is False for c in checks),
        parent_version=parent_meta.version,
        checks=checks,
    )


PAIR_ACCURACY = "preference accuracy (battle pairs)"
ROW_ACCURACY = "preference accuracy (rated replies)"


def _preference_checks(
    model: "PeftModel",
    tokenizer: "PreTrainedTokenizerBase",
    template: str,
    held_out: HeldOut,
    lengths: MaxLengths,
    options: GateOptions,
    required: bool,
) -> list[GateCheck]:
    """One check per kind of held-out judgement present: the two kinds are measured apart (a
    pair's weight and a row's mean different things), and each must beat the parent's 0.5."""
    checks = []
    for name, part in (
        (PAIR_ACCURACY, HeldOut(pairs=held_out.pairs)),
        (ROW_ACCURACY, HeldOut(rows=held_out.rows)),
    ):
        if not part:
            continue
        accuracy = preference_accuracy(model, tokenizer, template, part, lengths, options)
        checks.append(
            GateCheck(
                name=name,
                passed=accuracy > 0.5,
                candidate=accuracy,
                parent=0.5,
                limit=0.5,
                reason="" if accuracy > 0.5 else "ranks held-out judgements no better than the parent",
            )
        )
    if not checks:
        checks.append(
            GateCheck(
                name="preference accuracy",
                passed=False if required else None,
                reason="no held-out preference data",
            )
        )
    return checks


def _load_pair(
    base_model: str, candidate_dir: Path, parent_dir: Path
) -> tuple["PeftModel", "PreTrainedTokenizerBase"]:
    """One base model with both adapters loaded under their names, in eval mode."""
    from peft import PeftModel

    from model.base_model import load_base_model, load_tokenizer
    from training.generation import inference_dtype, pick_device

    device = pick_device()
    tokenizer = load_tokenizer(base_model)
    base = load_base_model(base_model, dtype=inference_dtype(device))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # transformers deprecations inside peft
            model = PeftModel.from_pretrained(base, str(parent_dir), adapter_name=PARENT)
            model.load_adapter(str(candidate_dir), adapter_name=CANDIDATE)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise AdapterError(f"cannot load the adapters for the gate: {str(exc).splitlines()[0]}") from None
    model.to(device).eval()
    return model, tokenizer


def _score(
    model: "PeftModel",
    tokenizer: "PreTrainedTokenizerBase",
    name: str,
    meta: AdapterMetadata,
    test: Sequence[Joke],
    lengths: MaxLengths,
    options: GateOptions,
    flagger: Flagger | None,
) -> Scores:
    from training.generation import generate_greedy

    model.set_adapter(name)
    template = meta.prompt_template
    setups = [j.question for j in test]
    loss = token_loss(model, tokenizer, template, test, lengths, options.batch_size)
    replies = generate_greedy(
        model,
        tokenizer,
        setups,
        template,
        max_new_tokens=options.max_new_tokens,
        batch_size=options.batch_size,
        max_source_length=lengths.source,
    )
    flag_rate = sum(flagger(r) for r in replies) / max(1, len(replies)) if flagger else None
    return Scores(loss, reply_stats(setups, replies), flag_rate, replies)


def _surface_checks(
    candidate: Scores, parent: Scores, options: GateOptions, has_flagger: bool
) -> list[GateCheck]:
    tol = options.tolerance
    loss_limit = parent.loss * (1.0 + options.max_loss_increase)
    checks = [
        _at_most("gold loss", candidate.loss, parent.loss, loss_limit),
        _at_most(
            "echo rate", candidate.replies.echo_rate, parent.replies.echo_rate, parent.replies.echo_rate + tol
        ),
        _at_most(
            "empty rate",
            candidate.replies.empty_rate,
            parent.replies.empty_rate,
            parent.replies.empty_rate + tol,
        ),
        _at_least(
            "distinct-1",
            candidate.replies.distinct_1,
            parent.replies.distinct_1,
            parent.replies.distinct_1 - tol,
        ),
        _at_least(
            "distinct-2",
            candidate.replies.distinct_2,
            parent.replies.distinct_2,
            parent.replies.distinct_2 - tol,
        ),
    ]
    if has_flagger and candidate.flag_rate is not None and parent.flag_rate is not None:
        checks.append(_at_most("flag rate", candidate.flag_rate, parent.flag_rate, parent.flag_rate + tol))
    else:
        checks.append(
            GateCheck(name="flag rate", passed=None, reason="no family-mode filter to measure with")
        )
    return checks


def _at_most(name: str, candidate: float, parent: float, limit: float) -> GateCheck:
    ok = candidate <= limit + 1e-12
    return GateCheck(
        name=name,
        passed=ok,
        candidate=candidate,
        parent=parent,
        limit=limit,
        reason="" if ok else f"{candidate:.4g} is above the limit {limit:.4g}",
    )


def _at_least(name: str, candidate: float, parent: float, limit: float) -> GateCheck:
    ok = candidate >= limit - 1e-12
    return GateCheck(
        name=name,
        passed=ok,
        candidate=candidate,
        parent=parent,
        limit=limit,
        reason="" if ok else f"{candidate:.4g} is below the limit {limit:.4g}",
    )


def preference_accuracy(
    model: "PeftModel",
    tokenizer: "PreTrainedTokenizerBase",
    template: str,
    held_out: HeldOut,
    lengths: MaxLengths,
    options: GateOptions,
) -> float:
    """The weighted share of held-out judgements that `log π_candidate − log π_parent` ranks
    right (ties half): pairs by chosen over rejected, rows by the reward's sign."""
    texts = [(r.setup, r.punchline) for r in held_out.rows]
    texts += [(p.setup, p.chosen) for p in held_out.pairs] + [(p.setup, p.rejected) for p in held_out.pairs]
    reward = [
        c - p
        for c, p in zip(
            _logprobs(model, tokenizer, CANDIDATE, template, texts, lengths, options.batch_size),
            _logprobs(model, tokenizer, PARENT, template, texts, lengths, options.batch_size),
            strict=True,
        )
    ]
    n_rows, n_pairs = len(held_out.rows), len(held_out.pairs)
    right = total = 0.0
    for row, r in zip(held_out.rows, reward[:n_rows], strict=True):
        signed = r if row.desirable else -r
        right += row.weight * _credit(signed)
        total += row.weight
    chosen, rejected = reward[n_rows : n_rows + n_pairs], reward[n_rows + n_pairs :]
    for pair, rc, rr in zip(held_out.pairs, chosen, rejected, strict=True):
        right += pair.weight * _credit(rc - rr)
        total += pair.weight
    return right / total if total > 0 else 0.5


def _credit(margin: float) -> float:
    return 1.0 if margin > 0 else 0.5 if margin == 0 else 0.0


def _logprobs(
    model: "PeftModel",
    tokenizer: "PreTrainedTokenizerBase",
    adapter: str,
    template: str,
    texts: Sequence[tuple[str, str]],
    lengths: MaxLengths,
    batch_size: int,
) -> list[float]:
    """Sequence log-probabilities of (setup, punchline) pairs under one of the two adapters."""
    import torch

    from training.preference_losses import sequence_logprobs
    from training.tokenization import encode_jokes, make_collator

    model.set_adapter(adapter)
    device: torch.device = next(model.parameters()).device
    jokes = [Joke(str(i), s, p, None, "preference") for i, (s, p) in enumerate(texts)]
    features = encode_jokes(tokenizer, jokes, template, lengths)
    collate = make_collator(tokenizer)
    values: list[float] = []
    for start in range(0, len(features), batch_size):
        batch = collate(features[start : start + batch_size]).to(device)
        with torch.no_grad():
            logits = model(**batch).logits
        values.extend(sequence_logprobs(logits, batch["labels"]).tolist())
    return values
