"""Load benchmark: many simulated people against a real `punchline serve` on loopback.

One run starts the fake Bot API server (tests/fakes/telegram_api) in this process and
`punchline serve` as a child process pointed at it, with the in-process worker over a model
with random weights and the real flan-t5 tokenizer from $PUNCHLINE_SHARED_DATA: by default a
tiny T5 that answers in milliseconds, so what is measured is the bot (polling, limits,
storage, the outbox, Telegram's flood limits) rather than the model; `--model small` uses
two layers of flan-t5-large's shape instead, to see the model's queue as well. Then `--people` simulated people each send `--per-person` setups, the
way people do: one at a time, waiting for the answer (or `--patience` seconds), then a pause.
Most chat in private; every `--group-size` of the rest share a group and ask with /joke. It
is bounded by `--duration` (no new setups after it) and by the count.

Printed: how many setups got a punchline, a clear busy/try-again answer, an error answer, or
nothing (lost); p50/p95 answer latency (from the update being queued to the bot's sendMessage
reaching the API); and, read from the bot's SQLite file once it has stopped, request rows still
`received` and sent punchlines without their message id (both should be 0).

Usage:
    python bench/load.py                      # 300 people x 3 setups (~2 minutes on 2 cores)
    python bench/load.py --people 40 --per-person 2 --duration 30    # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from inference import build_random_model, load_setups, shared_flan_dir  # type: ignore[import-not-found]  # noqa: E402

from bot.core import texts  # noqa: E402
from model.metrics import percentile  # noqa: E402
from tests.fakes.telegram_api import FakeBotAPI  # noqa: E402

MODELS = {"tiny": "tiny T5 (d_model 32)", "small": "2-layer flan-t5-large-shaped model"}
BUSY_PREFIXES = tuple(
    t.split("{")[0]
    for t in (texts.MSG_BUSY, texts.MSG_IN_FLIGHT, texts.MSG_SLOW_DOWN, texts.MSG_CHAT_SLOW_DOWN)
)


@dataclass
class Outcome:
    kind: str  # punchline, busy, error, lost
    latency_s: float | None = None
    group: bool = False


@dataclass
class Replies:
    """Indexes the bot's sendMessage calls by the message they answer, as they arrive."""

    api: FakeBotAPI
    seen: int = 0
    waiting: dict[tuple[int, int], asyncio.Future[Any]] = field(default_factory=dict)

    def expect(self, chat_id: int, message_id: int) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[(chat_id, message_id)] = future
        return future

    def scan(self) -> None:
        calls = self.api.calls
        for call in calls[self.seen :]:
            if call.method == "sendMessage" and not call.failed and call.reply_to_message_id is not None:
                future = self.waiting.pop((call.chat_id, call.reply_to_message_id), None)
                if future is not None and not future.done():
                    future.set_result(call)
        self.seen = len(calls)

    async def keep_scanning(self) -> None:
        while True:
            self.scan()
            await asyncio.sleep(0.01)


def classify(text: str) -> str:
    if text.startswith(BUSY_PREFIXES):
        return "busy"
    if text == texts.MSG_ERROR:
        return "error"
    return "punchline"


async def person(
    api: FakeBotAPI,
    replies: Replies,
    chat: dict[str, Any],
    user: dict[str, Any],
    setups: list[str],
    args: argparse.Namespace,
    stop_at: float,
    rng: random.Random,
    out: list[Outcome],
) -> None:
    await asyncio.sleep(rng.uniform(0, args.ramp))
    for setup in setups:
        if time.monotonic() >= stop_at:
            return
        text = setup if chat["type"] == "private" else f"/joke {setup}"
        started = time.monotonic()
        message = api.push_message(chat, user, text)
        answer = replies.expect(chat["id"], message["message_id"])
        try:
            call = await asyncio.wait_for(answer, args.patience)
        except TimeoutError:
            out.append(Outcome("lost", group=chat["type"] != "private"))
        else:
            out.append(Outcome(classify(call.params["text"]), call.at - started, chat["type"] != "private"))
        await asyncio.sleep(rng.uniform(0, args.pause))


