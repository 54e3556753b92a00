"""A real (tiny) training run through the CLI, its adapter directory, `compare` and `eval`.

One run is shared by the module: a tiny random T5 with the real tokenizer trained with the
default LoRA set-up (q, v) for a few dozen steps on a few hundred real jokes.
"""

from __future__ import annotations

import json
import os
import signal
from contextlib import redirect_stdout
from dataclasses import dataclass, replace
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from model.adapter_meta import AdapterMetadata
from model.prompt import DEFAULT_TEMPLATE

pytestmark = pytest.mark.shared_data

LIMIT = 300
LR = "3e-2"  # a tiny random model needs a large step to move visibly in a few dozen steps


@dataclass(frozen=True)
class TrainedRun:
    output: Path
    data: Path
    base: Path
    stdout: str


@pytest.fixture(scope="module")
def trained(tiny_base_model: Path, kaggle_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    import torch

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("adapter") / "tiny-adapter"
    args = [
        "train",
        "--data",
        str(kaggle_csv),
        "--base-model",
        str(tiny_base_model),
        "--output",
        str(out),
        "--limit",
        str(LIMIT),
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--lr",
        LR,
        "--max-source-length",
        "32",
        "--max-target-length",
        "16",
        "--eval-samples",
        "2",
        "--no-progress",
    ]
    buffer = StringIO()
    with redirect_stdout(buffer):
        code = main(args)
    assert code == 0, buffer.getvalue()
    return TrainedRun(out, kaggle_csv, tiny_base_model, buffer.getvalue())


def read_metrics(run: TrainedRun) -> dict[str, Any]:
    return json.loads((run.output / "metrics.json").read_text(encoding="utf-8"))


def test_validation_loss_falls_clearly(trained: TrainedRun) -> None:
    history = read_metrics(trained)["log_history"]
    evals = [e["eval_loss"] for e in history if "eval_loss" in e]
    assert len(evals) == 4  # before training and after each of 3 epochs
    assert evals[-1] < 0.85 * evals[0], evals
    assert evals[-1] < evals[1]


def test_adapter_directory_contents(trained: TrainedRun) -> None:
    from training.dataset import prepare_data

    out = trained.output
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "punchline.json",
        "metrics.json",
        "loss.png",
    ):
        assert (out / name).is_file(), name
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = AdapterMetadata.load(out)
    assert meta.base_model == str(trained.base)
    assert meta.prompt_template == DEFAULT_TEMPLATE
    assert meta.data_fingerprint == prepare_data(trained.data, limit=LIMIT).fingerprint
    assert meta.hyperparameters["lora"] == {
        "r": 16,
        "alpha": 32,
        "dropout": 0.05,
        "target_modules": ["q", "v"],
    }
    assert meta.hyperparameters["learning_rate"] == float(LR)
    assert meta.metrics["eval_loss"] < meta.metrics["first_eval_loss"]
    assert meta.version in trained.stdout
    metrics = read_metrics(trained)
    assert metrics["data"]["train"] + metrics["data"]["validation"] + metrics["data"]["test"] == LIMIT
    samples = metrics["samples"]
    assert len(samples) == 2 * 4 and len({s["setup"] for s in samples}) == 2


