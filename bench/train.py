"""Benchmark: LoRA training speed of the exact flan-t5-large architecture on real jokes.

Builds google/flan-t5-large from its config (random weights, its own `lm_head` as in the real
checkpoint), applies the default LoRA (r=16, alpha=32, q/v), tokenises the cleaned training
split of the Kaggle Q/A jokes with the real tokenizer, and times optimizer steps with dynamic
padding and length-grouped batches (bf16 autocast where the GPU supports it, as
`punchline train` does). Prints samples/s, s/step, peak memory and the projected time of 5 epochs.

    python bench/train.py                       # CPU: 3 steps of batch 4 (after 1 warm-up step)
    python bench/train.py --steps 40 --batch-size 64   # on a GPU
    python bench/train.py --align dpo           # one `punchline align` step instead (dpo or kto)
    python bench/train.py --align kto --quick   # a 2-layer model: checks the script in seconds

`--align` times what `punchline align` does per batch: the reference log-probabilities (one
no-grad pass, once per row before training) and a DPO step (chosen and rejected in one forward)
or a KTO step (the punchline with gradients, its mismatched KL pair without), on pairs made from
real jokes (chosen: the joke's punchline, rejected: another joke's).

Paths come from PUNCHLINE_SHARED_DATA (../shared/data) or --base-model/--data.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.prompt import DEFAULT_TEMPLATE  # noqa: E402
from training.dataset import prepare_data  # noqa: E402


def parse_args() -> argparse.Namespace:
    shared = Path(
        os.environ.get("PUNCHLINE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base-model", default=str(shared / "flan-t5-large"), help="directory with config + tokenizer"
    )
    parser.add_argument("--data", default=str(shared / "qa_jokes" / "qa_jokes_kaggle_original.csv"))
    parser.add_argument("--steps", type=int, help="timed steps (default: 3 on CPU, 30 on GPU)")
    parser.add_argument("--batch-size", type=int, help="default: 4 on CPU, 64 on GPU")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default: 1 on CPU, 3 on GPU)")
    parser.add_argument("--epochs", type=float, default=5, help="for the projection (default 5)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--threads", type=int, help="torch threads on CPU")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--align", choices=["dpo", "kto"], help="time a preference step instead of SFT")
    parser.add_argument("--pairs", type=int, default=1000, help="--align: pairs/rows for the projection")
    parser.add_argument("--quick", action="store_true", help="2 layers per stack: checks the script")
    return parser.parse_args()


def peak_memory(device) -> str:  # noqa: ANN001
    import torch

    if device.type == "cuda":
        return (
            f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB GPU (torch.cuda.max_memory_allocated)"
        )
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return f"{kib / 2**20:.2f} GiB RSS (process peak)"


def main() -> int:
    args = parse_args()
    import torch
    from transformers import AutoModelForSeq2SeqLM
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from model.base_model import has_separate_lm_head, load_config, load_tokenizer, untie_lm_head
    from training.lora import LoraOptions, apply_lora, count_parameters
    from training.tokenization import choose_max_lengths, encode_jokes, make_collator

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available() if args.device == "auto" else args.device == "cuda"
    device = torch.device("cuda" if cuda else "cpu")
    steps = args.steps or (30 if cuda else 3)
    batch_size = args.batch_size or (64 if cuda else 4)
    warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    bf16 = cuda and torch.cuda.is_bf16_supported()

    t0 = time.perf_counter()
    data = prepare_data(args.data)
    tokenizer = load_tokenizer(args.base_model)
    train = data.split.train
    lengths = choose_max_lengths(tokenizer, train, DEFAULT_TEMPLATE)
    features = encode_jokes(tokenizer, train, DEFAULT_TEMPLATE, lengths)
    t_data = time.perf_counter() - t0

    config = load_config(args.base_model)
    if args.quick:
        config.num_layers = config.num_decoder_layers = 2
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(device):
        base = AutoModelForSeq2SeqLM.from_config(config)  # random weights
    if has_separate_lm_head(args.base_model):
        untie_lm_head(base)
    if args.gradient_checkpointing:
        base.config.use_cache = False
        base.enable_input_require_grads()
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = apply_lora(base, LoraOptions()).to(device)
    model.train()
    t_model = time.perf_counter() - t0
    params = count_parameters(model)
    if args.align:
        from training.align import disable_dropout

        disable_dropout(model)  # as `punchline align` does
        return align_bench(
            args, model, tokenizer, train, lengths, device, steps, batch_size, warmup, bf16, params
        )

    sampler = LengthGroupedSampler(
        batch_size,
        lengths=[len(f["input_ids"]) + len(f["labels"]) for f in features],
        generator=torch.Generator().manual_seed(0),
    )
    order = list(sampler)
    collate = make_collator(tokenizer, pad_to_multiple_of=8 if cuda else None)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)

    def batches():  # noqa: ANN202
        for start in range(0, len(order), batch_size):
            yield collate([features[i] for i in order[start : start + batch_size]])

    times: list[float] = []
    tokens = 0
    source = batches()
    for step in range(warmup + steps):
        batch = next(source).to(device)
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if step >= warmup:
            times.append(elapsed)
            tokens += int(batch["attention_mask"].sum()) + int((batch["labels"] != -100).sum())
        print(
            f"step {step + 1}/{warmup + steps}{' (warm-up)' if step < warmup else ''}: "
            f"{elapsed:.3f} s, loss {loss.item():.3f}, shape {tuple(batch['input_ids'].shape)}/"
            f"{tuple(batch['labels'].shape)}",
            flush=True,
        )

    per_step = statistics.mean(times)
    steps_per_epoch = math.ceil(len(features) / batch_size)
    projected = per_step * steps_per_epoch * args.epochs
    name = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print()
    print(
        f"device: {name}; precision: {'bf16 autocast' if bf16 else 'float32'}"
        f"{'; gradient checkpointing' if args.gradient_checkpointing else ''}"
    )
    print(f"model: {args.base_model} architecture, random weights; parameters: {params}")
    print(
        f"data: {len(features):,} cleaned training jokes; max lengths source {lengths.source}, "
        f"target {lengths.target}; prepared in {t_data:.1f} s; model built in {t_model:.1f} s"
    )
    print(
        f"batch {batch_size}, {steps} timed steps after {warmup} warm-up: "
        f"{per_step:.3f} s/step (median {statistics.median(times):.3f}), "
        f"{batch_size / per_step:.2f} samples/s, {tokens / sum(times):.0f} tokens/s"
    )
    print(f"peak memory: {peak_memory(device)}")
    print(
        f"projected {args.epochs:g} epochs: {steps_per_epoch:,} steps/epoch x {args.epochs:g} = "
        f"{projected / 60:.1f} min ({projected / 3600:.2f} h)"
    )
    return 0


def align_bench(
    args, model, tokenizer, jokes, lengths, device, steps, batch_size, warmup, bf16, params
) -> int:  # noqa: ANN001
    """Time the reference pass and DPO/KTO steps with `punchline align`'s own code."""
    from datetime import UTC, datetime

    import torch

    from training.preference_features import (
        DPO_LABELS,
        KTO_LABELS,
        PreferenceCollator,
        add_reference_logprobs,
        encode_dpo,
        encode_kto,
    )
    from training.preference_trainer import DpoObjective, KtoObjective
    from training.preferences import DpoPair, KtoRow

    n = batch_size * (warmup + steps)
    sample = jokes[: n + 1]
    when = datetime(2026, 1, 1, tzinfo=UTC)
    if args.align == "dpo":
        pairs = [
            DpoPair(j.question, j.answer, sample[i + 1].answer, 1.0, "", when, str(i))
            for i, j in enumerate(sample[:n])
        ]
        features = encode_dpo(tokenizer, pairs, [], DEFAULT_TEMPLATE, lengths)
        label_keys, objective = DPO_LABELS, DpoObjective(beta=0.1)
    else:
        rows = [
            KtoRow(j.question, j.answer, i % 2 == 0, 1.0, "", (), when, "reply")
            for i, j in enumerate(sample[:n])
        ]
        features = encode_kto(tokenizer, rows, DEFAULT_TEMPLATE, lengths)
        label_keys, objective = KTO_LABELS, KtoObjective(beta=0.1)
    collate = PreferenceCollator(
        tokenizer.pad_token_id, pad_to_multiple_of=8 if device.type == "cuda" else None
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    add_reference_logprobs(
        model, features, label_keys, collate, batch_size=batch_size, bf16=bf16, progress=False
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    t_reference = time.perf_counter() - start
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-5)
    model.train()
    times: list[float] = []
    for step in range(warmup + steps):
        batch = {
            k: v.to(device) for k, v in collate(features[step * batch_size : (step + 1) * batch_size]).items()
        }
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, metrics = objective(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if step >= warmup:
            times.append(elapsed)
        shapes = "/".join(str(tuple(batch[k].shape)) for k in label_keys)
        print(
            f"{args.align} step {step + 1}/{warmup + steps}{' (warm-up)' if step < warmup else ''}: "
            f"{elapsed:.3f} s, loss {loss.item():.4f}, input {tuple(batch['input_ids'].shape)}, labels {shapes}",
            flush=True,
        )
    per_step = statistics.mean(times)
    per_row_reference = t_reference / len(features)
    unit = "pairs" if args.align == "dpo" else "rows"
    epochs = 2  # `punchline align`'s default
    projected = args.pairs * per_row_reference + math.ceil(args.pairs / batch_size) * epochs * per_step
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    print()
    print(f"device: {name}; precision: {'bf16 autocast' if bf16 else 'float32'}; method: {args.align}")
    print(
        f"model: {args.base_model} architecture{' (2 layers, --quick)' if args.quick else ''}, random weights; parameters: {params}"
    )
    print(
        f"reference log-probs: {t_reference:.2f} s for {len(features)} {unit} "
        f"({per_row_reference:.3f} s each, once per run)"
    )
    print(
        f"batch {batch_size}, {steps} timed steps after {warmup} warm-up: {per_step:.3f} s/step "
        f"(median {statistics.median(times):.3f}), {batch_size / per_step:.2f} {unit}/s"
    )
    print(f"peak memory: {peak_memory(device)}")
    print(
        f"projected `punchline align` on {args.pairs:,} {unit}, {epochs} epochs: "
        f"{projected / 60:.1f} min (reference pass + steps; the gate comes on top)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
