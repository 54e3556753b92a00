"""`punchline.json`: what an adapter directory says about itself (docs/DESIGN.md, decision 2).

Training writes it beside what `PeftModel.save_pretrained` writes; the worker reads it to learn
the adapter's base model, prompt template and version id, which every reply then records.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from model.prompt import DEFAULT_TEMPLATE
from model.types import AdapterError

METADATA_FILE = "punchline.json"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
SFT, KTO, DPO = "sft", "kto", "dpo"  # how an adapter was trained: `punchline train`, `punchline align`


def new_version_id(now: datetime | None = None) -> str:
    """A sortable, unique version id such as `v20261128-0712-3fa2`."""
    now = now or datetime.now(timezone.utc)
    return f"v{now:%Y%m%d-%H%M}-{secrets.token_hex(2)}"


class GateCheck(BaseModel):
    """One check of the offline gate (`training.gate`): the candidate's value against the
    parent's, the limit it had to meet, and why it failed. `passed` None: skipped (`reason` says
    why, e.g. no filter to measure with)."""

    name: str
    passed: bool | None
    candidate: float | None = None
    parent: float | None = None
    limit: float | None = None
    reason: str = ""


class GateResult(BaseModel):
    """The offline gate's verdict on a candidate adapter against its parent."""

    passed: bool
    parent_version: str
    checks: list[GateCheck] = Field(default_factory=list)

    @property
    def failed(self) -> list[GateCheck]:
        """The checks that failed (skipped ones are not failures)."""
        return [c for c in self.checks if c.passed is False]

    def describe(self) -> str:
        """One line per check, then the verdict (what `punchline align` and `eval --parent` print)."""
        lines = [f"gate against parent {self.parent_version}:"]
        for check in self.checks:
            mark = "skip" if check.passed is None else "pass" if check.passed else "FAIL"
            values = ""
            if check.candidate is not None:
                values = f" candidate {check.candidate:.4g}"
                values += f", parent {check.parent:.4g}" if check.parent is not None else ""
                values += f", limit {check.limit:.4g}" if check.limit is not None else ""
            lines.append(f"  {mark} {check.name}:{values}{' (' + check.reason + ')' if check.reason else ''}")
        failed = ", ".join(c.name for c in self.failed)
        lines.append("gate: passed" if self.passed else f"gate: FAILED ({failed})")
        return "\n".join(lines)


class AdapterMetadata(BaseModel):
    """The adapter's identity card. Files written before a field existed load with its default."""

    # The version names cache directories and Redis keys, so it is a plain name: letters,
    # digits, ".", "_" and "-", starting with a letter or digit (never "../" or a path).
    version: str = Field(pattern=VERSION_PATTERN)
    base_model: str
    prompt_template: str = DEFAULT_TEMPLATE
    data_fingerprint: str = ""
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    parent_version: str | None = None  # the adapter a refresh started from, if any
    method: str = SFT  # SFT (`punchline train`), KTO or DPO (`punchline align`)
    data_counts: dict[str, int] = Field(default_factory=dict)  # rows per split / kind it learned from
    gate: GateResult | None = None  # the offline gate against the parent (aligned adapters)

    def save(self, directory: Path) -> Path:
        """Write `punchline.json` into `directory` and return its path."""
        path = Path(directory) / METADATA_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: Path) -> "AdapterMetadata":
        """Read an adapter directory's metadata; raise `AdapterError` saying what is wrong."""
        directory = Path(directory)
        path = directory / METADATA_FILE
        if not directory.is_dir():
            raise AdapterError(f"adapter directory {directory} does not exist")
        if not path.is_file():
            raise AdapterError(f"{directory} has no {METADATA_FILE}: it was not written by `punchline train`")
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, ValidationError, UnicodeDecodeError) as exc:
            first = str(exc).splitlines()[0]
            raise AdapterError(f"{path} is corrupt: {first}") from None


def same_base_model(configured: str, recorded: str) -> bool:
    """Whether a configured base model (hub id or directory) matches the adapter's record.

    A local directory matches a hub id when it ends with the id's name, as
    `../shared/data/flan-t5-large` does `google/flan-t5-large`.
    """
    if configured == recorded:
        return True
    name = lambda s: Path(s.rstrip("/")).name.lower()  # noqa: E731
    return name(configured) == name(recorded)
