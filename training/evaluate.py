"""`punchline eval`: the test split scored under the base model and under the adapter.

Per variant: mean token loss and perplexity of the original punchlines (teacher forcing), and of
greedy replies: echo rate (mostly repeating the setup, the untuned model's failure), empty rate,
distinct-1/distinct-2 and mean length in words. Written as `eval.json` and `eval.md`.

`punchline eval --backend NAME` (`evaluate_backend`) asks instead what a serving engine costs in
quality: the same adapter served by transformers in float32 and by NAME (e.g. onnxruntime int8),
each scored the same way through the backend interface, plus greedy agreement (the share of
setups whose greedy reply is the same text under both). Written as `eval-<backend>.json/.md`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.filters import is_echo, is_empty, words
from training.dataset import prepare_data
from training.errors import DataError
from training.readers import Joke
from training.tokenization import MaxLengths

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from config.settings import ModelSettings, WorkerSettings
    from model.backends.base import Backend
    from training.generation import TunedModel

EVAL_JSON = "eval.json"
EVAL_MD = "eval.md"
EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class ReplyStats:
    """Surface statistics of a list of replies."""

    echo_rate: float
    empty_rate: float
    distinct_1: float
    distinct_2: float
    mean_words: float


@dataclass(frozen=True, slots=True)
class VariantScore:
    """Loss of the originals and statistics of the greedy replies for one model variant."""

    loss: float
    perplexity: float
    replies: ReplyStats


@dataclass(frozen=True, slots=True)
class Example:
    setup: str
    original: str
    base: str
    tuned: str


@dataclass
class EvalReport:
    adapter_version: str
    base_model: str
    data: str
    test_jokes: int
    base: VariantScore
    tuned: VariantScore
    original: ReplyStats  # the same statistics for the human punchlines, for reference
    examples: list[Example] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    def markdown(self) -> str:
        """The metrics as a Markdown table (plus a few examples)."""
        b, t, o = self.base, self.tuned, self.original
        rows = [
            ("loss of original punchlines", f"{b.loss:.4f}", f"{t.loss:.4f}", ""),
            ("perplexity", f"{b.perplexity:.2f}", f"{t.perplexity:.2f}", ""),
            ("echo rate", f"{b.replies.echo_rate:.1%}", f"{t.replies.echo_rate:.1%}", f"{o.echo_rate:.1%}"),
            (
                "empty rate",
                f"{b.replies.empty_rate:.1%}",
                f"{t.replies.empty_rate:.1%}",
                f"{o.empty_rate:.1%}",
            ),
            (
                "distinct-1",
                f"{b.replies.distinct_1:.3f}",
                f"{t.replies.distinct_1:.3f}",
                f"{o.distinct_1:.3f}",
            ),
            (
                "distinct-2",
                f"{b.replies.distinct_2:.3f}",
                f"{t.replies.distinct_2:.3f}",
                f"{o.distinct_2:.3f}",
            ),
            (
                "mean length (words)",
                f"{b.replies.mean_words:.2f}",
                f"{t.replies.mean_words:.2f}",
                f"{o.mean_words:.2f}",
            ),
        ]
        lines = [
            f"Evaluation of adapter {self.adapter_version} on {self.test_jokes} test jokes "
            f"from {self.data} (base model {self.base_model})",
            "",
            "| metric | base model | tuned | original |",
            "| --- | --- | --- | --- |",
            *[f"| {m} | {x} | {y} | {z} |" for m, x, y, z in rows],
        ]
        if self.examples:
            lines += ["", "| Setup | Original | base model | tuned |", "| --- | --- | --- | --- |"]
            cell = lambda s: s.replace("|", "\\|") or "(empty)"  # noqa: E731
            lines += [
                f"| {cell(e.setup)} | {cell(e.original)} | {cell(e.base)} | {cell(e.tuned)} |"
                for e in self.examples
            ]
        return "\n".join(lines)


def distinct_n(replies: Sequence[str], n: int) -> float:
    """Unique n-grams over all n-grams of the replies (0 when there are none)."""
    grams = [tuple(ws[i : i + n]) for r in replies for ws in [words(r)] for i in range(len(ws) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def reply_stats(setups: Sequence[str], replies: Sequence[str]) -> ReplyStats:
    count = max(1, len(replies))
    return ReplyStats(
        echo_rate=sum(is_echo(s, r) for s, r in zip(setups, replies, strict=True)) / count,
        empty_rate=sum(is_empty(r) for r in replies) / count,
        distinct_1=distinct_n(replies, 1),
        distinct_2=distinct_n(replies, 2),
        mean_words=sum(len(words(r)) for r in replies) / count,
    )


def mean_loss(tuned: "TunedModel", jokes: Sequence[Joke], lengths: MaxLengths, batch_size: int) -> float:
    """Token-weighted mean cross-entropy of the original punchlines under the current variant."""
    return token_loss(
        tuned.model, tuned.tokenizer, tuned.metadata.prompt_template, jokes, lengths, batch_size
    )


def token_loss(
    model: "torch.nn.Module",
    tokenizer: "PreTrainedTokenizerBase",
    template: str,
    jokes: Sequence[Joke],
    lengths: MaxLengths,
    batch_size: int,
) -> float:
    """Token-weighted mean cross-entropy of the jokes' punchlines under `model` (teacher forcing)."""
    import torch

    from training.tokenization import encode_jokes, make_collator

    device = next(model.parameters()).device
    features = encode_jokes(tokenizer, jokes, template, lengths)
    collate = make_collator(tokenizer)
    total, tokens = 0.0, 0
    for start in range(0, len(features), batch_size):
        batch = collate(features[start : start + batch_size]).to(device)
        with torch.no_grad():
            logits = model(**batch).logits.float()
        labels = batch["labels"]
        total += torch.nn.functional.cross_entropy(
            logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=-100, reduction="sum"
        ).item()
        tokens += int((labels != -100).sum())
    return total / max(1, tokens)


