"""Exporting a merged T5 to ONNX, checking it against transformers, and quantising it.

`export_model` does it all into one (scratch) directory:

1. the merged float32 model's logits for a small fixed batch (uneven prompt lengths, a few
   decoder steps): the reference;
2. `torch.onnx.export` (the TorchScript exporter: the optimum exporter needs transformers < 5,
   and the dynamo exporter needs onnxscript) of the two graphs of `model.backends.onnx_graphs`,
   batch and sequence dimensions dynamic;
3. the float32 graphs run by ONNX Runtime on the same batch, step by step with the cache as
   serving runs them, must match the reference within `FP32_TOLERANCE`, or `OnnxExportError`;
4. quantisation: "int8" is `quantize_dynamic` on every MatMul with a constant weight (int8
   weights per output channel, activations quantised on the fly). The quantised graphs must
   still agree with the reference within `QUANTIZED_TOLERANCE` (a gross error, not int8's
   expected noise). 4-bit weights (`MatMulNBits`, blocks of 32, int8 compute) were measured
   and left out: no faster alone (30.6 against 31.0 ms a step) and 3.5x slower at batch 32.

Peak memory for flan-t5-large: about 9 GB, while tracing (a one-off, on first use).
"""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.backends.onnx_errors import OnnxBackendError, OnnxExportError
from model.backends.onnx_graphs import (
    DecoderStepGraph,
    EncoderGraph,
    cross_names,
    input_names,
    past_names,
    present_names,
)
from model.backends.onnx_session import GraphShape, T5Sessions

log = logging.getLogger(__name__)

QUANTIZATIONS = ("float32", "int8")
ENCODER_FILE, DECODER_FILE = "encoder.onnx", "decoder.onnx"
OPSET = 17
# Largest |ONNX - transformers| logit difference allowed, relative to the largest |logit|.
# float32: op order only (measured ~1e-6 on the tiny test model and on flan-t5-large).
FP32_TOLERANCE = 1e-3
# Quantised graphs: relative L2 error of all validation logits. int8 measured 0.073
# (flan-t5-large, random weights) and 0.023 (the tiny test model); a broken graph is near 1.
QUANTIZED_TOLERANCE = 0.5
VALIDATION_PROMPT_LENGTHS = (9, 6, 3)  # uneven, so padding and the masks are exercised
VALIDATION_STEPS = 5


@dataclass(frozen=True, slots=True)
class ExportRecord:
    """What an export produced, for the cache manifest."""

    shape: GraphShape
    decoder_start_token_id: int
    fp32_max_error: float  # relative to the largest |logit|
    quantized_error: float | None  # relative L2 error of the quantised graphs' logits


@dataclass(frozen=True, slots=True)
class ValidationBatch:
    input_ids: torch.Tensor  # (batch, source), right-padded
    attention_mask: torch.Tensor
    decoder_input_ids: torch.Tensor  # (batch, steps), the first is the decoder start token


def graph_shape(config: Any) -> GraphShape:
    return GraphShape(layers=config.num_decoder_layers, heads=config.num_heads, d_kv=config.d_kv)


def export_model(load_model: Callable[[], Any], directory: Path, quantization: str) -> ExportRecord:
    """Export, validate and quantise the model `load_model()` returns into `directory`.

    `load_model` is called once and its model dropped after tracing, so the float32 weights
    and the ONNX Runtime sessions that check them are not in memory together.
    Raises `OnnxExportError` when a graph disagrees with transformers, `OnnxBackendError` when
    exporting or quantising fails; base model and adapter errors pass through.
    """
    if quantization not in QUANTIZATIONS:
        raise OnnxBackendError(f"unknown ONNX quantisation {quantization!r}; use one of {QUANTIZATIONS}")
    model = load_model()
    shape = graph_shape(model.config)
    start_token = int(model.config.decoder_start_token_id)
    batch = validation_batch(model.config.vocab_size, start_token)
    reference = reference_logits(model, batch)
    fp32 = {"encoder": directory / "encoder.fp32.onnx", "decoder": directory / "decoder.fp32.onnx"}
    if quantization == "float32":
        fp32 = {"encoder": directory / ENCODER_FILE, "decoder": directory / DECODER_FILE}
    try:
        trace_graphs(model, shape, fp32["encoder"], fp32["decoder"])
    except Exception as exc:  # noqa: BLE001 - the tracer and exporter raise many types
        raise OnnxBackendError(
            f"torch.onnx.export failed: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    del model
    gc.collect()
    fp32_error = max_relative_error(reference, onnx_logits(fp32["encoder"], fp32["decoder"], shape, batch))
    if not fp32_error <= FP32_TOLERANCE:
        raise OnnxExportError(
            f"the exported ONNX graphs disagree with transformers: largest logit error "
            f"{fp32_error:.3g} of the largest logit (tolerance {FP32_TOLERANCE:g})"
        )
    if quantization == "float32":
        return ExportRecord(shape, start_token, fp32_error, None)
    for part, target in (("encoder", ENCODER_FILE), ("decoder", DECODER_FILE)):
        quantize(fp32[part], directory / target, quantization)
        fp32[part].unlink()
    quantized_error = l2_relative_error(
        reference, onnx_logits(directory / ENCODER_FILE, directory / DECODER_FILE, shape, batch)
    )
    if not quantized_error <= QUANTIZED_TOLERANCE:
        raise OnnxExportError(
            f"the {quantization} graphs disagree with transformers: relative logit error "
            f"{quantized_error:.3g} (tolerance {QUANTIZED_TOLERANCE:g})"
        )
    return ExportRecord(shape, start_token, fp32_error, quantized_error)


def validation_batch(vocab_size: int, start_token: int) -> ValidationBatch:
    """A fixed small batch of random tokens with uneven prompt lengths."""
    generator = torch.Generator().manual_seed(1234)
    rows, longest = len(VALIDATION_PROMPT_LENGTHS), max(VALIDATION_PROMPT_LENGTHS)
    input_ids = torch.randint(2, vocab_size, (rows, longest), generator=generator)
    attention_mask = torch.zeros(rows, longest, dtype=torch.long)
    for row, length in enumerate(VALIDATION_PROMPT_LENGTHS):
        attention_mask[row, :length] = 1
    input_ids = input_ids * attention_mask  # padding is token 0, as the tokenizer pads
    decoder_input_ids = torch.randint(2, vocab_size, (rows, VALIDATION_STEPS), generator=generator)
    decoder_input_ids[:, 0] = start_token
    return ValidationBatch(input_ids, attention_mask, decoder_input_ids)


def reference_logits(model: Any, batch: ValidationBatch) -> np.ndarray:
    """transformers' own logits for the batch (teacher forcing), (batch, steps, vocab)."""
    with torch.inference_mode():
        out = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            decoder_input_ids=batch.decoder_input_ids,
        )
    return out.logits.float().numpy()


