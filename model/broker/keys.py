"""Every Redis key Punchline uses, in one place.

All keys share the hash tag `{<namespace>}`, so Redis Cluster puts them in one slot and the
multi-key Lua scripts (admission, completion) stay valid there.
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "workers"  # the consumer group on every request stream


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str = "punchline"

    @property
    def prefix(self) -> str:
        return "{" + self.namespace + "}"

    def requests(self, version: str) -> str:
        """The request stream of one adapter version."""
        return f"{self.prefix}:req:{version}"

    def replies(self, bot_id: str) -> str:
        """The reply stream of one bot process (it expires when the process is gone)."""
        return f"{self.prefix}:rep:{bot_id}"

    def live(self, version: str) -> str:
        """Sorted set: worker id -> the instant (epoch ms) its heartbeat for this version expires."""
        return f"{self.prefix}:live:{version}"

    def worker(self, worker_id: str) -> str:
        """A worker's heartbeat (its stats as JSON), with a TTL: present means alive."""
        return f"{self.prefix}:worker:{worker_id}"

    @property
    def workers(self) -> str:
        """Sorted set: worker id -> last heartbeat (epoch ms), for `punchline status`."""
        return f"{self.prefix}:workers"

    @property
    def desired(self) -> str:
        """The desired adapter set (JSON): what every worker should serve."""
        return f"{self.prefix}:desired"

    def adapter(self, digest: str) -> str:
        """An uploaded adapter directory (tar.gz bytes), by its sha256."""
        return f"{self.prefix}:adapter:{digest}"

    def acks(self, generation: int) -> str:
        """Hash: worker id -> its answer (JSON) to the reload of that generation."""
        return f"{self.prefix}:acks:{generation}"

    @property
    def events(self) -> str:
        """Pub/sub channel: "reload" when the desired set changed."""
        return f"{self.prefix}:events"

    @property
    def dead_letters(self) -> str:
        """Requests that failed `max_deliveries` times, kept for a person to look at."""
        return f"{self.prefix}:dead"

    def limit(self, key: str) -> str:
        """A person's or a chat's token bucket (hash: tokens, updated)."""
        return f"{self.prefix}:limit:{key}"

    def in_flight(self, key: str) -> str:
        """Present while a person's request is being answered."""
        return f"{self.prefix}:inflight:{key}"

    def lease(self, name: str) -> str:
        """A lease only one process may hold (e.g. the Telegram poller)."""
        return f"{self.prefix}:lease:{name}"
