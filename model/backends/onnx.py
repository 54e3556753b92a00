"""The ONNX Runtime backend: the merged model exported once, quantised, cached by adapter version.

Its life, in the calls it makes:

    source = resolve_source(base, adapter_dir)             # model.loading: checks, no weights
    directory = ensure_export(source, cache_dir, "int8")   # export + validate + quantise, once
    sessions = T5Sessions.open(encoder, decoder, shape)    # onnx_session: two ORT sessions
    state = sessions.encode(input_ids, attention_mask, n)  # encoder once per prompt
    onnx_decoding.sample(state, params, special)           # or beam_search: the decode loop

dtype "auto" / "int8" serves the int8 graphs, "float32" the unquantised export. Measured with
flan-t5-large's architecture on 2 CPU cores (bench/inference.py, README): 1.7x as fast as
CTranslate2 int8 for a lone setup and 1.7x its jokes/s for 32 at once, in 0.6 GB more memory.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from model.backends import onnx_cache, onnx_decoding
from model.backends.blocking import BanCache
from model.backends.onnx_decoding import Hypothesis, SpecialTokens
from model.backends.onnx_errors import OnnxBackendError
from model.backends.onnx_export import DECODER_FILE, ENCODER_FILE, ExportRecord, export_model
from model.backends.onnx_session import GraphShape, T5Sessions
from model.generation import Candidate, GenerationParams
from model.loading import ModelSource, load_merged_model, load_tokenizer

log = logging.getLogger(__name__)


def pick_quantization(dtype: str, device: str) -> str:
    """What the configured dtype means here: the quantised graphs on CPU, float32 on a GPU
    (ONNX Runtime's int8 MatMul kernels are CPU kernels)."""
    if dtype == "float32" or (dtype == "auto" and device == "cuda"):
        return "float32"
    if dtype in ("auto", "int8"):
        if device == "cuda":
            raise OnnxBackendError(
                "the onnxruntime backend quantises for CPU only; use dtype float32 on a GPU"
            )
        return "int8"
    raise OnnxBackendError(f"dtype {dtype!r} is not available with onnxruntime; use auto, int8 or float32")


def resolve_ort_device(device: str) -> str:
    """ "cpu", or "cuda" where this onnxruntime has a CUDA provider and it was asked for."""
    import onnxruntime as ort

    if device == "auto":
        return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
    return device


def ensure_export(source: ModelSource, cache_dir: Path, quantization: str) -> Path:
    """The cache entry for `source`, exported first if it is missing, corrupt or stale.

    Raises `OnnxBackendError` (cache not writable, export or quantisation failed),
    `OnnxExportError` (the export disagrees with transformers), or what model.loading raises
    for the base model and the adapter.
    """
    directory = onnx_cache.entry_dir(source, cache_dir, quantization)
    why = onnx_cache.problem(directory, source, quantization)
    if why is None:
        return directory
    if directory.exists():
        log.warning("rebuilding the ONNX cache entry %s: %s", directory, why)
        onnx_cache.discard(directory)
    with onnx_cache.scratch(directory) as work:
        record = export_model(functools.partial(_load_logged, source, quantization), work, quantization)
        onnx_cache.install(work, directory, _manifest_fields(source, quantization, record))
    return directory


def _load_logged(source: ModelSource, quantization: str) -> Any:
    model = load_merged_model(source)
    # Logged once the model has loaded, so a base model that cannot load is one error line.
    log.info("exporting %s (version %s) to ONNX %s", source.base, source.version, quantization)
    return model


def _manifest_fields(source: ModelSource, quantization: str, record: ExportRecord) -> dict[str, Any]:
    import datetime

    import onnx
    import onnxruntime
    import torch

    return dict(
        cache_key=source.cache_key,
        version=source.version,
        base=source.base,
        adapter_dir=str(source.adapter_dir) if source.adapter_dir else None,
        quantization=quantization,
        base_weights=onnx_cache.base_weights(source),
        layers=record.shape.layers,
        heads=record.shape.heads,
        d_kv=record.shape.d_kv,
        decoder_start_token_id=record.decoder_start_token_id,
        fp32_max_error=record.fp32_max_error,
        quantized_error=record.quantized_error,
        tools={"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )


def open_entry(
    source: ModelSource, cache_dir: Path, quantization: str, threads: int, device: str
) -> tuple[T5Sessions, onnx_cache.Manifest]:
    """Sessions over the cached export and its manifest; an entry ONNX Runtime cannot load
    is rebuilt once."""
    for attempt in (1, 2):
        directory = ensure_export(source, cache_dir, quantization)
        manifest = onnx_cache.Manifest.read(directory)
        if manifest is None:  # deleted under our feet
            continue
        shape = GraphShape(manifest.layers, manifest.heads, manifest.d_kv)
        try:
            sessions = T5Sessions.open(
                directory / ENCODER_FILE, directory / DECODER_FILE, shape, threads, device
            )
        except OnnxBackendError as exc:
            if attempt == 2:
                raise
            log.warning("rebuilding the ONNX cache entry %s: %s", directory, exc)
            onnx_cache.discard(directory)
            continue
        return sessions, manifest
    raise OnnxBackendError(f"the ONNX cache entry under {cache_dir} keeps disappearing")


def _single_threaded_torch() -> None:
    """Run the decode loop's torch work (log-softmax, logits processors) on one thread.

    ONNX Runtime owns the cores; a torch op that wakes a second thread waits for a core the
    sessions (or another process) hold: measured 5.6 ms for one (1, 32128) logsumexp with two
    threads against 0.05 ms with one, a third of a lone reply's time. Torch has no per-thread
    setting, and in a process serving ONNX Runtime nothing else needs torch's threads.
    """
    import torch

    torch.set_num_threads(1)


class OnnxRuntimeBackend:
    """Decodes with ONNX Runtime sessions and the loop in `onnx_decoding` (implements Backend)."""

    def __init__(
        self, sessions: T5Sessions, tokenizer: Any, source: ModelSource, name: str, start_token: int
    ) -> None:
        self.sessions: T5Sessions | None = sessions
        self.tokenizer = tokenizer
        self.version = source.version
        self.prompt_template = source.prompt_template
        self.name = name
        self.special = SpecialTokens(start_token, int(tokenizer.eos_token_id), int(tokenizer.pad_token_id))
        self._bans = BanCache(tokenizer)

    @classmethod
    def load(
        cls,
        source: ModelSource,
        cache_dir: Path,
        device: str = "auto",
        dtype: str = "auto",
        threads: int = 0,
    ) -> OnnxRuntimeBackend:
        """Export (first use) and open the model described by `source`.

        Raises `OnnxBackendError` for a dtype or device it cannot serve, and what
        `ensure_export` raises.
        """
        device = resolve_ort_device(device)
        quantization = pick_quantization(dtype, device)
        tokenizer = load_tokenizer(source)
        sessions, manifest = open_entry(source, cache_dir, quantization, threads, device)
        _single_threaded_torch()
        name = f"onnxruntime-{quantization}" + ("-cuda" if device == "cuda" else "")
        return cls(sessions, tokenizer, source, name, manifest.decoder_start_token_id)

    def _encode(self, prompts: list[str], repeats: int) -> onnx_decoding.StepState:
        if self.sessions is None:
            raise RuntimeError("the backend is closed")
        enc = self.tokenizer(prompts, return_tensors="np", padding=True)
        return self.sessions.encode(enc["input_ids"], enc["attention_mask"], repeats)

    def generate(self, prompts: list[str], n: int, params: GenerationParams) -> list[list[Candidate]]:
        """`n` candidates per prompt: n samples, greedy (n = 1) or n beams (greedy, n > 1); the
        phrases in `params.blocked` are banned (model.backends.blocking)."""
        banned = self._bans.ids(params.blocked)
        if params.do_sample or n == 1:
            flat = onnx_decoding.sample(self._encode(prompts, n), params, self.special, banned=banned)
            per_prompt = [flat[i * n : (i + 1) * n] for i in range(len(prompts))]
        else:
            per_prompt = onnx_decoding.beam_search(
                self._encode(prompts, n), len(prompts), n, params, self.special, banned
            )
        return [[self._candidate(h) for h in hypotheses] for hypotheses in per_prompt]

    def _candidate(self, hypothesis: Hypothesis) -> Candidate:
        text = self.tokenizer.decode(hypothesis.tokens, skip_special_tokens=True)
        return Candidate(text, hypothesis.score, max(1, len(hypothesis.tokens)))

    def score(self, prompts: list[str], targets: list[str]) -> list[tuple[float, int]]:
        """(summed log-probability, tokens) of each target reply, end token included."""
        ids = [list(t) for t in self.tokenizer(targets)["input_ids"]]  # the tokenizer appends </s>
        sums = onnx_decoding.teacher_force(self._encode(prompts, 1), ids, self.special)
        return [(float(s), len(t)) for s, t in zip(sums, ids)]

    def close(self) -> None:
        """Drop the sessions so their memory can be freed."""
        self.sessions = None


__all__ = ["OnnxRuntimeBackend", "ensure_export"]
