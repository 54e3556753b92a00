"""The feedback loop docs/DESIGN.md promises: ratings collected by the bot → `punchline ratings export`
→ `punchline train --data` input. Only punchlines people liked become training data."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.clock import ManualClock
from bot.core.service import BotCore
from bot.storage import Storage
from bot.types import ChatKind, ChatRef, IncomingSetup, MessageRef, Platform, Rating, UserRef
from config.settings import Settings
from tests.fakes.generator import FakeGenerator
from training.readers import PER_RATER, RATED_INAPPROPRIATE, RATED_NOT_FUNNY, read_jokes

CHAT = ChatRef(Platform.TELEGRAM, "-100", ChatKind.GROUP)
PEOPLE = [UserRef(Platform.TELEGRAM, str(i), f"user{i}") for i in range(1, 4)]


async def _rated_database(path: Path) -> None:
    """Three punchlines: one liked, one disliked, one flagged by most raters."""
    verdicts = {
        "A frog. It croaks every night.": [Rating.FUNNY, Rating.FUNNY, Rating.MEH],
        "Because it was there.": [Rating.MEH, Rating.MEH, None],
        "Something rude.": [Rating.FUNNY, Rating.INAPPROPRIATE, Rating.INAPPROPRIATE],
    }
    gen = FakeGenerator(version="v1")
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    async with await Storage.open(path) as storage:
        core = BotCore(Settings(), storage, gen, clock)
        for n, (punchline, ratings) in enumerate(verdicts.items()):
            gen.answer_with(punchline)
            reply = await core.handle_setup(IncomingSetup(CHAT, PEOPLE[n], f"Setup number {n}?", True))
            assert reply is not None and reply.reply_id is not None
            ref = MessageRef(CHAT, str(100 + n))
            await core.reply_sent(reply.reply_id, ref)
            for person, rating in zip(PEOPLE, ratings):
                if rating is not None:
                    await core.ratings.rate(ref, person, rating)
            clock.advance(60)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_exported_ratings_train_only_on_what_landed(tmp_path: Path, fmt: str) -> None:
    db = tmp_path / "bot.db"
    asyncio.run(_rated_database(db))  # the CLI below runs its own event loop
    out = tmp_path / f"ratings.{fmt}"
    assert main(["ratings", "export", "--db", str(db), "--format", fmt, "--output", str(out)]) == 0

    result = read_jokes(out)

    assert result.format == "ratings"
    assert [(j.question, j.answer) for j in result.jokes] == [
        ("Setup number 0?", "A frog. It croaks every night.")
    ]
    assert result.jokes[0].score == pytest.approx(1 / 3, abs=1e-3)  # the funniness score
    # Each of the 8 ratings also has its own row (for preference pairs); it is counted once,
    # in its reply's score, never trained on twice.
    assert result.skipped == {RATED_NOT_FUNNY: 1, RATED_INAPPROPRIATE: 1, PER_RATER: 8}