def serve_env(api: FakeBotAPI, root: Path, model_dir: Path, backend: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUNCHLINE_")}
    env.update(
        PUNCHLINE_TELEGRAM__TOKEN=api.token,
        PUNCHLINE_TELEGRAM__BASE_URL=api.base_url,
        PUNCHLINE_TELEGRAM__BASE_FILE_URL=api.base_file_url,
        PUNCHLINE_TELEGRAM__POLL_TIMEOUT="1",
        PUNCHLINE_STORAGE__PATH=str(root / "load.db"),
        PUNCHLINE_MODEL__BASE=str(model_dir),
        PUNCHLINE_MODEL__BACKEND=backend,
        PUNCHLINE_MODEL__CANDIDATES="1",
        PUNCHLINE_MODEL__CACHE_DIR=str(root / "cache"),
        PUNCHLINE_METRICS__PORT="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def database_checks(db: Path) -> tuple[int, int, int]:
    """(requests still received, punchlines without a message id, requests stored)."""
    with sqlite3.connect(db) as conn:
        received = conn.execute("SELECT COUNT(*) FROM requests WHERE status = 'received'").fetchone()[0]
        unlinked = conn.execute("SELECT COUNT(*) FROM replies WHERE message_id IS NULL").fetchone()[0]
        stored = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    return received, unlinked, stored


def build_tiny_model(flan_dir: Path, out: Path) -> None:
    """A T5 with d_model 32 and the real tokenizer: generation costs next to nothing."""
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(flan_dir)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
        num_heads=4, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
        decoder_start_token_id=tokenizer.pad_token_id, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


async def run(args: argparse.Namespace, root: Path) -> None:
    flan = shared_flan_dir()
    model_dir = root / "model"
    if args.model == "tiny":
        build_tiny_model(flan, model_dir)
    else:
        build_random_model(flan, model_dir, quick=True)
    pool = load_setups(flan, 400)
    rng = random.Random(7)
    async with FakeBotAPI() as api:
        log = (root / "serve.log").open("wb")
        serve = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve"],
            cwd=root,
            env=serve_env(api, root, model_dir, args.backend),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        replies = Replies(api)
        scanner = asyncio.create_task(replies.keep_scanning())
        try:
            await api.wait_for("getUpdates", timeout=300)
            private_count = int(args.people * (1 - args.group_share))
            users = [api.user(10_000 + i, f"Person {i}") for i in range(args.people)]
            chats = [api.private_chat(u) for u in users[:private_count]]
            for g, start in enumerate(range(private_count, args.people, args.group_size)):
                group = api.group_chat(-1_001_000_000_000 - g, f"Load group {g}")
                api.set_bot_admin(group["id"])
                chats += [group] * len(users[start : start + args.group_size])
            outcomes: list[Outcome] = []
            started = time.monotonic()
            stop_at = started + args.duration
            await asyncio.gather(
                *(
                    person(
                        api,
                        replies,
                        chat,
                        user,
                        rng.sample(pool, args.per_person),
                        args,
                        stop_at,
                        rng,
                        outcomes,
                    )
                    for user, chat in zip(users, chats)
                )
            )
            elapsed = time.monotonic() - started
        finally:
            scanner.cancel()
            serve.terminate()
            try:
                serve.wait(60)
            except subprocess.TimeoutExpired:
                serve.kill()
                print("bench: punchline serve did not stop within 60 s of SIGTERM")
        received, unlinked, stored = database_checks(root / "load.db")
    report(args, outcomes, elapsed, received, unlinked, stored, serve.returncode)


def report(
    args: argparse.Namespace,
    outcomes: list[Outcome],
    elapsed: float,
    received: int,
    unlinked: int,
    stored: int,
    returncode: int | None,
) -> None:
    counts = Counter(o.kind for o in outcomes)
    answered = [o.latency_s for o in outcomes if o.latency_s is not None and o.kind == "punchline"]
    every = [o.latency_s for o in outcomes if o.latency_s is not None]
    groups = args.people - int(args.people * (1 - args.group_share))
    print(
        f"load: {args.people} people ({groups} in groups of {args.group_size}), up to {args.per_person} "
        f"setups each, backend {args.backend} on the {MODELS[args.model]}"
    )
    print(f"  sent {len(outcomes)} setups in {elapsed:.1f} s ({len(outcomes) / elapsed:.1f}/s)")
    print(
        f"  answered {counts['punchline']}, busy {counts['busy']}, error {counts['error']}, "
        f"lost {counts['lost']} (no answer within {args.patience:.0f} s)"
    )
    if answered:
        print(
            f"  punchline latency p50 {percentile(answered, 50):.2f} s, p95 {percentile(answered, 95):.2f} s; "
            f"any answer p95 {percentile(every, 95):.2f} s"
        )
        for label, in_group in (("private chats", False), ("groups", True)):
            some = [o.latency_s for o in outcomes if o.latency_s is not None and o.group is in_group]
            if some:
                print(f"    {label}: p50 {percentile(some, 50):.2f} s, p95 {percentile(some, 95):.2f} s")
    print(
        f"  database: {stored} requests stored, {received} left 'received', "
        f"{unlinked} punchlines without their message id; serve exited {returncode}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--per-person", type=int, default=3)
    parser.add_argument("--group-share", type=float, default=0.3, help="share of people chatting in groups")
    parser.add_argument("--group-size", type=int, default=5)
    parser.add_argument("--duration", type=float, default=120.0, help="no new setups after this many seconds")
    parser.add_argument("--ramp", type=float, default=10.0, help="people start within this many seconds")
    parser.add_argument(
        "--pause", type=float, default=3.0, help="at most this long between a person's setups"
    )
    parser.add_argument(
        "--patience", type=float, default=60.0, help="seconds an answer may take before it is lost"
    )
    parser.add_argument("--backend", default="auto", help="the worker backend (auto: ONNX Runtime on CPU)")
    parser.add_argument("--model", choices=sorted(MODELS), default="tiny")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="punchline-load-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
