"""What a request and a reply carry on the streams, and how each is written and read.

A request carries an absolute wall-clock deadline (epoch milliseconds): a monotonic clock means
nothing on another host. A reply carries a status that maps onto the `model.types` errors, so a
caller of `RemoteGenerator.punchlines` sees exactly what a caller of the in-process worker sees.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from model.types import (
    DeadlineExceeded,
    GenerationError,
    InvalidSetup,
    Punchline,
    WorkerBusy,
    WorkerClosed,
    WorkerUnavailable,
)


def now_ms() -> int:
    """The wall clock in epoch milliseconds, the unit every message uses."""
    return int(time.time() * 1000)


class Status(StrEnum):
    OK = "ok"
    BUSY = "busy"  # admission: the version's stream is full
    UNAVAILABLE = "unavailable"  # admission: no live worker serves the version
    EXPIRED = "expired"  # the deadline passed before the punchline was ready
    CLOSED = "closed"  # the worker shut down before starting it: retryable
    FAILED = "failed"  # generation failed, or workers kept dying on it
    INVALID = "invalid"  # not a usable setup (empty, too long, n out of range)
    UNKNOWN_VERSION = "unknown_version"  # the worker does not serve that version (any more)


_ERRORS: dict[Status, type[GenerationError]] = {
    Status.BUSY: WorkerBusy,
    Status.UNAVAILABLE: WorkerUnavailable,
    Status.EXPIRED: DeadlineExceeded,
    Status.CLOSED: WorkerClosed,
    Status.FAILED: GenerationError,
    Status.INVALID: InvalidSetup,
    Status.UNKNOWN_VERSION: GenerationError,
}


def status_of(error: BaseException) -> Status:
    """The reply status for an error the local worker raised."""
    for status, kind in _ERRORS.items():
        if type(error) is kind:
            return status
    return Status.FAILED


@dataclass(frozen=True, slots=True)
class Request:
    id: str
    reply_to: str  # the bot's reply stream
    setup: str
    n: int
    version: str
    deadline_ms: int  # absolute, epoch ms
    budget_ms: int  # how long the caller gave it, for logs and lag figures
    sent_ms: int = field(default_factory=now_ms)
    safe: bool = False  # a family chat's: blocked phrases banned at decoding

    def fields(self) -> dict[str, str]:
        return {
            "id": self.id,
            "reply": self.reply_to,
            "setup": self.setup,
            "n": str(self.n),
            "version": self.version,
            "deadline_ms": str(self.deadline_ms),
            "budget_ms": str(self.budget_ms),
            "sent_ms": str(self.sent_ms),
            "safe": "1" if self.safe else "0",
        }

    @classmethod
    def parse(cls, fields: Mapping[str, str]) -> Request:
        """A request from stream fields; ValueError/KeyError for a malformed entry."""
        return cls(
            id=fields["id"],
            reply_to=fields["reply"],
            setup=fields["setup"],
            n=int(fields["n"]),
            version=fields["version"],
            deadline_ms=int(fields["deadline_ms"]),
            budget_ms=int(fields["budget_ms"]),
            sent_ms=int(fields["sent_ms"]),
            # Absent from an older bot's requests, which never asked for it.
            safe=fields.get("safe", "0") == "1",
        )

    def expired(self, at_ms: int | None = None) -> bool:
        return (now_ms() if at_ms is None else at_ms) >= self.deadline_ms


@dataclass(frozen=True, slots=True)
class Reply:
    id: str  # the request's id
    status: Status
    punchlines: tuple[Punchline, ...] = ()
    error: str = ""
    worker: str = ""
    queue_ms: int = 0  # from the request's arrival to the start of its generation
    gen_ms: int = 0  # generation time of its batch

    def fields(self) -> dict[str, str]:
        lines = [{"text": p.text, "version": p.version, "score": p.score} for p in self.punchlines]
        return {
            "id": self.id,
            "status": self.status.value,
            "error": self.error,
            "worker": self.worker,
            "queue_ms": str(self.queue_ms),
            "gen_ms": str(self.gen_ms),
            "punchlines": json.dumps(lines, ensure_ascii=False),
        }

    @classmethod
    def parse(cls, fields: Mapping[str, str]) -> Reply:
        """A reply from stream fields; ValueError/KeyError for a malformed entry."""
        lines = json.loads(fields.get("punchlines", "[]"))
        return cls(
            id=fields["id"],
            status=Status(fields["status"]),
            punchlines=tuple(Punchline(str(p["text"]), str(p["version"]), float(p["score"])) for p in lines),
            error=fields.get("error", ""),
            worker=fields.get("worker", ""),
            queue_ms=int(fields.get("queue_ms", 0)),
            gen_ms=int(fields.get("gen_ms", 0)),
        )

    def result(self) -> list[Punchline]:
        """The punchlines, or the `model.types` error the status stands for."""
        if self.status is Status.OK:
            return list(self.punchlines)
        raise _ERRORS[self.status](self.error or f"the worker answered {self.status.value}")
