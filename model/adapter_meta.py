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


def new_version_id(now: datetime | None = None) -> str:
    """A sortable, unique version id such as `v20261128-0712-3fa2`."""
    now = now or datetime.now(timezone.utc)
    return f"v{now:%Y%m%d-%H%M}-{secrets.token_hex(2)}"


class AdapterMetadata(BaseModel):
    """The adapter's identity card."""

    version: str
    base_model: str
    prompt_template: str = DEFAULT_TEMPLATE
    data_fingerprint: str = ""
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    parent_version: str | None = None  # the adapter a refresh started from, if any

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
