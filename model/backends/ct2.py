"""The CTranslate2 backend: the merged model converted once, cached by adapter version.

On first use the merged float32 model is saved with the real tokenizer into a scratch
directory, converted with CTranslate2's transformers converter into
`<cache_dir>/<version>-<hash>/ct2-<quantization>/` (int8 on CPU: 0.75 GB instead of 3 GB),
and the scratch copy is deleted. Later starts load the cached directory directly.

Pitfalls handled here (measured with transformers 5):
- T5's config always reports `tie_word_embeddings=True` now and keeps the real switch in
  `scale_decoder_outputs`; the converter reads the former and would scale the decoder output
  by d_model**-0.5, which keeps greedy tokens but corrupts every score and all sampling.
- The tokenizer must be saved beside the merged weights, or the converter writes a wrong
  vocabulary without complaint.
- `translate_batch` defaults to `beam_size=2`, so it is always given explicitly.
- Results carry token strings, not ids.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from model.backends.blocking import BanCache
from model.generation import Candidate, GenerationParams
from model.loading import ModelSource, load_merged_model, load_tokenizer
from model.types import ModelLoadError

log = logging.getLogger(__name__)


class CTranslate2Error(ModelLoadError):
    """CTranslate2 itself failed (cache not writable, conversion, loading the converted model).

    The "auto" backend falls back to transformers on this error.
    """


COMPUTE_TYPES = {
    # (device, configured dtype) -> CTranslate2 compute type (also the stored quantization)
    ("cpu", "auto"): "int8",
    ("cpu", "int8"): "int8",
    ("cpu", "float32"): "float32",
    ("cpu", "bfloat16"): "bfloat16",
    ("cuda", "auto"): "int8_float16",
    ("cuda", "int8"): "int8_float16",
    ("cuda", "float32"): "float32",
    ("cuda", "bfloat16"): "bfloat16",
}


def ct2_device(device: str) -> str:
    """ "cpu" or "cuda" as CTranslate2 sees the machine (its CUDA build may differ from torch's)."""
    import ctranslate2

    has_cuda = ctranslate2.get_cuda_device_count() > 0
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if device == "cuda" and not has_cuda:
        raise ModelLoadError("PUNCHLINE_MODEL__DEVICE=cuda, but CTranslate2 sees no CUDA device")
    return device


def compute_type(device: str, dtype: str) -> str:
    """The CTranslate2 compute type for a device and configured dtype."""
    try:
        return COMPUTE_TYPES[(device, dtype)]
    except KeyError:
        raise ModelLoadError(f"unknown dtype {dtype!r} for ctranslate2 on {device}") from None


def _converter_class() -> type:
    from ctranslate2.converters import TransformersConverter

    class T5Converter(TransformersConverter):
        """Reads the decoder-output scaling from `scale_decoder_outputs` (see module doc)."""

        def load_model(self, model_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
            model = super().load_model(model_class, model_name_or_path, **kwargs)
            scale = getattr(model.config, "scale_decoder_outputs", None)
            if scale is not None:
                model.config.tie_word_embeddings = bool(scale)
            return model

    return T5Converter


def converted_dir(source: ModelSource, cache_dir: Path, quantization: str) -> Path:
    """Where the converted model for `source` lives in the cache."""
    return Path(cache_dir) / source.cache_key / f"ct2-{quantization}"


def convert(source: ModelSource, cache_dir: Path, quantization: str) -> Path:
    """Convert the merged model into the cache (once) and return its directory.

    Base model and adapter problems raise what model.loading raises; anything that goes wrong
    in writing or converting raises `CTranslate2Error`.
    """
    out = converted_dir(source, cache_dir, quantization)
    if (out / "model.bin").is_file():
        return out
    scratch = out.parent / f".merged-{os.getpid()}"
    partial = out.parent / f".ct2-{quantization}-{os.getpid()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CTranslate2Error(f"cannot create the model cache under {cache_dir}: {exc}") from None
    try:
        model = load_merged_model(source)
        # Logged once the model has loaded, so a base model that cannot load is one error line.
        log.info("converting %s (version %s) for CTranslate2 %s", source.base, source.version, quantization)
        try:
            _write_converted(source, model, scratch, partial, quantization)
        except Exception as exc:  # noqa: BLE001 - converter failures vary; say which one
            raise CTranslate2Error(
                f"cannot convert {source.base} (version {source.version}) for CTranslate2 "
                f"under {cache_dir}: {type(exc).__name__}: {exc}"
            ) from None
        if out.exists():  # another process won the race
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.rename(out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(partial, ignore_errors=True)
    return out


def _write_converted(
    source: ModelSource, model: Any, scratch: Path, partial: Path, quantization: str
) -> None:
    """Save the merged model with the real tokenizer, then convert it into `partial`."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(scratch)
    load_tokenizer(source).save_pretrained(scratch)
    _converter_class()(str(scratch)).convert(str(partial), quantization=quantization, force=True)
    record = {
        "base": source.base,
        "adapter_dir": str(source.adapter_dir) if source.adapter_dir else None,
        "version": source.version,
        "quantization": quantization,
    }
    (partial / "punchline-source.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


class CTranslate2Backend:
    """Decodes with `ctranslate2.Translator.translate_batch`."""

    def __init__(self, translator: Any, tokenizer: Any, source: ModelSource, ctype: str) -> None:
        self.translator = translator
        self.tokenizer = tokenizer
        self.version = source.version
        self.prompt_template = source.prompt_template
        self.name = f"ctranslate2-{ctype}" + ("-cuda" if translator.device == "cuda" else "")
        self._bans = BanCache(tokenizer)

    @classmethod
    def load(
        cls,
        source: ModelSource,
        cache_dir: Path,
        device: str = "auto",
        dtype: str = "auto",
        threads: int = 0,
    ) -> CTranslate2Backend:
        """Convert (first use) and load the model described by `source`."""
        import ctranslate2

        device = ct2_device(device)
        ctype = compute_type(device, dtype)
        model_dir = convert(source, cache_dir, ctype)
        try:
            translator = ctranslate2.Translator(
                str(model_dir), device=device, compute_type=ctype, intra_threads=threads
            )
        except (RuntimeError, ValueError) as exc:
            raise CTranslate2Error(f"CTranslate2 cannot load {model_dir}: {exc}") from None
        return cls(translator, load_tokenizer(source), source, ctype)

    def _options(self, n: int, params: GenerationParams) -> dict[str, Any]:
        options: dict[str, Any] = dict(
            max_decoding_length=params.max_new_tokens,
            min_decoding_length=params.min_new_tokens,
            repetition_penalty=params.repetition_penalty,
            no_repeat_ngram_size=params.no_repeat_ngram_size,
            return_scores=True,
            return_end_token=True,
            length_penalty=1.0,
        )
        if params.blocked:
            options["suppress_sequences"] = self._bans.tokens(params.blocked)
        if params.do_sample:
            # n samples per source from one encoder pass; scores are the model's raw
            # log-probabilities (before temperature), like the transformers backend's.
            options.update(
                beam_size=1,
                num_hypotheses=n,
                sampling_topk=params.top_k,  # 0: the whole vocabulary
                sampling_topp=params.top_p,
                sampling_temperature=params.temperature,
            )
        else:
            options.update(beam_size=n, num_hypotheses=n, sampling_topk=1)
        return options

    def generate(self, prompts: list[str], n: int, params: GenerationParams) -> list[list[Candidate]]:
        """`n` candidates per prompt."""
        sources = [self.tokenizer.convert_ids_to_tokens(ids) for ids in self.tokenizer(prompts)["input_ids"]]
        results = self.translator.translate_batch(sources, **self._options(n, params))
        per_prompt: list[list[Candidate]] = []
        for result in results:
            candidates = []
            for tokens, score in zip(result.hypotheses, result.scores):
                ids = self.tokenizer.convert_tokens_to_ids(tokens)
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                candidates.append(Candidate(text, float(score), len(tokens)))
            per_prompt.append(candidates)
        return per_prompt

    def score(self, prompts: list[str], targets: list[str]) -> list[tuple[float, int]]:
        """(summed log-probability, tokens) of each target reply, end token included."""
        sources = [self.tokenizer.convert_ids_to_tokens(ids) for ids in self.tokenizer(prompts)["input_ids"]]
        # CTranslate2 appends the end token to each target itself.
        ids = self.tokenizer(targets, add_special_tokens=False)["input_ids"]
        results = self.translator.score_batch(sources, [self.tokenizer.convert_ids_to_tokens(t) for t in ids])
        return [(float(sum(r.log_probs)), len(r.log_probs)) for r in results]

    def close(self) -> None:
        """Release the translator's memory."""
        self.translator = None
