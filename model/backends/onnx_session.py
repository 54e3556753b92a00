"""ONNX Runtime sessions over the exported T5 graphs: encode a batch once, then step the decoder.

Inputs and outputs stay `OrtValue`s between steps (`run_with_ort_values`, ONNX Runtime's I/O
binding without the bookkeeping): the cross-attention keys and values are bound once per batch
and each step's grown self-attention cache is fed straight back, so no cache is copied into or
out of numpy except when rows are reordered (beam search) or dropped (finished rows).

Threads (measured on 2 cores, flan-t5-large int8, 16-token replies): intra-op threads = the
worker's `THREADS` (0: one per core), one inter-op thread with sequential execution (a decoder
step is a chain of matmuls; parallel branches would only contend for the same cores), and
spinning for at most 50 us between ops, stopped at the end of each run:

| spinning                    | idle machine: alone, 32 at once | one other busy process |
| --------------------------- | ------------------------------- | ---------------------- |
| none                        | 0.46 s, 1.33 s                  | 0.56 s, 1.65 s         |
| ORT's default, stop per run | 0.36 s, 1.08 s                  | 0.74 s, 2.30 s         |
| 50 us, stop per run         | 0.35 s, 1.09 s                  | 0.64 s, 1.99 s         |

A bot usually has its small server to itself, where spinning pays; the short spin keeps most of
that and loses less when something else runs there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from model.backends.onnx_errors import OnnxBackendError
from model.backends.onnx_graphs import cross_names, past_names, present_names


@dataclass(frozen=True, slots=True)
class GraphShape:
    """The sizes a caller needs to feed the graphs (recorded in the cache manifest)."""

    layers: int
    heads: int
    d_kv: int


def session_options(threads: int) -> ort.SessionOptions:
    """Options for both sessions; see the module docstring for why these."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: ORT's warnings are about its own fusions
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.intra_op.spin_duration_us", "50")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    # Attention probabilities far below the largest underflow into denormals, which x86 handles
    # on a slow path: flushing them to zero (below 1e-38, nothing a logit feels) made a batch
    # of 32 replies 6% faster.
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    return options


def providers_for(device: str) -> list[str]:
    """Execution providers for "cpu" or "cuda" (the latter needs onnxruntime-gpu)."""
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise OnnxBackendError(
                "PUNCHLINE_MODEL__DEVICE=cuda, but this onnxruntime has no CUDA provider "
                "(install onnxruntime-gpu, or use another backend on the GPU)"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _ortvalue(array: np.ndarray) -> Any:
    return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array))


class T5Sessions:
    """The encoder and decoder-step sessions of one exported model."""

    def __init__(self, encoder: Any, decoder: Any, shape: GraphShape) -> None:
        self.encoder = encoder
        self.decoder = decoder
        self.shape = shape
        self._cross = cross_names(shape.layers)

    @classmethod
    def open(
        cls, encoder_path: Path, decoder_path: Path, shape: GraphShape, threads: int = 0, device: str = "cpu"
    ) -> T5Sessions:
        """Load both graphs. Raises `OnnxBackendError` when ONNX Runtime cannot (a corrupt or
        truncated file, an unknown operator)."""
        options, providers = session_options(threads), providers_for(device)
        try:
            encoder = ort.InferenceSession(str(encoder_path), options, providers=providers)
            decoder = ort.InferenceSession(str(decoder_path), options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own types (Fail, InvalidProtobuf, ...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OnnxBackendError(f"ONNX Runtime cannot load {encoder_path.parent}: {first}") from None
        return cls(encoder, decoder, shape)

    def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray, repeats: int = 1) -> DecoderState:
        """Run the encoder on a padded batch; a decoder state with `repeats` rows per prompt."""
        feeds = {
            "input_ids": _ortvalue(input_ids.astype(np.int64)),
            "attention_mask": _ortvalue(attention_mask),
        }
        cross = self.encoder.run_with_ort_values(self._cross, feeds)
        mask = attention_mask.astype(np.int64)
        state = DecoderState(self.decoder, self.shape, list(cross), mask)
        if repeats > 1:
            state.select(np.repeat(np.arange(len(input_ids)), repeats))
        return state


class DecoderState:
    """One batch's decoder inputs that live between steps (implements onnx_decoding.StepState)."""

    def __init__(self, decoder: Any, shape: GraphShape, cross: list[Any], mask: np.ndarray) -> None:
        self._decoder = decoder
        self._shape = shape
        self._cross = cross
        self._mask = mask
        self._mask_value = _ortvalue(mask)
        empty = np.zeros((len(mask), shape.heads, 0, shape.d_kv), dtype=np.float32)
        self._past: list[Any] = [_ortvalue(empty) for _ in range(2 * shape.layers)]
        self._inputs = ["input_ids", "attention_mask", *past_names(shape.layers), *cross_names(shape.layers)]
        self._outputs = ["logits", *present_names(shape.layers)]

    @property
    def rows(self) -> int:
        return len(self._mask)

    def step(self, tokens: np.ndarray) -> np.ndarray:
        """Feed one token per row; the next-token logits, float32 (rows, vocab)."""
        values = [
            _ortvalue(tokens.astype(np.int64).reshape(-1, 1)),
            self._mask_value,
            *self._past,
            *self._cross,
        ]
        outputs = self._decoder.run_with_ort_values(self._outputs, dict(zip(self._inputs, values)))
        self._past = list(outputs[1:])
        return outputs[0].numpy()

    def select(self, rows: np.ndarray, within_prompts: bool = False) -> None:
        """Keep `rows` (repeats allowed), in that order: beam reordering, dropping ended rows.

        `within_prompts`: rows only move among the rows of their own prompt (beams), so the
        encoder's keys and values, the same for all of them, are left as they are.
        """
        self._past = [_ortvalue(v.numpy()[rows]) for v in self._past]
        if not within_prompts:
            self._cross = [_ortvalue(v.numpy()[rows]) for v in self._cross]
        self._mask = self._mask[rows]
        self._mask_value = _ortvalue(self._mask)
