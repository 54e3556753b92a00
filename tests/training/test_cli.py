"""The command line: `data stats`, `train --dry-run`, and one clear line for each bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bot.cli import main


def one_error_line(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"punchline {command}: error:")]
    assert len(lines) == 1, err
    return lines[0]


def small_csv(path: Path, rows: int = 40) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ID", "Question", "Answer"])
        writer.writerows([str(i), f"Why is {i} odd?", f"Because of {i}."] for i in range(rows))
    return path


def test_train_without_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["train", "--data", str(tmp_path / "missing.csv"), "--base-model", str(tmp_path), "--dry-run"]
    )
    assert code == 2
    assert "missing.csv does not exist" in one_error_line(capsys, "train")


def test_train_csv_without_expected_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "jokes.csv"
    path.write_text("id,joke\n1,lol\n", encoding="utf-8")
    assert main(["train", "--data", str(path), "--output", str(tmp_path / "out")]) == 2
    assert "expected ID,Question,Answer" in one_error_line(capsys, "train")
    assert not (tmp_path / "out").exists()


def test_train_data_empty_after_cleaning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("ID,Question,Answer\n1,Why?,\n2,What?,Edit: repost\n", encoding="utf-8")
    assert main(["train", "--data", str(path), "--output", str(tmp_path / "out")]) == 2
    assert "no usable jokes after cleaning" in one_error_line(capsys, "train")


def test_train_existing_output_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "adapter"
    out.mkdir()
    (out / "keep.txt").write_text("precious", encoding="utf-8")
    code = main(["train", "--data", str(small_csv(tmp_path / "qa.csv")), "--output", str(out)])
    assert code == 2
    assert "--force" in one_error_line(capsys, "train")
    assert (out / "keep.txt").read_text(encoding="utf-8") == "precious"


def test_resume_without_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["train", "--data", str(small_csv(tmp_path / "qa.csv")), "--output", str(tmp_path / "o"), "--resume"]
    )
    assert code == 2
    assert "nothing to resume" in one_error_line(capsys, "train")


def test_bad_flag_values_are_refused_by_argparse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--data", "x.csv", "--batch-size", "0"])
    assert info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


@pytest.mark.shared_data
def test_base_model_directory_without_weights(
    tmp_path: Path, flan_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--data", str(small_csv(tmp_path / "qa.csv", 200)), "--base-model", str(flan_dir)]
    assert main([*args, "--output", str(tmp_path / "out")]) == 2
    line = one_error_line(capsys, "train")
    assert "has a config but no weights" in line and "--dry-run" in line


@pytest.mark.shared_data
def test_unknown_model_id_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--dry-run", "--data", str(small_csv(tmp_path / "qa.csv", 200))]
    assert main([*args, "--base-model", "punchline-tests/no-such-model"]) == 2
    assert "no-such-model" in one_error_line(capsys, "train")


@pytest.mark.shared_data
def test_dry_run_flan_t5_large_plan(
    kaggle_csv: Path, flan_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["train", "--dry-run", "--base-model", str(flan_dir), "--data", str(kaggle_csv), "--batch-size", "16"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "parameters: 4,718,592 trainable of 787,868,672 (0.5989%)" in out
    assert "38,269 rows read" in out
    train_rows = int(out.split("split: ")[1].split(" train")[0].replace(",", ""))
    steps = -(-train_rows // 16)
    assert f"steps per epoch: {steps:,}; total steps: {5 * steps:,}" in out


@pytest.mark.shared_data
def test_data_stats(tmp_path: Path, flan_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "qa.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ID", "Question", "Answer"])
        writer.writerows([str(i), f"Why is {i} odd?", f"Because of {i}."] for i in range(30))
        writer.writerow(["30", "Why?", ""])
        writer.writerow(["31", "Why is 1 odd?", "because OF 1."])
    assert main(["data", "stats", str(path), "--tokenizer", str(flan_dir)]) == 0
    out = capsys.readouterr().out
    assert "rows read: 32" in out
    assert "dropped (empty answer): 1" in out and "dropped (duplicate pair): 1" in out
    assert "kept after cleaning: 30" in out
    counts = out.split("split: ")[1].splitlines()[0]
    assert sum(int(part.split()[-1]) for part in counts.split(", ")) == 30
    assert "token lengths" in out and "answer" in out
