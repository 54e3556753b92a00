"""Loading the base model and its tokenizer, with errors people can act on.

The one home of base-model loading for training (`punchline train`, `compare`, `eval`) and
inference (`model.loading`, `punchline generate`): a local directory is checked before anything
is read, and a hub id that is neither cached nor reachable fails in seconds, not after a minute
of hub retries.

transformers 5 always ties T5's `lm_head` to the shared embedding when a model is built from a
config, while real flan-t5 checkpoints (`"tie_word_embeddings": false`) keep a separate head;
`build_meta_model` restores the real architecture so parameter counts and memory plans match.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from model.types import ModelLoadError

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)
_T = TypeVar("_T")

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def _is_local(name: str) -> bool:
    path = Path(name)
    return path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1


def error_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when the message is empty)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _load_error(name: str, what: str, exc: Exception) -> ModelLoadError:
    if _is_local(name):
        return ModelLoadError(f"cannot load the {what} from {name}: {error_line(exc)}")
    if not isinstance(exc, (OSError, ValueError)):  # not a missing file: say what it was
        return ModelLoadError(f"cannot load the {what} of {name!r}: {type(exc).__name__}: {error_line(exc)}")
    return ModelLoadError(
        f"cannot load the {what} of {name!r}: it is not a local directory and the Hugging Face hub "
        "did not provide it (no network, HF_HUB_OFFLINE set, or an unknown id); "
        "pass a local model directory"
    )


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers at all (checked before a download would retry for a
    minute without network)."""
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def _from_hub_or_cache(name: str, what: str, load: "Callable[..., _T]") -> "_T":
    """`load(name)` from the local cache, else from the hub; `ModelLoadError` when the hub
    cannot be reached (other failures are left to `_load`)."""
    try:
        return load(name, local_files_only=True)
    except (OSError, ValueError):
        pass
    if not hub_reachable():
        raise ModelLoadError(
            f"cannot load the {what} of {name!r}: it is not a local directory, not in the Hugging "
            "Face cache, and the hub cannot be reached (no network or HF_HUB_OFFLINE set); "
            "pass a local model directory"
        )
    return load(name)


def _load(name: str, what: str, load: "Callable[..., _T]", **kwargs: Any) -> "_T":
    """Load from a local directory or a hub id, turning any failure into one `ModelLoadError`
    line (a corrupt file raises all sorts of exceptions; none may reach people as a traceback)."""
    check_local_dir(name)
    try:
        if not _is_local(name):
            return _from_hub_or_cache(name, what, lambda n, **kw: load(n, **kwargs, **kw))
        return load(str(Path(name).expanduser()), **kwargs)
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - see the docstring
        raise _load_error(name, what, exc) from None


def check_local_dir(name: str) -> None:
    """Raise `ModelLoadError` for a local path that is not a model directory."""
    if not _is_local(name):
        return
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ModelLoadError(
            f"base model directory {name} does not exist (--base-model or PUNCHLINE_MODEL__BASE)"
        )
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{name} has no config.json: it is not a model directory")


def check_weights(name: str) -> None:
    """Raise `ModelLoadError` for a local model directory that holds no weights."""
    if not has_weights(name):
        raise ModelLoadError(
            f"{name} has a config but no weights ({' or '.join(WEIGHT_FILES[::2])}): put the "
            "model's weights there or pass a hub id (only `punchline train --dry-run` works "
            "without weights)"
        )


def local_model_dir(name: str) -> Path | None:
    """The checked local directory (config and weights) of `name`, None for a hub id;
    `ModelLoadError` for a path that is no usable model directory. Needs no torch."""
    if not _is_local(name):
        return None  # a hub id such as google/flan-t5-large
    check_local_dir(name)
    check_weights(name)
    return Path(name).expanduser().resolve()


def load_tokenizer(name: str) -> "PreTrainedTokenizerBase":
    """`AutoTokenizer.from_pretrained` (never `T5Tokenizer(vocab_file=...)`, see data README)."""
    from transformers import AutoTokenizer

    return _load(name, "tokenizer", AutoTokenizer.from_pretrained)


def load_config(name: str) -> "PretrainedConfig":
    """The model config of a seq2seq (T5-like) model."""
    from transformers import AutoConfig

    config = _load(name, "config", AutoConfig.from_pretrained)
    if not config.is_encoder_decoder:
        raise ModelLoadError(
            f"{name} is a {config.model_type} model; a sequence-to-sequence model (T5) is needed"
        )
    return config


def has_separate_lm_head(name: str) -> bool:
    """Whether the checkpoint keeps its own `lm_head` (`"tie_word_embeddings": false` in its
    config.json, as flan-t5 does); transformers 5 hides this once the config is loaded."""
    from transformers import PretrainedConfig

    raw, _ = _load(name, "config", PretrainedConfig.get_config_dict)
    return raw.get("tie_word_embeddings") is False


def build_meta_model(name: str) -> "PreTrainedModel":
    """The base model's architecture on the meta device: no weights read, no memory used."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    config = load_config(name)
    with torch.device("meta"):
        model = AutoModelForSeq2SeqLM.from_config(config)
    if has_separate_lm_head(name):
        untie_lm_head(model)
    return model


def untie_lm_head(model: "PreTrainedModel") -> None:
    """Give the model its own `lm_head` (flan-t5-large: 32.9 M parameters) instead of one tied to
    the shared embedding; a copy of the embedding when the model has real weights."""
    import torch

    head = model.get_output_embeddings()
    if head is None or head.weight is not model.get_input_embeddings().weight:
        return
    new_head = torch.nn.Linear(
        head.in_features, head.out_features, bias=False, device=head.weight.device, dtype=head.weight.dtype
    )
    if head.weight.device.type != "meta":
        with torch.no_grad():
            new_head.weight.copy_(head.weight)
    model.set_output_embeddings(new_head)


def has_weights(name: str) -> bool:
    """Whether a local model directory holds weights (a hub id is assumed to)."""
    if not _is_local(name):
        return True
    path = Path(name).expanduser()
    return any((path / f).is_file() for f in WEIGHT_FILES)


def load_base_model(name: str, dtype: "torch.dtype | None" = None, **kwargs: Any) -> "PreTrainedModel":
    """The base model with its weights; `ModelLoadError` says what is wrong and what to do."""
    from transformers import AutoModelForSeq2SeqLM

    check_local_dir(name)
    check_weights(name)
    return _load(name, "model", AutoModelForSeq2SeqLM.from_pretrained, dtype=dtype, **kwargs)
