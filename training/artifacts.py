"""What a training run leaves in its output directory besides the adapter weights:
`metrics.json` (final metrics, loss history, samples, data counts) and `loss.png`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from training.callbacks import Sample

METRICS_FILE = "metrics.json"
LOSS_PLOT = "loss.png"


def loss_curves(log_history: list[dict[str, Any]]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(step, training loss) and (step, validation loss) points from the Trainer's log."""
    train = [(int(e["step"]), float(e["loss"])) for e in log_history if "loss" in e and "step" in e]
    val = [(int(e["step"]), float(e["eval_loss"])) for e in log_history if "eval_loss" in e and "step" in e]
    return train, val


def write_metrics(
    directory: Path,
    metrics: dict[str, float],
    log_history: list[dict[str, Any]],
    samples: list[Sample],
    data: dict[str, Any],
) -> Path:
    path = directory / METRICS_FILE
    payload = {
        "metrics": metrics,
        "data": data,
        "log_history": log_history,
        "samples": [asdict(s) for s in samples],
    }
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def plot_loss(directory: Path, log_history: list[dict[str, Any]], title: str) -> Path:
    """Training and validation loss against steps, as PNG (no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train, val = loss_curves(log_history)
    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if train:
        axes.plot(*zip(*train), label="training loss", linewidth=1)
    if val:
        axes.plot(*zip(*val), label="validation loss", marker="o")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if train or val:
        axes.legend()
    path = directory / LOSS_PLOT
    figure.savefig(path)
    return path
