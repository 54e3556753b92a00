"""The offline gate on the tiny T5: a broken adapter is rejected with the checks that failed, the
parent against itself ranks nothing (accuracy 0.5), and a filter plugs in as a flag rate."""

from __future__ import annotations

import shutil
from contextlib import redirect_stdout
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest

from bot.cli import main
from model.adapter_meta import AdapterMetadata
from tests.fakes.adapters import make_adapter
from training.gate import GateOptions, HeldOut, run_gate
from training.preferences import DpoPair, KtoRow

pytestmark = pytest.mark.shared_data

FAST = GateOptions(limit=12, batch_size=12, max_new_tokens=8)
WHEN = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def parent(tiny_base_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_adapter(tiny_base_model, tmp_path_factory.mktemp("parent"), "v-parent", seed=1)


def checks(result: object) -> dict[str, bool | None]:
    return {c.name: c.passed for c in result.checks}  # type: ignore[attr-defined]


def test_the_gate_rejects_a_deliberately_broken_adapter(
    tiny_base_model: Path, parent: Path, kaggle_csv: Path, tmp_path: Path
) -> None:
    import torch

    torch.set_num_threads(1)
    broken = make_adapter(tiny_base_model, tmp_path / "broken", "v-broken", seed=1, b_std=50.0)
    result = run_gate(str(tiny_base_model), broken, parent, kaggle_csv, options=FAST)
    assert not result.passed
    assert checks(result)["gold loss"] is False
    loss = next(c for c in result.checks if c.name == "gold loss")
    assert loss.candidate is not None and loss.parent is not None and loss.candidate > 1.03 * loss.parent
    assert "above the limit" in loss.reason
    assert checks(result)["flag rate"] is None and result.parent_version == "v-parent"
    assert "FAIL gold loss" in result.describe() and "gate: FAILED (gold loss" in result.describe()


def test_the_parent_against_itself_passes_all_but_the_preference_check(
    tiny_base_model: Path, parent: Path, kaggle_csv: Path, tmp_path: Path
) -> None:
    import torch

    torch.set_num_threads(1)
    twin = tmp_path / "twin"
    shutil.copytree(parent, twin)
    held_out = HeldOut(
        rows=[KtoRow("Why?", "Because.", True, 1.0, "c", (), WHEN, "reply")],
        pairs=[DpoPair("Why not?", "Because!", "No.", 1.0, "c", WHEN, "1")],
    )
    with_data = run_gate(str(tiny_base_model), twin, parent, kaggle_csv, held_out=held_out, options=FAST)
    surface = {k: v for k, v in checks(with_data).items() if "accuracy" not in k and k != "flag rate"}
    assert all(surface.values()), with_data.describe()
    for name in ("preference accuracy (battle pairs)", "preference accuracy (rated replies)"):
        accuracy = next(c for c in with_data.checks if c.name == name)
        assert accuracy.candidate == 0.5 and accuracy.passed is False  # a zero reward ranks nothing
    assert not with_data.passed

    without = run_gate(str(tiny_base_model), twin, parent, kaggle_csv, options=FAST)
    assert without.passed and checks(without)["preference accuracy"] is None
    required = run_gate(
        str(tiny_base_model), twin, parent, kaggle_csv, options=FAST, require_preferences=True
    )
    assert not required.passed


def test_a_flagger_plugs_in_as_a_flag_rate(
    tiny_base_model: Path, parent: Path, kaggle_csv: Path, tmp_path: Path
) -> None:
    other = make_adapter(tiny_base_model, tmp_path / "other", "v-other", seed=2)
    flag_everything = run_gate(
        str(tiny_base_model), other, parent, kaggle_csv, options=FAST, flagger=lambda _: True
    )
    rate = next(c for c in flag_everything.checks if c.name == "flag rate")
    assert rate.passed is True and rate.candidate == 1.0 and rate.parent == 1.0


def test_eval_with_parent_prints_the_gate(
    tiny_base_model: Path, parent: Path, kaggle_csv: Path, tmp_path: Path
) -> None:
    broken = make_adapter(tiny_base_model, tmp_path / "broken", "v-broken", seed=1, b_std=50.0)
    args = ["eval", "--base-model", str(tiny_base_model), "--adapter", str(broken), "--parent", str(parent)]
    buffer = StringIO()
    with redirect_stdout(buffer):
        code = main([*args, "--data", str(kaggle_csv), "--limit", "12", "--batch-size", "12"])
    assert code == 1, buffer.getvalue()
    out = buffer.getvalue()
    assert "gate against parent v-parent:" in out and "gate: FAILED" in out
    assert AdapterMetadata.load(broken).gate is None  # eval reports; only align records