def load_test_split(
    data: Path, hyperparameters: dict[str, Any], limit: int | None
) -> tuple[list[Joke], MaxLengths]:
    """The test split of `data`, cleaned as the adapter's training data was, and its lengths."""
    prepared = prepare_data(
        data, max_answer_chars=int(hyperparameters.get("max_answer_chars", 200)), require_train=False
    )
    test = prepared.split.test[:limit] if limit else prepared.split.test
    if not test:
        raise DataError(f"{data} has no jokes in its test split: use a larger data file")
    lengths = MaxLengths(
        int(hyperparameters.get("max_source_length", 128)), int(hyperparameters.get("max_target_length", 64))
    )
    return test, lengths


def evaluate(
    base_model: str, adapter_dir: Path, data: Path, *, limit: int | None = None, batch_size: int = 16
) -> EvalReport:
    """Score the test split of `data` under the base model and under the adapter."""
    from training.generation import generate_greedy, load_tuned

    tuned = load_tuned(base_model, adapter_dir)
    test, lengths = load_test_split(data, tuned.metadata.hyperparameters, limit)
    setups = [j.question for j in test]
    scores: dict[bool, VariantScore] = {}
    replies: dict[bool, list[str]] = {}
    for adapter_on in (False, True):
        with tuned.variant(adapter_on):
            loss = mean_loss(tuned, test, lengths, batch_size)
            replies[adapter_on] = generate_greedy(
                tuned.model,
                tuned.tokenizer,
                setups,
                tuned.metadata.prompt_template,
                batch_size=batch_size,
                max_source_length=lengths.source,
            )
        scores[adapter_on] = VariantScore(
            loss=loss,
            perplexity=math.exp(min(loss, 50.0)),
            replies=reply_stats(setups, replies[adapter_on]),
        )
    examples = [
        Example(j.question, j.answer, b, t)
        for j, b, t in list(zip(test, replies[False], replies[True], strict=True))[:EXAMPLES]
    ]
    return EvalReport(
        adapter_version=tuned.metadata.version,
        base_model=base_model,
        data=str(data),
        test_jokes=len(test),
        base=scores[False],
        tuned=scores[True],
        original=reply_stats(setups, [j.answer for j in test]),
        examples=examples,
    )


@dataclass(frozen=True, slots=True)
class BackendScore:
    """One serving backend on the test split."""

    backend: str  # e.g. "onnxruntime-int8"
    loss: float  # of the original punchlines, per token (end token included)
    perplexity: float
    greedy_agreement: float  # share of greedy replies identical to the reference backend's
    replies: ReplyStats


@dataclass
class BackendReport:
    """A backend against transformers float32 on the same adapter."""

    adapter_version: str
    base_model: str
    data: str
    test_jokes: int
    reference: BackendScore
    candidate: BackendScore
    differences: list[Example] = field(default_factory=list)  # base = reference, tuned = candidate

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    def markdown(self) -> str:
        """The comparison as a Markdown table (plus a few replies that differ)."""
        r, c = self.reference, self.candidate
        rows = [
            ("loss of original punchlines", f"{r.loss:.4f}", f"{c.loss:.4f}"),
            ("perplexity", f"{r.perplexity:.2f}", f"{c.perplexity:.2f}"),
            (f"greedy agreement with {r.backend}", f"{r.greedy_agreement:.1%}", f"{c.greedy_agreement:.1%}"),
            ("echo rate", f"{r.replies.echo_rate:.1%}", f"{c.replies.echo_rate:.1%}"),
            ("empty rate", f"{r.replies.empty_rate:.1%}", f"{c.replies.empty_rate:.1%}"),
            ("distinct-1", f"{r.replies.distinct_1:.3f}", f"{c.replies.distinct_1:.3f}"),
            ("distinct-2", f"{r.replies.distinct_2:.3f}", f"{c.replies.distinct_2:.3f}"),
            ("mean length (words)", f"{r.replies.mean_words:.2f}", f"{c.replies.mean_words:.2f}"),
        ]
        lines = [
            f"Backend {c.backend} against {r.backend}, adapter {self.adapter_version}, on "
            f"{self.test_jokes} test jokes from {self.data} (base model {self.base_model})",
            "",
            f"| metric | {r.backend} | {c.backend} |",
            "| --- | --- | --- |",
            *[f"| {m} | {x} | {y} |" for m, x, y in rows],
        ]
        if self.differences:
            cell = lambda s: s.replace("|", "\\|") or "(empty)"  # noqa: E731
            lines += ["", f"| Setup | {r.backend} | {c.backend} |", "| --- | --- | --- |"]
            lines += [f"| {cell(e.setup)} | {cell(e.base)} | {cell(e.tuned)} |" for e in self.differences]
        return "\n".join(lines)


