"""The fleet: which adapters every worker should serve, how adapters reach workers, reloads,
and what `punchline status` shows.

The desired adapter set lives in the broker (`Keys.desired`, JSON): an ordered list of
adapters, the first one current, each with a source a worker can load from:

- `{"kind": "blob", "digest": sha256}`: uploaded through the broker itself (a tar.gz of the
  adapter directory, checked against its hash), so a fleet needs no shared file system;
- `{"kind": "path", "path": "/adapters/v2"}`: a directory every worker can read (a volume);
- `{"kind": "base"}`: the base model alone.

A reload writes a new set with a higher `generation`, publishes "reload" on `Keys.events` and
waits for every live worker to answer in `Keys.acks(generation)`. Pub/sub loses messages while
a worker is disconnected, so workers also re-read the set every `resync_s`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import shutil
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.adapter_meta import METADATA_FILE, AdapterMetadata
from model.broker.connection import Client
from model.broker.keys import GROUP, Keys
from model.broker.messages import now_ms
from model.types import BASE_VERSION, AdapterError

log = logging.getLogger(__name__)

# What an adapter directory needs on a worker: PEFT's files and our metadata.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", METADATA_FILE)
MAX_UPLOAD_BYTES = 256 * 1024 * 1024  # an r=16 adapter on q and v is about 19 MB


@dataclass(frozen=True, slots=True)
class AdapterSource:
    """Where a worker finds one adapter version."""

    version: str
    kind: str  # "blob", "path" or "base"
    digest: str = ""  # blob: sha256 of the tar.gz
    path: str = ""  # path: a directory readable on the worker's machine

    def to_json(self) -> dict[str, str]:
        return {"version": self.version, "kind": self.kind, "digest": self.digest, "path": self.path}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AdapterSource:
        return cls(
            str(data["version"]), str(data["kind"]), str(data.get("digest", "")), str(data.get("path", ""))
        )

    @classmethod
    def base(cls) -> AdapterSource:
        return cls(BASE_VERSION, "base")


@dataclass(frozen=True, slots=True)
class DesiredSet:
    """The adapters every worker should serve, current first."""

    generation: int
    adapters: tuple[AdapterSource, ...]

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(a.version for a in self.adapters)

    def to_json(self) -> str:
        return json.dumps(
            {
                "generation": self.generation,
                "adapters": [a.to_json() for a in self.adapters],
                "updated_ms": now_ms(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> DesiredSet:
        data = json.loads(text)
        return cls(int(data["generation"]), tuple(AdapterSource.from_json(a) for a in data["adapters"]))


@dataclass(frozen=True, slots=True)
class WorkerAnswer:
    """One worker's answer to a reload."""

    worker: str
    ok: bool
    versions: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    version: str
    generation: int
    answers: tuple[WorkerAnswer, ...]
    missing: tuple[str, ...]  # live workers that did not answer in time

    @property
    def ok(self) -> bool:
        return bool(self.answers) and all(a.ok for a in self.answers) and not self.missing


@dataclass(frozen=True, slots=True)
class FleetStatus:
    desired: DesiredSet | None
    workers: tuple[dict[str, Any], ...]  # the live workers' heartbeats
    queue_depths: dict[str, int] = field(default_factory=dict)  # version -> waiting + in progress
    pending: dict[str, int] = field(default_factory=dict)  # version -> delivered, not done
    live: dict[str, int] = field(default_factory=dict)  # version -> live workers
    dead_letters: int = 0


# -- packing adapters ----------------------------------------------------------------------------


