"""The transformers backend: the adapter merged into the weights, fp32 / bf16 / dynamic int8.

The adapter is merged in float32 at load time (model.loading) and only then cast: bf16 on a GPU
or where asked, dynamic int8 (`torch.ao.quantization.quantize_dynamic` on every Linear) on CPU.
Candidates are scored with the model's own raw log-probabilities (before temperature, top-k/p
and repetition penalties), averaged over the generated tokens including the end token.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch

from model.backends.blocking import BanCache
from model.generation import Candidate, GenerationParams
from model.loading import ModelSource, load_merged_model, load_tokenizer, resolve_device
from model.types import ModelLoadError

log = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "int8")


def pick_dtype(dtype: str, device: str) -> str:
    """The dtype "auto" means: bf16 on GPU, dynamic int8 on CPU (fastest measured there)."""
    if dtype == "auto":
        return "bfloat16" if device == "cuda" else "int8"
    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r} for transformers; use one of {DTYPES}")
    if dtype == "int8" and device == "cuda":
        raise ModelLoadError("dynamic int8 runs on CPU only; use bfloat16 on a GPU")
    return dtype


class TransformersBackend:
    """Decodes with `model.generate` on a merged model."""

    def __init__(self, model: Any, tokenizer: Any, source: ModelSource, device: str, dtype: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.version = source.version
        self.prompt_template = source.prompt_template
        self.device = device
        self.name = f"transformers-{dtype}" + ("-cuda" if device == "cuda" else "")
        self._eos = int(tokenizer.eos_token_id)
        self._bans = BanCache(tokenizer)

    @classmethod
    def load(
        cls, source: ModelSource, device: str = "auto", dtype: str = "auto", threads: int = 0
    ) -> TransformersBackend:
        """Load, merge and cast the model described by `source`."""
        if threads > 0:
            torch.set_num_threads(threads)
        device = resolve_device(device)
        dtype = pick_dtype(dtype, device)
        tokenizer = load_tokenizer(source)
        model = load_merged_model(source)
        if dtype == "bfloat16":
            model = model.to(torch.bfloat16)
        elif dtype == "int8":
            with warnings.catch_warnings():
                # torch.ao's eager quantization is deprecated in favour of torchao, which is not
                # installed; it still works and is the fastest transformers path on CPU here.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", UserWarning)
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        model = model.to(device)
        return cls(model, tokenizer, source, device, dtype)

    def _generate_kwargs(self, n: int, params: GenerationParams) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            max_new_tokens=params.max_new_tokens,
            min_new_tokens=params.min_new_tokens or None,
            num_return_sequences=n,
            repetition_penalty=params.repetition_penalty,
            no_repeat_ngram_size=params.no_repeat_ngram_size,
            return_dict_in_generate=True,
        )
        if params.blocked:
            kwargs["bad_words_ids"] = self._bans.ids(params.blocked)
        if params.do_sample:
            kwargs.update(
                do_sample=True,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k,
                num_beams=1,
                output_logits=True,
            )
        elif n == 1:
            kwargs.update(do_sample=False, num_beams=1, output_logits=True)
        else:  # several deterministic candidates: beam search, scored by the beams
            kwargs.update(do_sample=False, num_beams=n, output_scores=True, length_penalty=1.0)
        return kwargs

    @torch.inference_mode()
    def generate(self, prompts: list[str], n: int, params: GenerationParams) -> list[list[Candidate]]:
        """`n` candidates per prompt."""
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        out = self.model.generate(**enc, **self._generate_kwargs(n, params))
        generated = out.sequences[:, 1:]  # drop the decoder start token
        # Positions after a row's first end token are padding.
        is_eos = generated == self._eos
        valid = (torch.cumsum(is_eos, dim=1) - is_eos.int()) == 0
        lengths = valid.sum(dim=1).clamp(min=1)
        if getattr(out, "logits", None) is not None:
            logits = torch.stack(out.logits, dim=1).float()
            logp = torch.log_softmax(logits, dim=-1).gather(-1, generated.unsqueeze(-1)).squeeze(-1)
            scores = torch.where(valid, logp, torch.zeros_like(logp)).sum(dim=1) / lengths
        else:
            scores = out.sequences_scores.float()
        texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        flat = [
            Candidate(text, float(score), int(length))
            for text, score, length in zip(texts, scores.tolist(), lengths.tolist())
        ]
        return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]

    @torch.inference_mode()
    def score(self, prompts: list[str], targets: list[str]) -> list[tuple[float, int]]:
        """(summed log-probability, tokens) of each target reply, end token included."""
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        labels = self.tokenizer(targets, return_tensors="pt", padding=True)["input_ids"].to(self.device)
        valid = labels != self.tokenizer.pad_token_id
        labels = labels.masked_fill(~valid, -100)
        logits = self.model(**enc, labels=labels).logits.float()
        logp = torch.log_softmax(logits, dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        sums = torch.where(valid, logp, torch.zeros_like(logp)).sum(dim=1)
        return [(float(s), int(n)) for s, n in zip(sums.tolist(), valid.sum(dim=1).tolist())]

    def close(self) -> None:
        """Drop the model so its memory can be freed."""
        self.model = None
        if self.device == "cuda":
            torch.cuda.empty_cache()
