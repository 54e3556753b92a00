"""`punchline align` end to end on the tiny T5: a DPO and a KTO run from a parent adapter and a
hand-written export, the adapter directory they write, the gate recorded in it, and the refusals."""

from __future__ import annotations

import csv
import json
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

from bot.cli import main
from model.adapter_meta import DPO, KTO, AdapterMetadata
from tests.fakes.adapters import make_adapter
from tests.fakes.export_rows import battle_entry, rated_reply, write_export
from training.align import AlignOptions, plan
from training.errors import NotEnoughFeedback

pytestmark = pytest.mark.shared_data

ROUNDS = 24  # two pairs each: 48 pairs, 5 held out


def corpus(path: Path, rows: int = 240) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ID", "Question", "Answer"])
        writer.writerows(
            [str(i), f"Why is the number {i} so odd?", f"Because {i} ate nine."] for i in range(rows)
        )
    return path


def export(path: Path) -> Path:
    rows = []
    for b in range(ROUNDS):
        setup = f"What do you call a bear number {b}?"
        rows += [
            battle_entry(
                b,
                3 * b,
                setup,
                f"A gummy bear {b}.",
                3,
                5,
                won=True,
                author_kind="person",
                rater=f"p{b % 12}",
                minutes=b,
                chat=f"chat-{b % 6}",
            ),
            battle_entry(b, 3 * b + 1, setup, "No idea.", 1, 5, minutes=b, chat=f"chat-{b % 6}"),
            battle_entry(
                b,
                3 * b + 2,
                setup,
                f"Bear {b}.",
                1,
                5,
                author_kind="classic",
                minutes=b,
                chat=f"chat-{b % 6}",
            ),
        ]
    for i in range(40):
        votes = (
            {f"r{i % 15}": 1, f"r{(i + 1) % 15}": 1} if i % 2 else {f"r{i % 15}": -1, f"r{(i + 3) % 15}": -1}
        )
        rows += rated_reply(
            100 + i, f"Why did joke {i} fail?", f"Answer number {i}.", votes, minutes=i, chat=f"chat-{i % 6}"
        )
    return write_export(rows, path)


@pytest.fixture(scope="module")
def inputs(tiny_base_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("align")
    return {
        "base": tiny_base_model,
        "parent": make_adapter(tiny_base_model, root / "parent", "v-parent", seed=1),
        "feedback": export(root / "export.csv"),
        "data": corpus(root / "jokes.csv"),
        "root": root,
    }


def align_args(inputs: dict[str, Path], method: str, out: Path, *extra: str) -> list[str]:
    return [
        "align",
        "--method",
        method,
        "--adapter",
        str(inputs["parent"]),
        "--feedback",
        str(inputs["feedback"]),
        "--data",
        str(inputs["data"]),
        "--base-model",
        str(inputs["base"]),
        "--output",
        str(out),
        "--max-steps",
        "4",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--gate-limit",
        "8",
        "--max-source-length",
        "32",
        "--max-target-length",
        "16",
        "--eval-samples",
        "1",
        "--no-progress",
        *extra,
    ]


def run_cli(args: list[str]) -> tuple[int, str]:
    buffer = StringIO()
    with redirect_stdout(buffer):
        code = main(args)
    return code, buffer.getvalue()


@pytest.mark.parametrize("method", [DPO, KTO])
def test_align_writes_an_adapter_directory_with_its_parent_method_counts_and_gate(
    inputs: dict[str, Path], method: str
) -> None:
    import torch

    torch.set_num_threads(1)
    out = inputs["root"] / f"aligned-{method}"
    code, stdout = run_cli(align_args(inputs, method, out))
    assert code in (0, 1), stdout  # 1: written, but the gate failed (a tiny random model may)
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "punchline.json",
        "metrics.json",
        "loss.png",
    ):
        assert (out / name).is_file(), name
    meta = AdapterMetadata.load(out)
    assert meta.parent_version == "v-parent" and meta.method == method
    assert meta.base_model == str(inputs["base"]) and meta.version in stdout
    assert meta.hyperparameters["beta"] == 0.1 and meta.hyperparameters["learning_rate"] == 1e-3
    assert meta.gate is not None and meta.gate.parent_version == "v-parent"
    kind = "battle pairs" if method == DPO else "rated replies"
    assert {c.name for c in meta.gate.checks} >= {
        "gold loss",
        "echo rate",
        "distinct-2",
        f"preference accuracy ({kind})",
    }
    assert ("gate: passed" in stdout) == meta.gate.passed == (code == 0)
    counts = meta.data_counts
    if method == DPO:
        # 48 pairs; the newest 5 would split round 21 in two, so its pairs stay in training
        assert counts["train_examples"] == 44 and counts["eval_examples"] == 4 and counts["replay"] == 22
    else:
        assert counts["train_examples"] == 36 and counts["eval_examples"] == 4 and counts["replay"] == 18
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    logged = [e for e in metrics["log_history"] if "loss" in e]
    assert logged and metrics["metrics"]["global_step"] == 4
    key = "eval_rewards/accuracy" if method == DPO else "eval_kl"
    assert any(key in e for e in metrics["log_history"])
    assert AdapterMetadata.load(inputs["parent"]).method == "sft"  # old files load: the default


def test_dry_run_counts_the_data_and_loads_no_model(inputs: dict[str, Path]) -> None:
    code, stdout = run_cli([*align_args(inputs, DPO, inputs["root"] / "never"), "--dry-run"])
    assert code == 0
    assert "DPO: 44 training pairs, 4 held out (newest), 22 corpus jokes replayed" in stdout
    assert "battles (DPO):" in stdout and "24 rounds" in stdout
    assert not (inputs["root"] / "never").exists()


def test_too_little_feedback_is_refused_with_counts(
    inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = inputs["root"] / "refused"
    assert main([*align_args(inputs, DPO, out), "--min-examples", "100"]) == 2
    err = capsys.readouterr().err
    assert "not enough feedback for DPO: 44 training pairs from battles, --min-examples is 100" in err
    assert "24 rounds" in err and len(err.strip().splitlines()) == 1
    options = AlignOptions(
        method=KTO,
        adapter=inputs["parent"],
        feedback=inputs["feedback"],
        data=inputs["data"],
        output=out,
        base_model=str(inputs["base"]),
        min_examples=1000,
    )
    with pytest.raises(NotEnoughFeedback) as info:
        plan(options)
    assert (info.value.method, info.value.have, info.value.need) == (KTO, 36, 1000)
    assert "rated replies (KTO):" in info.value.summary


def test_an_existing_output_is_refused_and_a_bad_parent_named(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    assert main(align_args(inputs, DPO, out)) == 2
    assert "--force" in capsys.readouterr().err and (out / "keep.txt").is_file()
    bad = [*align_args(inputs, DPO, tmp_path / "new")]
    bad[bad.index("--adapter") + 1] = str(tmp_path)
    assert main(bad) == 2
    assert "punchline.json" in capsys.readouterr().err