def evaluate_backend(
    model: "ModelSettings",
    worker: "WorkerSettings",
    adapter_dir: Path,
    data: Path,
    *,
    limit: int | None = None,
    batch_size: int = 16,
    loader: "Callable[[ModelSettings, Path], Backend] | None" = None,
) -> BackendReport:
    """Score the test split of `data` under transformers float32 and under `model.backend`.

    Both load through `load_backend` (or `loader(settings, adapter_dir)`, injected by tests),
    one after the other so that only one model is in memory at a time. Raises what loading
    raises (`ModelLoadError`, `AdapterError`) and `DataError` for an empty test split.
    """
    from model.backends import load_backend
    from model.loading import resolve_adapter

    metadata = resolve_adapter(adapter_dir, model.base)
    prepared = prepare_data(
        data, max_answer_chars=int(metadata.hyperparameters.get("max_answer_chars", 200)), require_train=False
    )
    test = prepared.split.test[:limit] if limit else prepared.split.test
    if not test:
        raise DataError(f"{data} has no jokes in its test split: use a larger data file")

    def load(settings: "ModelSettings") -> "Backend":
        if loader is not None:
            return loader(settings, adapter_dir)
        return load_backend(settings, worker, adapter_dir)

    reference_settings = model.model_copy(update={"backend": "transformers", "dtype": "float32"})
    ref_name, ref_loss, ref_replies = _score_backend(load(reference_settings), test, batch_size)
    name, loss, replies = _score_backend(load(model), test, batch_size)
    setups = [j.question for j in test]
    agreement = sum(a == b for a, b in zip(ref_replies, replies, strict=True)) / len(test)
    differences = [
        Example(s, j.answer, a, b) for s, j, a, b in zip(setups, test, ref_replies, replies) if a != b
    ][:EXAMPLES]
    return BackendReport(
        adapter_version=metadata.version,
        base_model=model.base,
        data=str(data),
        test_jokes=len(test),
        reference=_backend_score(ref_name, ref_loss, 1.0, setups, ref_replies),
        candidate=_backend_score(name, loss, agreement, setups, replies),
        differences=differences,
    )


def _score_backend(backend: "Backend", test: Sequence[Joke], batch_size: int) -> tuple[str, float, list[str]]:
    """(backend name, per-token loss of the originals, greedy replies); closes the backend."""
    from model.backends.base import Scorer
    from model.generation import GenerationParams
    from model.prompt import build_prompt
    from training.generation import DEFAULT_MAX_NEW_TOKENS

    greedy = GenerationParams(
        max_new_tokens=DEFAULT_MAX_NEW_TOKENS,
        do_sample=False,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        num_candidates=1,
    )
    if not isinstance(backend, Scorer):
        raise DataError(f"backend {backend.name} cannot score replies, so it cannot be evaluated")
    total, tokens, replies = 0.0, 0, []
    try:
        for start in range(0, len(test), batch_size):
            jokes = test[start : start + batch_size]
            prompts = [build_prompt(j.question, backend.prompt_template) for j in jokes]
            for logp, count in backend.score(prompts, [j.answer for j in jokes]):
                total, tokens = total - logp, tokens + count
            replies += [cands[0].text.strip() for cands in backend.generate(prompts, 1, greedy)]
        return backend.name, total / max(1, tokens), replies
    finally:
        backend.close()


def _backend_score(
    name: str, loss: float, agreement: float, setups: list[str], replies: list[str]
) -> BackendScore:
    return BackendScore(name, loss, math.exp(min(loss, 50.0)), agreement, reply_stats(setups, replies))


def backend_report_paths(report: BackendReport, directory: Path) -> tuple[Path, Path]:
    """`eval-<backend>.json` and `.md` in `directory`."""
    stem = f"eval-{report.candidate.backend}"
    return directory / f"{stem}.json", directory / f"{stem}.md"


def write_report(report: EvalReport | BackendReport, directory: Path) -> tuple[Path, Path]:
    """Write the report as JSON and Markdown into `directory` (`eval.json` and `eval.md`, or
    `eval-<backend>.json/.md` for a backend comparison)."""
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(report, BackendReport):
        json_path, md_path = backend_report_paths(report, directory)
    else:
        json_path, md_path = directory / EVAL_JSON, directory / EVAL_MD
    json_path.write_text(report.to_json() + "\n", encoding="utf-8")
    md_path.write_text(report.markdown() + "\n", encoding="utf-8")
    return json_path, md_path
