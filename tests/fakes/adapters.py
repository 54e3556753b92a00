"""Adapter directories for tests: LoRA on the tiny T5 (`tiny_base_model`), saved as
`punchline train` saves one (PeftModel.save_pretrained + punchline.json)."""

from __future__ import annotations

from pathlib import Path

from model.adapter_meta import AdapterMetadata


def make_adapter(
    base_dir: Path,
    out: Path,
    version: str,
    seed: int,
    base_name: str | None = None,
    b_std: float = 0.5,
) -> Path:
    """Wrap the tiny T5 in LoRA (r=4 on q and v), perturb B so outputs change, save it.

    A huge `b_std` (say 50) makes a deliberately broken adapter."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSeq2SeqLM

    torch.manual_seed(seed)
    base = AutoModelForSeq2SeqLM.from_pretrained(base_dir)
    model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, target_modules=["q", "v"], task_type="SEQ_2_SEQ_LM")
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, b_std)
    model.save_pretrained(out)
    AdapterMetadata(version=version, base_model=base_name or str(base_dir)).save(out)
    return out
