"""A controllable stand-in for a real backend, for testing the worker's queue on a real loop."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

from model.generation import Candidate, GenerationParams
from model.prompt import DEFAULT_TEMPLATE, build_prompt
from model.types import AdapterError


def tag(setup: str) -> str:
    """The word FakeBackend puts in every reply to `setup`, so tests can match replies."""
    return "x" + hashlib.sha256(build_prompt(setup).encode()).hexdigest()[:8]


class FakeBackend:
    """Implements the Backend protocol; `gate` blocks generation until the test opens it.

    Every call is recorded in `calls` (the prompts) and `params` (how it was asked to decode:
    `params[-1].blocked` holds the phrases a safe call bans) and announced on `entered`. A
    prompt that contains `fail_marker` makes the whole call raise.
    """

    prompt_template = DEFAULT_TEMPLATE

    def __init__(
        self,
        version: str = "v1",
        *,
        open_gate: bool = True,
        fail_marker: str = "explode",
        delay_s: float = 0.0,
    ):
        self.version = version
        self.name = f"fake-{version}"
        self.gate = threading.Event()
        if open_gate:
            self.gate.set()
        self.entered = threading.Semaphore(0)
        self.calls: list[list[str]] = []
        self.candidates: list[int] = []  # n of each call
        self.params: list[GenerationParams] = []  # params of each call
        self.fail_marker = fail_marker
        self.delay_s = delay_s  # stands in for compute: each call takes this long
        self.closed = threading.Event()

    def generate(self, prompts: list[str], n: int, params: GenerationParams) -> list[list[Candidate]]:
        self.calls.append(list(prompts))
        self.candidates.append(n)
        self.params.append(params)
        self.entered.release()
        if not self.gate.wait(timeout=20):
            raise TimeoutError("test never opened the gate")
        if self.delay_s:
            time.sleep(self.delay_s)
        if any(self.fail_marker in p for p in prompts):
            raise RuntimeError("boom")
        out = []
        for prompt in prompts:
            digest = "x" + hashlib.sha256(prompt.encode()).hexdigest()[:8]
            out.append([Candidate(f"punch {k} {self.version} {digest}", -0.1 * (k + 1), 4) for k in range(n)])
        return out

    def close(self) -> None:
        self.closed.set()


class FakeLoader:
    """A BackendLoader: adapter directory name -> a backend, or an error to raise."""

    def __init__(self, backends: dict[str | None, FakeBackend | Exception]):
        self.backends = backends
        self.loaded: list[Path | None] = []

    def __call__(self, adapter_dir: Path | None) -> FakeBackend:
        self.loaded.append(adapter_dir)
        key = adapter_dir.name if adapter_dir is not None else None
        result = self.backends.get(key, AdapterError(f"adapter directory {adapter_dir} does not exist"))
        if isinstance(result, Exception):
            raise result
        return result
