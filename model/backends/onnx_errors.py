"""What the ONNX Runtime backend raises: one line a person can act on, never a traceback."""

from __future__ import annotations

from model.types import ModelLoadError


class OnnxBackendError(ModelLoadError):
    """ONNX Runtime itself failed: the cache cannot be written, an export, a quantisation or a
    session failed to build. The "auto" backend falls back to the next backend on this error."""


class OnnxExportError(OnnxBackendError):
    """The exported graphs disagree with transformers' own logits beyond the tolerance: a wrong
    export is refused at export time, never served."""
