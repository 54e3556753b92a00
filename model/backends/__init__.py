"""Backends that decode for the worker, and the one function that picks and loads one.

Importing this package does not import torch or CTranslate2; `load_backend` does, lazily.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from config.settings import ModelSettings, WorkerSettings
from model.backends.base import Backend, BackendLoader
from model.loading import resolve_source
from model.types import ModelLoadError

BACKENDS = ("transformers", "ctranslate2")

log = logging.getLogger(__name__)

__all__ = ["BACKENDS", "Backend", "BackendLoader", "choose_backend", "load_backend"]


def _cuda_visible() -> bool:
    import torch

    return torch.cuda.is_available()


def choose_backend(settings: ModelSettings) -> str:
    """The backend "auto" stands for on this machine.

    On a GPU: transformers in bf16. On CPU: CTranslate2 int8 when it is installed (fastest for
    a lone request and 4x smaller than fp32; see bench/inference.py), else transformers int8.
    """
    name = settings.backend
    if name != "auto":
        if name not in BACKENDS:
            raise ModelLoadError(f"unknown backend {name!r}; use one of auto, {', '.join(BACKENDS)}")
        return name
    on_gpu = settings.device == "cuda" or (settings.device == "auto" and _cuda_visible())
    if on_gpu or importlib.util.find_spec("ctranslate2") is None:
        return "transformers"
    return "ctranslate2"


def load_backend(model: ModelSettings, worker: WorkerSettings, adapter_dir: Path | None) -> Backend:
    """Load the configured backend for the base model plus `adapter_dir` (None: base alone).

    Raises `ModelLoadError` (base model, backend) or `AdapterError` (adapter directory).
    """
    name = choose_backend(model)
    source = resolve_source(model.base, adapter_dir)
    if name == "transformers":
        from model.backends.hf import TransformersBackend

        return TransformersBackend.load(source, model.device, model.dtype, worker.threads)
    from model.backends.ct2 import CTranslate2Backend, CTranslate2Error

    try:
        return CTranslate2Backend.load(source, model.cache_dir, model.device, model.dtype, worker.threads)
    except CTranslate2Error as exc:
        if model.backend != "auto":
            raise
        # "auto" means the fastest backend that works here: the next best is transformers.
        log.warning("CTranslate2 failed, serving with transformers instead: %s", exc)
    from model.backends.hf import TransformersBackend

    return TransformersBackend.load(source, model.device, model.dtype, worker.threads)
