"""Turning jokes into model inputs: prompt -> input ids, punchline -> labels padded with -100.

Every text goes through `model.prompt.build_prompt`/`clean_text` first (the same template as
inference, docs/DESIGN.md, decision 1). Maximum lengths default to a high percentile of the data's own
token lengths, so a rare very long joke does not set the padding for everyone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from model.prompt import build_prompt
from model.text import clean_text
from training.readers import Joke

if TYPE_CHECKING:
    from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase

LABEL_PAD = -100  # ignored by the loss
LENGTH_PERCENTILE = 99.0
MAX_LENGTH_CAP = 512  # T5's trained positions; relative attention would go on, quality would not


@dataclass(frozen=True, slots=True)
class MaxLengths:
    """Token limits for the prompt (source) and the punchline (target)."""

    source: int
    target: int


def percentile(values: Sequence[int], q: float) -> int:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def token_lengths(tokenizer: "PreTrainedTokenizerBase", texts: Sequence[str]) -> list[int]:
    """Token counts (with `</s>`) of already normalised texts."""
    if not texts:
        return []
    return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]]


def prompts_of(jokes: Sequence[Joke], template: str) -> list[str]:
    return [build_prompt(j.question, template) for j in jokes]


def choose_max_lengths(
    tokenizer: "PreTrainedTokenizerBase",
    jokes: Sequence[Joke],
    template: str,
    source: int | None = None,
    target: int | None = None,
    q: float = LENGTH_PERCENTILE,
) -> MaxLengths:
    """Given limits, or the data's q-th percentile rounded up to a multiple of 8."""

    def pick(given: int | None, texts: list[str]) -> int:
        if given is not None:
            return given
        value = percentile(token_lengths(tokenizer, texts), q)
        return min(MAX_LENGTH_CAP, max(8, 8 * math.ceil(value / 8)))

    return MaxLengths(
        source=pick(source, prompts_of(jokes, template)),
        target=pick(target, [clean_text(j.answer) for j in jokes]),
    )


def encode_jokes(
    tokenizer: "PreTrainedTokenizerBase",
    jokes: Sequence[Joke],
    template: str,
    lengths: MaxLengths,
) -> list[dict[str, list[int]]]:
    """One feature dict per joke: input_ids, attention_mask, labels (unpadded, truncated)."""
    if not jokes:
        return []
    sources = tokenizer(prompts_of(jokes, template), max_length=lengths.source, truncation=True)
    targets = tokenizer(
        text_target=[clean_text(j.answer) for j in jokes],
        max_length=lengths.target,
        truncation=True,
    )
    return [
        {"input_ids": ids, "attention_mask": mask, "labels": labels}
        for ids, mask, labels in zip(
            sources["input_ids"], sources["attention_mask"], targets["input_ids"], strict=True
        )
    ]


def make_collator(
    tokenizer: "PreTrainedTokenizerBase", pad_to_multiple_of: int | None = None
) -> "DataCollatorForSeq2Seq":
    """Dynamic padding: inputs with the pad token (mask 0), labels with -100."""
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(
        tokenizer,
        padding="longest",
        label_pad_token_id=LABEL_PAD,
        pad_to_multiple_of=pad_to_multiple_of,
        return_tensors="pt",
    )
