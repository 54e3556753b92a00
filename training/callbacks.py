"""Trainer callbacks: sample punchlines after each evaluation, and a graceful Ctrl-C."""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from training.generation import generate_greedy

if TYPE_CHECKING:
    from transformers import TrainerControl, TrainerState, TrainingArguments

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sample:
    """A punchline the model wrote for a fixed validation setup at some point of training."""

    epoch: float
    step: int
    setup: str
    original: str
    punchline: str


class SampleCallback(TrainerCallback):
    """After each evaluation, greedy punchlines for the same validation setups are logged."""

    def __init__(self, tokenizer: Any, setups: list[tuple[str, str]], template: str) -> None:
        self.tokenizer = tokenizer
        self.setups = setups  # (setup, original punchline)
        self.template = template
        self.samples: list[Sample] = []

    def on_evaluate(
        self, args: "TrainingArguments", state: "TrainerState", control: "TrainerControl", **kwargs: Any
    ) -> None:
        model = kwargs.get("model")
        if not self.setups or model is None or not state.is_world_process_zero:
            return
        was_training = model.training
        model.eval()
        try:
            replies = generate_greedy(
                model, self.tokenizer, [s for s, _ in self.setups], self.template, batch_size=len(self.setups)
            )
        finally:
            model.train(was_training)
        for (setup, original), reply in zip(self.setups, replies, strict=True):
            self.samples.append(Sample(state.epoch or 0.0, state.global_step, setup, original, reply))
            log.info("sample (epoch %.2f): %s -> %s", state.epoch or 0.0, setup, reply)


@dataclass
class InterruptCallback(TrainerCallback):
    """Turns the first Ctrl-C (or SIGTERM) into "save a checkpoint and stop" at the next step.

    A second Ctrl-C interrupts at once. Under several processes every rank stops at the same
    step (the flag is all-reduced), otherwise the others would wait for ever in a collective.
    """

    requested: bool = False
    interrupted: bool = False
    _previous: dict[int, Any] = field(default_factory=dict)

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                return

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        log.warning("stopping: a checkpoint is saved after this step (Ctrl-C again to abort)")
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

    def _agreed(self, args: "TrainingArguments") -> bool:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self.requested
        import torch

        flag = torch.tensor([1.0 if self.requested else 0.0], device=args.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def on_step_end(
        self, args: "TrainingArguments", state: "TrainerState", control: "TrainerControl", **kwargs: Any
    ) -> None:
        if self._agreed(args):
            self.interrupted = True
            control.should_save = True
            control.should_training_stop = True
