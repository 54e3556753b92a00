"""A `kill -9` at any moment leaves the SQLite file consistent, and nothing that was committed
(acknowledged to a person) is lost: a writer in a child process prints each id once its
transaction committed; it is killed mid-stream; every printed id must be there."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.storage import Storage
from bot.types import ChatKind, ChatRef, Platform

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import asyncio, sys
from datetime import UTC, datetime
from bot.storage import Storage
from bot.types import ChatKind, ChatRef, MessageRef, Platform, UserRef

async def main(path):
    storage = await Storage.open(path)
    chat = ChatRef(Platform.TELEGRAM, "-1", ChatKind.GROUP)
    for n in range(100_000):
        user = UserRef(Platform.TELEGRAM, str(n % 7), "u")
        now = datetime.now(UTC)
        request = await storage.requests.add(chat, user, f"setup {n}?", str(n), now)
        reply = await storage.requests.add_reply(request, chat, f"punchline {n}", "v1", -0.5, now)
        await storage.requests.set_reply_message(reply, MessageRef(chat, f"m{n}"), now)
        await storage.ratings.put_reaction(reply, user, "button", emojis=(), rating="funny", funniness=1,
            appropriateness=0, action="rate", event_payload=["funny"], at=now)
        print(f"ack {reply}", flush=True)  # committed: a person would now see "Noted"

asyncio.run(main(sys.argv[1]))
"""


async def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    rng = random.Random(7)
    acked: list[int] = []
    for _round in range(3):  # three kills, each at a random moment, on the same file
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert child.stdout is not None
        started = time.monotonic()
        kill_at = rng.uniform(0.5, 1.5)
        while time.monotonic() - started < kill_at:
            line = await asyncio.to_thread(child.stdout.readline)
            if not line:
                raise AssertionError("the writer stopped on its own")
            if line.startswith(b"ack "):
                acked.append(int(line.split()[1]))
        child.send_signal(signal.SIGKILL)
        # Whatever it printed before dying was committed before it printed.
        rest = child.stdout.read()
        acked += [int(x.split()[1]) for x in rest.splitlines() if x.startswith(b"ack ")]
        child.wait(10)
    assert len(acked) > 10
    storage = await Storage.open(path)  # the integrity check at open passes
    try:
        assert await storage.integrity_problems() == []
        chat = ChatRef(Platform.TELEGRAM, "-1", ChatKind.GROUP)
        tallies = {t.reply_id: t for t in await storage.ratings.tallies(chat=chat)}
        for reply_id in acked:
            assert reply_id in tallies, f"reply {reply_id} was acknowledged but is gone"
            assert tallies[reply_id].funny == 1, f"the rating of reply {reply_id} is gone"
    finally:
        await storage.close()