def pack_adapter(directory: Path) -> tuple[bytes, str]:
    """The adapter's files as a deterministic tar.gz, and its sha256 (same files, same hash)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for name in ADAPTER_FILES:
            path = directory / name
            if not path.is_file():
                continue
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mtime = 0
            info.mode = 0o644
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    data = buffer.getvalue()
    if len(data) > MAX_UPLOAD_BYTES:
        raise AdapterError(
            f"{directory} packs to {len(data) >> 20} MB, over the {MAX_UPLOAD_BYTES >> 20} MB upload limit"
        )
    return data, hashlib.sha256(data).hexdigest()


def unpack_adapter(data: bytes, digest: str, target: Path) -> Path:
    """Check `data` against `digest` and unpack it into `target` (atomically); the directory."""
    if hashlib.sha256(data).hexdigest() != digest:
        raise AdapterError(f"the uploaded adapter {digest[:12]} does not match its hash")
    if (target / METADATA_FILE).is_file():
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            # Only the known flat files: a crafted archive cannot write outside the target.
            if member.name not in ADAPTER_FILES or not member.isfile():
                raise AdapterError(
                    f"the uploaded adapter {digest[:12]} holds an unexpected entry {member.name!r}"
                )
            extracted = tar.extractfile(member)
            assert extracted is not None
            (partial / member.name).write_bytes(extracted.read())
    if target.exists():
        shutil.rmtree(partial, ignore_errors=True)  # another process unpacked it first
    else:
        partial.rename(target)
    return target


def local_source(directory: Path, *, upload: bool) -> tuple[AdapterSource, bytes | None]:
    """The source for an adapter directory on this machine (and its packed bytes to upload)."""
    meta = AdapterMetadata.load(directory)  # AdapterError: missing or corrupt
    if upload:
        data, digest = pack_adapter(directory)
        return AdapterSource(meta.version, "blob", digest=digest), data
    return AdapterSource(meta.version, "path", path=str(directory.resolve())), None


# -- the fleet, as seen through the broker -----------------------------------------------------


class Fleet:
    """Reads and changes what the workers serve."""

    def __init__(self, client: Client, keys: Keys, raw: Client | None = None):
        """`client` decodes text; `raw` (bytes) moves adapter uploads."""
        self.client = client
        self.raw = raw
        self.keys = keys

    async def desired(self) -> DesiredSet | None:
        text = await self.client.get(self.keys.desired)
        return DesiredSet.from_json(text) if text else None

    async def initialise(self, adapters: Sequence[AdapterSource]) -> DesiredSet:
        """Make `adapters` the desired set unless one exists already; the set in force."""
        await self.client.set(self.keys.desired, DesiredSet(1, tuple(adapters)).to_json(), nx=True)
        found = await self.desired()
        assert found is not None
        return found

    async def upload(self, digest: str, data: bytes) -> None:
        assert self.raw is not None, "uploading needs the bytes client"
        await self.raw.set(self.keys.adapter(digest), data, nx=True)

    async def download(self, digest: str) -> bytes:
        assert self.raw is not None, "downloading needs the bytes client"
        data = await self.raw.get(self.keys.adapter(digest))
        if data is None:
            raise AdapterError(f"the uploaded adapter {digest[:12]} is not in the broker any more")
        return bytes(data)

    async def live_workers(self) -> dict[str, dict[str, Any]]:
        """Worker id -> heartbeat, for every worker whose heartbeat has not expired."""
        ids = await self.client.zrange(self.keys.workers, 0, -1)
        if not ids:
            return {}
        beats = await self.client.mget([self.keys.worker(w) for w in ids])
        alive = {w: json.loads(b) for w, b in zip(ids, beats, strict=True) if b}
        gone = [w for w, b in zip(ids, beats, strict=True) if not b]
        if gone:
            await self.client.zrem(self.keys.workers, *gone)
        return alive

    async def live_counts(self, versions: Sequence[str]) -> dict[str, int]:
        """Version -> workers serving it right now."""
        now = now_ms()
        async with self.client.pipeline(transaction=False) as pipe:
            for version in versions:
                pipe.zcount(self.keys.live(version), now, "+inf")
            counts = await pipe.execute()
        return {v: int(c) for v, c in zip(versions, counts, strict=True)}

    async def set_current(self, source: AdapterSource) -> DesiredSet:
        """Make `source` current, keep the other extras; a new generation."""
        return await self.change(
            lambda adapters: (source, *(a for a in adapters[1:] if a.version != source.version))
        )

    async def change(
        self, edit: Callable[[tuple[AdapterSource, ...]], tuple[AdapterSource, ...]]
    ) -> DesiredSet:
        """A new generation of the desired set, `edit(old adapters)` (current first), announced
        to the workers. Raises `ValueError` when the edit leaves nothing to serve."""
        current = await self.desired()
        adapters = edit(current.adapters if current else ())
        if not adapters:
            raise ValueError("the desired set cannot be empty")
        new = DesiredSet((current.generation if current else 0) + 1, adapters)
        await self.client.set(self.keys.desired, new.to_json())
        await self.client.publish(self.keys.events, f"reload {new.generation}")
        return new

    async def answer(self, generation: int, answer: WorkerAnswer) -> None:
        """A worker reports how its reload went."""
        key = self.keys.acks(generation)
        payload = {"ok": answer.ok, "versions": list(answer.versions), "error": answer.error}
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, answer.worker, json.dumps(payload))
            pipe.expire(key, 3600)
            await pipe.execute()

    async def wait_for_answers(self, generation: int, version: str, timeout_s: float) -> ReloadOutcome:
        """Wait until every live worker answered the reload of `generation` (or `timeout_s`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            alive = set(await self.live_workers())
            raw = await self.client.hgetall(self.keys.acks(generation))
            answers = {w: json.loads(v) for w, v in raw.items()}
            missing = tuple(sorted(alive - set(answers)))
            if not missing or loop.time() >= deadline:
                break
            await asyncio.sleep(0.2)
        return ReloadOutcome(
            version,
            generation,
            tuple(
                WorkerAnswer(w, bool(a["ok"]), tuple(a.get("versions", ())), str(a.get("error", "")))
                for w, a in sorted(answers.items())
            ),
            missing,
        )

    async def status(self) -> FleetStatus:
        """Everything `punchline status` prints."""
        desired = await self.desired()
        workers = await self.live_workers()
        versions = sorted(
            set(desired.versions if desired else ())
            | {v for w in workers.values() for v in w.get("versions", [])}
        )
        depths, pending = {}, {}
        for version in versions:
            stream = self.keys.requests(version)
            depths[version] = int(await self.client.xlen(stream))
            try:
                summary = await self.client.xpending(stream, GROUP)
                pending[version] = int(summary.get("pending", 0))
            except Exception:  # noqa: BLE001 - no group yet: nothing pending
                pending[version] = 0
        return FleetStatus(
            desired,
            tuple(workers[w] for w in sorted(workers)),
            depths,
            pending,
            await self.live_counts(versions),
            int(await self.client.xlen(self.keys.dead_letters)),
        )
