"""Decoding over a step function: greedy, sampling, beam search and teacher forcing.

The ONNX Runtime backend owns no model code in Python, only this loop around one decoder step
(`StepState`: next-token logits for every row, and a way to keep or reorder rows). The logits
processors (repetition penalty, no repeated n-grams, a minimum length, temperature) are
transformers' own, built in the order `generate` builds them, so each option means exactly what
it means on the transformers backend. Top-k and top-p are `filter_top_k_top_p`, transformers'
two warpers computed on the top k candidates only: the same distribution (tested against
them), without sorting the whole vocabulary at every step (55 ms for 32 rows) or
`torch.multinomial` over it (18 ms). Beam search follows transformers' vectorised beam search
(2 x beams continuations a step, finished beams scored by their summed log-probabilities over
their length, its early-stop heuristic).

Scores, as the other backends define them: for greedy and sampled replies the mean raw
log-probability (before any processor or temperature) of the generated tokens, end token
included; for beams the beam score (processed log-probabilities over the length).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from model.generation import GenerationParams

Banned = Sequence[Sequence[int]]  # token id sequences the decoder must not write

# Rows are dropped from the decoder batch once at most this share of them is still running:
# copying the caches costs about one step, so it pays only when many rows have finished.
COMPACT_BELOW = 0.75
NEG_INF = -1.0e9  # transformers' "impossible" beam score
# exp() of anything below this is 0 next to the largest term (float32), and its slow path for
# very small results made one logsumexp over (32, 32128) take 18 ms instead of 1 ms.
EXP_FLOOR = -80.0


class StepState(Protocol):
    """A batch of decoder rows whose past lives between calls."""

    @property
    def rows(self) -> int: ...

    def step(self, tokens: np.ndarray) -> np.ndarray:
        """Feed one token per row (int64, shape (rows,)); the next-token logits (rows, vocab)."""
        ...

    def select(self, rows: np.ndarray, within_prompts: bool = False) -> None:
        """Keep only `rows` (indices, repeats allowed), in that order; `within_prompts`: rows
        only move among the rows of their own prompt."""
        ...


@dataclass(frozen=True, slots=True)
class SpecialTokens:
    start: int  # the decoder start token (T5: the pad token)
    eos: int
    pad: int


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """Generated token ids (end token included when the reply ended) and the reply's score."""

    tokens: list[int]
    score: float


def build_processors(
    params: GenerationParams, special: SpecialTokens, beams: bool = False, banned: Banned = ()
) -> list:
    """transformers' logits processors for `params`, in `generate`'s order, up to temperature
    (top-k and top-p follow in `filter_top_k_top_p`). `banned`: token sequences never to
    write (`NoBadWordsLogitsProcessor`: a one-token sequence is masked at every step, a longer
    one when the tokens before its last one were just written)."""
    from transformers import (
        NoBadWordsLogitsProcessor,
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
    )

    processors: list = []
    if params.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
    if params.no_repeat_ngram_size > 0:
        processors.append(NoRepeatNGramLogitsProcessor(params.no_repeat_ngram_size))
    if banned:
        processors.append(NoBadWordsLogitsProcessor([list(ids) for ids in banned], special.eos))
    if params.min_new_tokens > 0:
        processors.append(MinNewTokens(params.min_new_tokens, special.eos))
    if params.do_sample and not beams and params.temperature != 1.0:
        processors.append(TemperatureLogitsWarper(params.temperature))
    return processors


