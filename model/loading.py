"""Finding and loading the base model, its tokenizer and an adapter directory.

`resolve_source` checks everything that can be checked without torch (the base model
directory, the adapter's `punchline.json`, its files, the base model it was made for) and
raises `ModelLoadError` / `AdapterError` with one clear line. `load_merged_model` then loads
the weights and merges the LoRA adapter into them in float32 (merged weights decode ~9% faster
than an unmerged adapter, and merging in fp32 before any cast keeps the update exact).
The base model and its tokenizer load through `model.base_model`, as training's do, so both
give the same errors (and an unreachable hub id fails in seconds).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model import base_model
from model.adapter_meta import AdapterMetadata, same_base_model
from model.prompt import DEFAULT_TEMPLATE
from model.types import BASE_VERSION, AdapterError, ModelLoadError

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

ADAPTER_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")


@dataclass(frozen=True, slots=True)
class ModelSource:
    """A checked base model reference plus an optional adapter directory and its metadata."""

    base: str  # as configured: a hub id or a directory
    base_dir: Path | None  # the local directory, when `base` is one
    adapter_dir: Path | None = None
    metadata: AdapterMetadata | None = None
    adapter_digest: str = ""  # sha256 of the adapter weights: a cache never serves stale weights

    @property
    def version(self) -> str:
        """The adapter's version id, or "base" without an adapter."""
        return self.metadata.version if self.metadata else BASE_VERSION

    @property
    def prompt_template(self) -> str:
        """The template the adapter learned with (the default one for the bare base model)."""
        return self.metadata.prompt_template if self.metadata else DEFAULT_TEMPLATE

    @property
    def base_ref(self) -> str:
        """What `from_pretrained` gets for the base model."""
        return str(self.base_dir) if self.base_dir else self.base

    @property
    def cache_key(self) -> str:
        """A directory name unique to this base model and adapter version (conversion caches).

        The version id is for people; the hash of the base model's location and the adapter's
        weights keeps two base models, or an adapter rewritten under the same version id, from
        ever sharing a cache entry.
        """
        key = f"{self.base_ref}\n{self.adapter_digest}".encode()
        return f"{self.version}-{hashlib.sha256(key).hexdigest()[:10]}"


def resolve_adapter(adapter_dir: Path, base: str) -> AdapterMetadata:
    """The adapter's metadata after checking its files and its base model."""
    adapter_dir = Path(adapter_dir)
    meta = AdapterMetadata.load(adapter_dir)  # missing dir / punchline.json / corrupt json
    if not (adapter_dir / "adapter_config.json").is_file() or not any(
        (adapter_dir / name).is_file() for name in ADAPTER_WEIGHT_FILES
    ):
        raise AdapterError(
            f"{adapter_dir} has no adapter weights (adapter_config.json and "
            "adapter_model.safetensors, as PeftModel.save_pretrained writes them)"
        )
    if "{setup}" not in meta.prompt_template:
        raise AdapterError(f"{adapter_dir}: its prompt template lacks '{{setup}}'")
    if not same_base_model(base, meta.base_model):
        raise AdapterError(
            f"adapter {adapter_dir} (version {meta.version}) was trained on base model "
            f"{meta.base_model!r}, but the configured base model is {base!r} "
            "(PUNCHLINE_MODEL__BASE)"
        )
    return meta


def resolve_source(base: str, adapter_dir: Path | None) -> ModelSource:
    """Check the base model reference and the adapter directory without loading weights."""
    base_dir = base_model.local_model_dir(base)
    if adapter_dir is None:
        return ModelSource(base, base_dir)
    adapter_dir = Path(adapter_dir)
    meta = resolve_adapter(adapter_dir, base)
    return ModelSource(base, base_dir, adapter_dir, meta, _weights_digest(adapter_dir))


def _weights_digest(adapter_dir: Path) -> str:
    """A short hash of the adapter's weight file (LoRA weights are a few MB)."""
    digest = hashlib.sha256()
    for name in ADAPTER_WEIGHT_FILES:
        path = adapter_dir / name
        if path.is_file():
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            break
    return digest.hexdigest()[:16]


def resolve_device(device: str) -> str:
    """ "cpu" or "cuda"; "auto" picks cuda when a GPU is visible."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("PUNCHLINE_MODEL__DEVICE=cuda, but no CUDA device is visible")
    return device


def load_tokenizer(source: ModelSource) -> Any:
    """The base model's tokenizer (AutoTokenizer: T5Tokenizer(vocab_file=...) is wrong in 5.x)."""
    return base_model.load_tokenizer(source.base_ref)


def load_merged_model(source: ModelSource) -> torch.nn.Module:
    """The base model in float32 with the adapter (if any) merged into its weights, in eval mode."""
    import torch

    model = base_model.load_base_model(source.base_ref, dtype=torch.float32)
    if source.adapter_dir is not None:
        from peft import PeftModel

        try:
            peft_model = PeftModel.from_pretrained(model, str(source.adapter_dir))
            model = peft_model.merge_and_unload()
        except Exception as exc:  # noqa: BLE001
            raise AdapterError(
                f"cannot load the adapter in {source.adapter_dir}: {base_model.error_line(exc)}"
            ) from None
    model.eval()
    log.info("loaded %s (version %s)", source.base, source.version)
    return model
