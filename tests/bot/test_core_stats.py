"""/stats: replies, ratings, scores, best punchlines, per version, worker line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.core.service import BotCore
from bot.storage import Storage
from bot.types import ChatKind, ChatRef, IncomingSetup, MessageRef, Platform, Rating, UserRef
from config.settings import Settings
from tests.fakes.generator import FakeGenerator

GROUP = ChatRef(Platform.TELEGRAM, "-100", ChatKind.GROUP)
OTHER = ChatRef(Platform.TELEGRAM, "-200", ChatKind.GROUP)
USERS = [UserRef(Platform.TELEGRAM, str(i), f"u{i}") for i in range(1, 6)]


@pytest.fixture
async def core(tmp_path: Path):
    storage = await Storage.open(tmp_path / "bot.db")
    yield BotCore(Settings(limits={"burst": 100}), storage, FakeGenerator(), ManualClock())
    await storage.close()


async def punchline(core: BotCore, chat: ChatRef, setup: str, text: str, version: str) -> int:
    core.generator.answer_with(text)
    core.generator.version = version
    reply = await core.handle_setup(IncomingSetup(chat, USERS[0], setup, True))
    await core.reply_sent(reply.reply_id, MessageRef(chat, f"m{reply.reply_id}"))
    return reply.reply_id


async def test_empty_chat(core) -> None:
    text = await core.stats_text(GROUP)
    assert "No punchlines here yet" in text
    assert "Model base on fake" in text and "tokens/s" in text


async def test_stats_per_chat_with_versions_and_top_three(core) -> None:
    a = await punchline(core, GROUP, "Why A?", "Alpha answer", "v1")
    b = await punchline(core, GROUP, "Why B?", "Beta answer", "v1")
    c = await punchline(core, GROUP, "Why C?", "Gamma answer", "v2")
    d = await punchline(core, GROUP, "Why D?", "Delta rude answer", "v2")
    e = await punchline(core, GROUP, "Why E?", "Epsilon answer", "v2")
    await punchline(core, OTHER, "Why X?", "Elsewhere answer", "v1")
    for u in USERS[:3]:
        await core.ratings.rate(MessageRef(GROUP, f"m{b}"), u, Rating.FUNNY)
    await core.ratings.rate(MessageRef(GROUP, f"m{a}"), USERS[0], Rating.FUNNY)
    await core.ratings.rate(MessageRef(GROUP, f"m{a}"), USERS[1], Rating.MEH)
    await core.ratings.rate(MessageRef(GROUP, f"m{c}"), USERS[0], Rating.FUNNY)
    for u in USERS[:3]:
        await core.ratings.rate(MessageRef(GROUP, f"m{d}"), u, Rating.FUNNY)
        await core.ratings.rate(MessageRef(GROUP, f"m{d}"), u, Rating.INAPPROPRIATE, source="battle")
    await core.ratings.set_reactions(MessageRef(GROUP, f"m{e}"), USERS[4], ["👎"])

    text = await core.stats_text(GROUP)
    assert "Stats for this chat" in text
    assert "5 replies, 5 rated, 10 ratings" in text
    assert "By model version:" in text
    # funny 8 (b 3, a 1, c 1, d 3) vs not funny 2 (a, e): (8 - 2) / 10; d flagged by 3 of 10.
    assert "funniness +0.60 (−1…+1) · appropriate 70%" in text
    assert "v1: 2 replies, 2 rated, 5 ratings · funniness +0.60" in text
    assert "v2: 3 replies, 3 rated, 5 ratings · funniness +0.60 (−1…+1) · appropriate 40%" in text
    lines = text.splitlines()
    best = lines[lines.index("Best rated:") + 1 :]
    assert best[0].startswith("  1. Why B? — Beta answer (+1.00, 3 ratings)")
    assert best[1].startswith("  2. Why C? — Gamma answer (+1.00, 1 rating)")
    assert best[2].startswith("  3. Why A? — Alpha answer (+0.00, 2 ratings)")
    assert "Delta" not in text  # flagged by everyone who rated it: never shown off
    assert "Elsewhere" not in text  # another chat's punchline


async def test_busy_requests_are_counted(core) -> None:
    from model.types import WorkerBusy

    core.generator.fail_next(WorkerBusy("full"))
    await core.handle_setup(IncomingSetup(GROUP, USERS[0], "Why?", True))
    assert "1 request could not be answered" in await core.stats_text(GROUP)
