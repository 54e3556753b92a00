"""Backends that decode for the worker, and the one function that picks and loads one.

Importing this package does not import torch, CTranslate2 or ONNX Runtime; `load_backend`
does, lazily.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from config.settings import ModelSettings, WorkerSettings
from model.backends.base import Backend, BackendLoader
from model.loading import ModelSource, resolve_source
from model.types import ModelLoadError

BACKENDS = ("transformers", "ctranslate2", "onnxruntime")
# What "auto" tries on CPU, fastest first (bench/inference.py), while the engine is installed.
CPU_PREFERENCE = ("onnxruntime", "ctranslate2")

log = logging.getLogger(__name__)

__all__ = ["BACKENDS", "Backend", "BackendLoader", "choose_backend", "load_backend"]


def _cuda_visible() -> bool:
    import torch

    return torch.cuda.is_available()


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def choose_backend(settings: ModelSettings) -> str:
    """The backend "auto" stands for on this machine.

    On a GPU: transformers in bf16. On CPU: ONNX Runtime int8 when it is installed (1.7x as
    fast as CTranslate2 int8 alone and at 32 setups at once; see bench/inference.py), else
    CTranslate2 int8, else transformers int8.
    """
    return _candidates(settings)[0]


def _candidates(settings: ModelSettings) -> list[str]:
    """The backends to try in order: the configured one alone, or what "auto" means here."""
    name = settings.backend
    if name != "auto":
        if name not in BACKENDS:
            raise ModelLoadError(f"unknown backend {name!r}; use one of auto, {', '.join(BACKENDS)}")
        return [name]
    on_gpu = settings.device == "cuda" or (settings.device == "auto" and _cuda_visible())
    if on_gpu:
        return ["transformers"]
    return [b for b in CPU_PREFERENCE if _installed(b)] + ["transformers"]


def load_backend(model: ModelSettings, worker: WorkerSettings, adapter_dir: Path | None) -> Backend:
    """Load the configured backend for the base model plus `adapter_dir` (None: base alone).

    With "auto", an engine that fails to convert or load (`CTranslate2Error`,
    `OnnxBackendError`) gives way to the next one, down to transformers.
    Raises `ModelLoadError` (base model, backend) or `AdapterError` (adapter directory).
    """
    source = resolve_source(model.base, adapter_dir)
    names = _candidates(model)
    for name in names[:-1]:
        try:
            return _load(name, source, model, worker)
        except ModelLoadError as exc:
            if not _engine_failure(exc):
                raise
            # "auto" means the fastest backend that works here: try the next best.
            log.warning("%s failed, trying the next backend: %s", name, exc)
    return _load(names[-1], source, model, worker)


def _engine_failure(exc: ModelLoadError) -> bool:
    """Whether the engine itself failed (another backend may work), not the model."""
    from model.backends.ct2 import CTranslate2Error
    from model.backends.onnx_errors import OnnxBackendError

    return isinstance(exc, (CTranslate2Error, OnnxBackendError))


def _load(name: str, source: ModelSource, model: ModelSettings, worker: WorkerSettings) -> Backend:
    if name == "onnxruntime":
        from model.backends.onnx import OnnxRuntimeBackend

        return OnnxRuntimeBackend.load(source, model.cache_dir, model.device, model.dtype, worker.threads)
    if name == "ctranslate2":
        from model.backends.ct2 import CTranslate2Backend

        return CTranslate2Backend.load(source, model.cache_dir, model.device, model.dtype, worker.threads)
    from model.backends.hf import TransformersBackend

    return TransformersBackend.load(source, model.device, model.dtype, worker.threads)