def onnx_logits(encoder: Path, decoder: Path, shape: GraphShape, batch: ValidationBatch) -> np.ndarray:
    """The same logits from ONNX Runtime, one decoder step at a time as serving runs it."""
    sessions = T5Sessions.open(encoder, decoder, shape)
    state = sessions.encode(batch.input_ids.numpy(), batch.attention_mask.numpy())
    steps = [
        state.step(batch.decoder_input_ids[:, i].numpy()) for i in range(batch.decoder_input_ids.shape[1])
    ]
    return np.stack(steps, axis=1)


def max_relative_error(reference: np.ndarray, got: np.ndarray) -> float:
    """Largest absolute difference over the largest absolute reference value (inf on NaN)."""
    if got.shape != reference.shape or not np.isfinite(got).all():
        return float("inf")
    return float(np.abs(got - reference).max() / max(1e-6, float(np.abs(reference).max())))


def l2_relative_error(reference: np.ndarray, got: np.ndarray) -> float:
    """||got - reference|| / ||reference|| over all logits (inf on NaN or a shape mismatch)."""
    if got.shape != reference.shape or not np.isfinite(got).all():
        return float("inf")
    return float(np.linalg.norm(got - reference) / max(1e-6, float(np.linalg.norm(reference))))


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's and quantiser's advice (deprecation, tracer and pre-processing
    notes): the export is checked by numbers, and users should see one line, not pages."""
    root = logging.getLogger()
    advice = logging.Filter()
    advice.filter = lambda record: record.levelno >= logging.ERROR  # type: ignore[method-assign]
    root.addFilter(advice)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeFilter(advice)


def trace_graphs(model: Any, shape: GraphShape, encoder_path: Path, decoder_path: Path) -> None:
    """`torch.onnx.export` both graphs with dynamic batch and sequence dimensions. `model` is
    spent afterwards (its fused projections are emptied)."""
    layers = shape.layers
    encoder_inputs, decoder_inputs = input_names(layers)
    ids = torch.full((2, 4), 5, dtype=torch.long)
    mask = torch.ones(2, 4, dtype=torch.long)
    source = {0: "batch", 1: "source"}
    kv_source = {0: "batch", 2: "source"}
    # The graphs take over (release) the projections they fuse: the model only traces now.
    encoder, decoder = EncoderGraph(model, release=True).eval(), DecoderStepGraph(model, release=True).eval()
    with torch.inference_mode(False), torch.no_grad(), _quiet():
        cross = encoder(ids, mask)
        torch.onnx.export(
            encoder,
            (ids, mask),
            str(encoder_path),
            input_names=encoder_inputs,
            output_names=cross_names(layers),
            dynamic_axes={
                "input_ids": source,
                "attention_mask": source,
                **dict.fromkeys(cross_names(layers), kv_source),
            },
            opset_version=OPSET,
            dynamo=False,
            custom_opsets={"com.microsoft": 1},
        )
        # A non-empty past, so the trace records the concatenation for every length.
        past = [torch.zeros(2, shape.heads, 2, shape.d_kv) for _ in range(2 * layers)]
        axes: dict[str, dict[int, str]] = {
            "input_ids": {0: "batch"},
            "attention_mask": source,
            "logits": {0: "batch"},
        }
        axes.update(dict.fromkeys(past_names(layers), {0: "batch", 2: "past"}))
        axes.update(dict.fromkeys(present_names(layers), {0: "batch", 2: "past_and_new"}))
        axes.update(dict.fromkeys(cross_names(layers), kv_source))
        torch.onnx.export(
            decoder,
            (ids[:, :1], mask, *past, *cross),
            str(decoder_path),
            input_names=decoder_inputs,
            output_names=["logits", *present_names(layers)],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
            custom_opsets={"com.microsoft": 1},
        )


def quantize(source: Path, target: Path, quantization: str) -> None:
    """Quantise one graph's MatMul weights to int8: dynamic, per output channel.

    Per channel measured as fast as per tensor and closer to float32 (relative logit error
    0.073 against 0.081 on flan-t5-large with random weights).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with _quiet():
            quantize_dynamic(
                source,
                target,
                op_types_to_quantize=["MatMul"],
                per_channel=True,
                weight_type=QuantType.QInt8,
                extra_options={"MatMulConstBOnly": True},
            )
    except Exception as exc:  # noqa: BLE001 - the quantiser raises many types
        raise OnnxBackendError(
            f"cannot quantise {source.name} to {quantization}: {type(exc).__name__}: {_first_line(exc)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
