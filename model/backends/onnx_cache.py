"""The ONNX model cache: one complete, checked directory per adapter version and quantisation.

Layout: `<cache_dir>/<version>-<hash>/onnx-<quantisation>/` with `encoder.onnx`,
`decoder.onnx` and `manifest.json`. The hash (`ModelSource.cache_key`) covers the base model's
location and the adapter's weights.

An entry is built in a scratch directory beside it and renamed into place only once complete;
its manifest is written last and lists every file with its size. On load the manifest is
checked (format, source, quantisation, the base model's weight files, each file's size), so a
missing or truncated file, an entry from an older export format, or one whose base weights
changed since, counts as absent: it is moved aside and rebuilt, never served and never a crash.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model.backends.onnx_errors import OnnxBackendError
from model.base_model import WEIGHT_FILES
from model.loading import ModelSource

MANIFEST = "manifest.json"
# Bump when the graphs' inputs, outputs or meaning change: older entries are then rebuilt.
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Manifest:
    """What an entry holds and where it came from."""

    format: int
    cache_key: str
    version: str
    base: str
    adapter_dir: str | None
    quantization: str
    base_weights: dict[str, list[int]]  # weight file -> [size, mtime_ns] (empty for a hub id)
    files: dict[str, int]  # file name -> size in bytes
    layers: int
    heads: int
    d_kv: int
    decoder_start_token_id: int
    fp32_max_error: float
    quantized_error: float | None
    tools: dict[str, str] = field(default_factory=dict)  # torch / onnx / onnxruntime versions
    created: str = ""

    @classmethod
    def read(cls, directory: Path) -> Manifest | None:
        """The entry's manifest, or None when it is missing or unreadable."""
        try:
            data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def entry_dir(source: ModelSource, cache_dir: Path, quantization: str) -> Path:
    """Where the exported model for `source` and `quantization` lives."""
    return Path(cache_dir) / source.cache_key / f"onnx-{quantization}"


def base_weights(source: ModelSource) -> dict[str, list[int]]:
    """Size and modification time of the local base model's weight files: a base model
    rewritten in place makes its cached exports stale."""
    if source.base_dir is None:
        return {}
    found = {}
    for name in WEIGHT_FILES:
        path = source.base_dir / name
        if path.is_file():
            stat = path.stat()
            found[name] = [stat.st_size, stat.st_mtime_ns]
    return found


def problem(directory: Path, source: ModelSource, quantization: str) -> str | None:
    """Why the entry cannot be served as it is (None: it can)."""
    if not directory.is_dir():
        return "not built yet"
    manifest = Manifest.read(directory)
    if manifest is None:
        return "no readable manifest (an interrupted or foreign export)"
    if manifest.format != FORMAT_VERSION:
        return f"export format {manifest.format}, this version writes {FORMAT_VERSION}"
    if (manifest.cache_key, manifest.quantization) != (source.cache_key, quantization):
        return "made for another model or quantisation"
    if manifest.base_weights != base_weights(source):
        return "the base model's weights changed since the export"
    for name, size in manifest.files.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, not {size} (truncated or rewritten)"
    return None


def discard(directory: Path) -> None:
    """Move an unusable entry aside and delete it (renaming first, so no reader sees half)."""
    if not directory.exists():
        return
    aside = directory.with_name(f".stale-{directory.name}-{os.getpid()}-{time.monotonic_ns()}")
    try:
        directory.rename(aside)
    except OSError:
        aside = directory
    shutil.rmtree(aside, ignore_errors=True)


@contextmanager
def scratch(directory: Path) -> Iterator[Path]:
    """A fresh scratch directory beside `directory`, removed afterwards whatever happens."""
    work = directory.with_name(f".{directory.name}-{os.getpid()}")
    try:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    except OSError as exc:
        raise OnnxBackendError(
            f"cannot create the model cache under {directory.parent.parent}: {exc}"
        ) from None
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def install(work: Path, directory: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest (listing every file in `work`) last, then rename `work` into place.

    When another process installed the same entry meanwhile, its copy is kept."""
    files = {p.name: p.stat().st_size for p in sorted(work.iterdir()) if p.is_file()}
    record = Manifest(**{**manifest, "files": files, "format": FORMAT_VERSION})
    try:
        (work / MANIFEST).write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
        if directory.exists():
            return  # another process won the race; the scratch copy is removed by `scratch`
        work.rename(directory)
    except OSError as exc:
        raise OnnxBackendError(f"cannot write the model cache entry {directory}: {exc}") from None
