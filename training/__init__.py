"""Training: data readers, cleaning, split, tokenisation, LoRA, the training run and reports."""