class MinNewTokens:
    """transformers' `MinNewTokensLengthLogitsProcessor` (the decoder's prompt is its start
    token), banning the end token in place instead of rewriting every score (2 ms a step at
    32 rows)."""

    def __init__(self, min_new_tokens: int, eos: int) -> None:
        self.min_new_tokens, self.eos = min_new_tokens, eos

    def __call__(self, sequences: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if sequences.shape[-1] - 1 < self.min_new_tokens:
            scores[:, self.eos] = float("-inf")
        return scores


def _process(processors: list, sequences: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    for processor in processors:
        scores = processor(sequences, scores)
    return scores


def _shifted_exp(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(exp(x - max), max) per row, with exp of masked (-inf) entries exactly 0."""
    peak = x.amax(dim=-1, keepdim=True)
    exp = (x - peak).clamp_(min=EXP_FLOOR).exp_()
    return exp.masked_fill_(x == float("-inf"), 0.0), peak


def log_normaliser(x: torch.Tensor) -> torch.Tensor:
    """logsumexp over the last dimension of finite `x` (raw logits), (rows,)."""
    peak = x.amax(dim=-1, keepdim=True)
    return (x - peak).clamp_(min=EXP_FLOOR).exp_().sum(dim=-1).log_() + peak.squeeze(-1)


def log_softmax(x: torch.Tensor) -> torch.Tensor:
    return x - log_normaliser(x)[:, None]


def filter_top_k_top_p(
    scores: torch.Tensor, top_k: int, top_p: float
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(candidate token ids or None for the whole vocabulary, their probabilities) per row.

    transformers' `TopKLogitsWarper` then `TopPLogitsWarper` (min_tokens_to_keep 1) then a
    softmax, on the k best candidates only (ties at the k-th score keep exactly k, where
    transformers keeps all of them).
    """
    vocab = scores.shape[-1]
    k = min(top_k, vocab) if top_k > 0 else vocab
    ids: torch.Tensor | None = None
    values = scores
    if k < vocab:
        values, ids = scores.topk(k, dim=-1)  # descending
    elif top_p < 1.0:
        values, ids = scores.sort(dim=-1, descending=True)
    if top_p < 1.0:
        exp, _ = _shifted_exp(values.flip(-1))  # ascending, as transformers sorts
        cumulative = (exp / exp.sum(dim=-1, keepdim=True)).cumsum(dim=-1)
        remove = cumulative <= 1 - top_p
        remove[..., -1] = False  # the best one always stays
        values = values.masked_fill(remove.flip(-1), float("-inf"))
    exp, _ = _shifted_exp(values)
    return ids, exp / exp.sum(dim=-1, keepdim=True)


def _draw(ids: torch.Tensor | None, probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row from `probs` (inverse CDF: never a token of probability 0)."""
    cumulative = probs.cumsum(dim=-1)
    u = torch.rand(probs.shape[0], 1, generator=generator, dtype=probs.dtype) * cumulative[:, -1:]
    picked = torch.searchsorted(cumulative, u, right=True).clamp_(max=probs.shape[-1] - 1)
    return (picked if ids is None else ids.gather(1, picked)).squeeze(1)


def sample(
    state: StepState,
    params: GenerationParams,
    special: SpecialTokens,
    generator: torch.Generator | None = None,
    banned: Banned = (),
) -> list[Hypothesis]:
    """One reply per row of `state`: sampled when `params.do_sample`, else greedy, never
    writing a `banned` sequence.

    Rows that end are dropped from the decoder batch as they pile up (see COMPACT_BELOW); the
    loop stops when every row has ended or after `max_new_tokens`.
    """
    total = state.rows
    processors = build_processors(params, special, banned=banned)
    sequences = torch.full((total, 1), special.start, dtype=torch.long)
    logprob_sums = torch.zeros(total, dtype=torch.float64)
    lengths = torch.zeros(total, dtype=torch.long)
    running = torch.arange(total)  # original row of each decoder row
    done = torch.zeros(total, dtype=torch.bool)  # per decoder row
    tokens = np.full(total, special.start, dtype=np.int64)
    for _ in range(params.max_new_tokens):
        logits = torch.from_numpy(state.step(tokens))
        normaliser = log_normaliser(logits)
        # Processors that write in place only ban tokens (to -inf), which are then never
        # chosen: the chosen token's raw logit below is intact without a copy of them all.
        scores = _process(processors, sequences[running], logits)
        if params.do_sample:
            chosen = _draw(*filter_top_k_top_p(scores, params.top_k, params.top_p), generator)
        else:
            chosen = torch.from_numpy(scores.numpy().argmax(axis=-1))  # numpy's is 5x faster
        live = ~done
        chosen = torch.where(live, chosen, torch.full_like(chosen, special.pad))
        raw_logp = logits.gather(1, chosen[:, None]).squeeze(1) - normaliser
        logprob_sums[running[live]] += raw_logp[live].double()
        lengths[running[live]] += 1
        column = torch.full((total,), special.pad, dtype=torch.long)
        column[running] = chosen
        sequences = torch.cat([sequences, column[:, None]], dim=1)
        done = done | (chosen == special.eos)
        still = int((~done).sum())
        if still == 0:
            break
        if still <= COMPACT_BELOW * len(running):
            keep = (~done).nonzero().squeeze(1)
            state.select(keep.numpy())
            running, done, chosen = running[keep], done[keep], chosen[keep]
        tokens = chosen.numpy().astype(np.int64)
    return [
        Hypothesis(
            _trim(sequences[row, 1:].tolist(), special.eos), float(logprob_sums[row] / max(1, lengths[row]))
        )
        for row in range(total)
    ]


def _trim(tokens: list[int], eos: int) -> list[int]:
    """The tokens up to and including the first end token."""
    return tokens[: tokens.index(eos) + 1] if eos in tokens else tokens


def beam_search(
    state: StepState,
    batch: int,
    beams: int,
    params: GenerationParams,
    special: SpecialTokens,
    banned: Banned = (),
) -> list[list[Hypothesis]]:
    """The `beams` best hypotheses per prompt; `state` holds `beams` rows per prompt, in order;
    no `banned` sequence in any.

    transformers' beam search with length_penalty 1 and early_stopping False.
    """
    processors = build_processors(params, special, beams=True, banned=banned)
    max_length = 1 + params.max_new_tokens  # counted with the decoder start token
    keep = 2 * beams  # continuations kept per step, so that `beams` stay open after some end
    running = torch.full((batch, beams, max_length), special.pad, dtype=torch.long)
    running[:, :, 0] = special.start
    finished = running.clone()
    running_scores = torch.zeros(batch, beams)
    running_scores[:, 1:] = NEG_INF  # only the first beam may start: no duplicate beams
    finished_scores = torch.full((batch, beams), NEG_INF)
    is_finished = torch.zeros(batch, beams, dtype=torch.bool)
    improvable = torch.ones(batch, 1, dtype=torch.bool)
    top_mask = torch.arange(keep) < beams
    offsets = torch.arange(batch)[:, None] * beams
    cur_len = 1
    tokens = np.full(batch * beams, special.start, dtype=np.int64)
    while True:
        logits = torch.from_numpy(state.step(tokens))
        flat = running[:, :, :cur_len].reshape(batch * beams, cur_len)
        logp = _process(processors, flat, log_softmax(logits))
        vocab = logp.shape[-1]
        totals = (logp.view(batch, beams, vocab) + running_scores[:, :, None]).view(batch, -1)
        top_scores, top_index = torch.topk(totals, keep)
        top_beam, top_token = top_index // vocab, top_index % vocab
        candidates = torch.take_along_dim(running, top_beam[:, :, None], dim=1)
        candidates[:, :, cur_len] = top_token
        ends = (top_token == special.eos) | (cur_len + 1 >= max_length)
        # The best `beams` continuations that did not end keep running.
        open_scores = top_scores + ends.float() * NEG_INF
        next_index = torch.topk(open_scores, beams)[1]
        running = torch.take_along_dim(candidates, next_index[:, :, None], dim=1)
        running_scores = torch.take_along_dim(open_scores, next_index, dim=1)
        source = torch.take_along_dim(top_beam, next_index, dim=1)
        # Ended continuations among the top `beams` join the finished ones if they beat them.
        just_ended = ends & top_mask[None, :]
        ended_scores = top_scores / cur_len  # length includes the new token: cur_len + 1 - 1
        ended_scores = ended_scores + (~improvable).float() * NEG_INF + (~just_ended).float() * NEG_INF
        merged = torch.cat([finished, candidates], dim=1)
        merged_scores = torch.cat([finished_scores, ended_scores], dim=1)
        merged_done = torch.cat([is_finished, just_ended], dim=1)
        best = torch.topk(merged_scores, beams)[1]
        finished = torch.take_along_dim(merged, best[:, :, None], dim=1)
        finished_scores = torch.take_along_dim(merged_scores, best, dim=1)
        is_finished = torch.take_along_dim(merged_done, best, dim=1)
        cur_len += 1
        best_possible = running_scores[:, :1] / (cur_len - 1)
        worst = torch.where(is_finished, finished_scores.min(dim=1, keepdim=True)[0], torch.tensor(NEG_INF))
        improvable = improvable & (best_possible > worst).any(dim=-1, keepdim=True)
        if not bool(improvable.any()) or bool(ends.all()) or cur_len >= max_length:
            break
        state.select((source + offsets).reshape(-1).numpy(), within_prompts=True)
        tokens = running[:, :, cur_len - 1].reshape(-1).numpy().astype(np.int64)
    return [
        [
            Hypothesis(_trim(finished[b, k, 1:].tolist(), special.eos), float(finished_scores[b, k]))
            for k in range(beams)
        ]
        for b in range(batch)
    ]


def teacher_force(state: StepState, targets: list[list[int]], special: SpecialTokens) -> list[float]:
    """The summed log-probability of each row's target tokens (end token included by the
    caller), feeding the targets one step at a time."""
    longest = max((len(t) for t in targets), default=0)
    sums = np.zeros(len(targets), dtype=np.float64)
    previous = np.full(len(targets), special.start, dtype=np.int64)
    for position in range(longest):
        logp = log_softmax(torch.from_numpy(state.step(previous))).numpy()
        current = np.array(
            [t[position] if position < len(t) else special.pad for t in targets], dtype=np.int64
        )
        valid = np.array([position < len(t) for t in targets])
        sums += np.where(valid, logp[np.arange(len(targets)), current], 0.0)
        previous = current
    return sums.tolist()