def test_reloaded_adapter_gives_the_saved_weights_logits(trained: TrainedRun) -> None:
    """PeftModel.from_pretrained logits equal a base model with W + alpha/r * B @ A folded in."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(trained.base)
    batch = tokenizer(["Why did the chicken cross the road?"], return_tensors="pt")
    labels = tokenizer(text_target=["To get to the other side."], return_tensors="pt")["input_ids"]

    tuned = PeftModel.from_pretrained(
        AutoModelForSeq2SeqLM.from_pretrained(trained.base), trained.output
    ).eval()
    folded = AutoModelForSeq2SeqLM.from_pretrained(trained.base).eval()
    base_logits = folded(**batch, labels=labels).logits
    weights = load_file(str(trained.output / "adapter_model.safetensors"))
    scale = 32 / 16
    params = dict(folded.named_parameters())
    changed = 0
    with torch.no_grad():
        for key, lora_a in weights.items():
            if ".lora_A." not in key:
                continue
            lora_b = weights[key.replace(".lora_A.", ".lora_B.")]
            target = key.removeprefix("base_model.model.").split(".lora_A.")[0] + ".weight"
            params[target] += scale * lora_b @ lora_a
            changed += 1
        assert changed == 2 * 2 * 2 + 2 * 2  # q,v in encoder self-attn, decoder self- and cross-attn
        expected = folded(**batch, labels=labels).logits
        got = tuned(**batch, labels=labels).logits
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(got, base_logits, atol=1e-2)


def test_compare_prints_the_eight_row_table(
    trained: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "compare.md"
    code = main(
        [
            "compare",
            "--base-model",
            str(trained.base),
            "--adapter",
            str(trained.output),
            "--data",
            str(trained.data),
            "--output",
            str(out_file),
        ]
    )
    assert code == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert table[0] == "| Setup | Original | base model | tuned |"
    rows = [line for line in table[2:] if line.startswith("| ")]
    assert len(rows) == 8
    assert rows[0].startswith("| What do The Sixth Sense and Titanic have in common? | Icy Dead People. |")
    assert (
        "| How many developers does it take to change a light bulb? | None. That's a hardware problem. |"
        in rows[2]
    )
    assert all(len(r.split(" | ")) == 4 for r in rows)
    assert out_file.read_text(encoding="utf-8").strip().splitlines() == table


def test_compare_with_setups_file_and_without_data(
    trained: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setups = tmp_path / "setups.txt"
    setups.write_text("Why do Yoda's jokes always suck?\n\n  Who | is there?  \n", encoding="utf-8")
    code = main(
        [
            "compare",
            "--base-model",
            str(trained.base),
            "--adapter",
            str(trained.output),
            "--setups",
            str(setups),
        ]
    )
    assert code == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][2:]
    assert len(rows) == 2
    assert rows[0].startswith("| Why do Yoda's jokes always suck? | — |")
    assert rows[1].startswith("| Who \\| is there? | — |")


def test_eval_scores_base_and_tuned(
    trained: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "eval",
            "--base-model",
            str(trained.base),
            "--adapter",
            str(trained.output),
            "--data",
            str(trained.data),
            "--output-dir",
            str(tmp_path),
            "--limit",
            "24",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "| loss of original punchlines |" in out and "| distinct-2 |" in out
    report = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))
    assert report["test_jokes"] == 24
    assert report["tuned"]["loss"] < report["base"]["loss"]
    for variant in ("base", "tuned"):
        stats = report[variant]["replies"]
        assert 0 <= stats["echo_rate"] <= 1 and 0 <= stats["empty_rate"] <= 1
        assert 0 < stats["distinct_1"] <= 1
    assert report["original"]["distinct_1"] > 0.3
    assert (tmp_path / "eval.md").read_text(encoding="utf-8").strip() == out.split("written:")[0].strip()


def test_compare_with_wrong_adapter_dir(
    trained: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", "--base-model", str(trained.base), "--adapter", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("punchline compare: error:") and "punchline.json" in err and "\n" not in err


def sigint_at(step: int):  # noqa: ANN201
    """A callback that sends this process a SIGINT during a given step, as Ctrl-C would."""
    from transformers import TrainerCallback

    class SigintAt(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001
            if state.global_step == step:
                os.kill(os.getpid(), signal.SIGINT)

    return SigintAt()


def test_ctrl_c_leaves_a_checkpoint_that_resume_continues(
    tiny_base_model: Path, kaggle_csv: Path, tmp_path: Path
) -> None:
    import torch

    from training.train import TrainOptions, run

    torch.set_num_threads(1)
    options = TrainOptions(
        data=kaggle_csv,
        base_model=str(tiny_base_model),
        output=tmp_path / "run",
        limit=80,
        batch_size=8,
        max_steps=8,
        lr=1e-2,
        max_source_length=32,
        max_target_length=16,
        eval_samples=0,
        progress=False,
    )
    first = run(options, callbacks=[sigint_at(3)])
    assert first.interrupted and first.global_step == 4
    assert first.checkpoint is not None and first.checkpoint.name == "checkpoint-4"
    assert not (options.output / "punchline.json").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored

    second = run(replace(options, resume=True))
    assert not second.interrupted and second.global_step == 8
    assert AdapterMetadata.load(options.output).metrics["global_step"] == 8

    # --force starts anew in the same directory: no stale checkpoint is resumed.
    third = run(replace(options, force=True, max_steps=2))
    assert third.global_step == 2
    assert AdapterMetadata.load(options.output).metrics["global_step"] == 2
    assert sorted(p.name for p in (options.output / "checkpoints").iterdir()) == ["checkpoint-2"]
