"""Plain batched greedy generation and adapter loading for `compare`, `eval` and the
training-time samples (the serving path with sampling and filters lives in `model/`)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from model.adapter_meta import AdapterMetadata
from model.loading import resolve_adapter
from model.prompt import build_prompt
from model.types import AdapterError

if TYPE_CHECKING:
    import torch
    from peft import PeftModel
    from transformers import PreTrainedTokenizerBase

DEFAULT_MAX_NEW_TOKENS = 32


def pick_device() -> "torch.device":
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def inference_dtype(device: "torch.device") -> "torch.dtype":
    """bf16 on a GPU that supports it, float32 otherwise; never fp16 (T5 overflows)."""
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


@dataclass
class TunedModel:
    """A base model with an adapter, switchable between the two (`adapter_enabled`)."""

    model: "PeftModel"
    tokenizer: "PreTrainedTokenizerBase"
    metadata: AdapterMetadata
    device: "torch.device"

    @contextmanager
    def variant(self, tuned: bool) -> Iterator[None]:
        """Run the block with the adapter on (tuned) or off (base model)."""
        with nullcontext() if tuned else self.model.disable_adapter():
            yield


def load_tuned(base_model: str, adapter_dir: Path) -> TunedModel:
    """Load base model + adapter for evaluation; errors say what is wrong with either.

    The adapter is checked exactly as the serving side checks it (`model.loading`): its
    metadata, its weight files, its prompt template and the base model it was made for.
    """
    from peft import PeftModel

    from model.base_model import load_base_model, load_tokenizer

    metadata = resolve_adapter(adapter_dir, base_model)
    device = pick_device()
    tokenizer = load_tokenizer(base_model)
    base = load_base_model(base_model, dtype=inference_dtype(device))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # transformers deprecations inside peft
            model = PeftModel.from_pretrained(base, str(adapter_dir))
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise AdapterError(f"cannot load adapter {adapter_dir}: {str(exc).splitlines()[0]}") from None
    model.to(device).eval()
    return TunedModel(model=model, tokenizer=tokenizer, metadata=metadata, device=device)


def generate_greedy(
    model: "torch.nn.Module",
    tokenizer: "PreTrainedTokenizerBase",
    setups: Sequence[str],
    template: str,
    *,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    batch_size: int = 16,
    max_source_length: int = 256,
) -> list[str]:
    """One greedy punchline per setup, in batches."""
    import torch

    device = next(model.parameters()).device
    replies: list[str] = []
    for start in range(0, len(setups), batch_size):
        prompts = [build_prompt(s, template) for s in setups[start : start + batch_size]]
        batch = tokenizer(
            prompts, return_tensors="pt", padding=True, truncation=True, max_length=max_source_length
        ).to(device)
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        replies.extend(t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True))
    return replies
