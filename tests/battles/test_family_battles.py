"""Family mode in battles (a real SQLite file, the real word-list filter, a scripted
generator): offensive setups are refused, people's flagged entries are withheld and never
reach a ballot, a flagged classic sits the round out, and the bot's own entry is screened."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.battles import views
from bot.battles.models import AuthorKind, RefusalReason
from bot.battles.pool import PoolSetup, SetupPool
from bot.battles.service import BattleService
from bot.clock import ManualClock
from bot.core.access import Access
from bot.storage import Storage
from bot.types import ChatKind, ChatRef, Platform, UserRef
from config.settings import load_settings
from tests.fakes.announcer import FakeAnnouncer
from tests.fakes.generator import FakeGenerator

FAMILY = ChatRef(Platform.TELEGRAM, "-1001", ChatKind.GROUP, "School")
ALICE = UserRef(Platform.TELEGRAM, "1", "Alice")
BOB = UserRef(Platform.TELEGRAM, "2", "Bob")
FLAGGED = "Because he was a total sh1thead."
CLEAN = "Because he was outstanding in his field."


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[BattleService, FakeGenerator, FakeAnnouncer]]:
    settings = load_settings(battles={"entry_seconds": 60, "vote_seconds": 30})
    storage = await Storage.open(tmp_path / "bot.db")
    generator = FakeGenerator([CLEAN])
    pool = SetupPool(
        None,
        setups=[
            PoolSetup("Why did the scarecrow win an award?", "A classic that says fuck."),
        ],
    )
    battles = BattleService(
        settings, storage, generator, ManualClock(), Access(settings), pool=pool, rng=random.Random(1)
    )
    announcer = FakeAnnouncer()
    battles.attach(Platform.TELEGRAM, announcer)
    yield battles, generator, announcer
    await battles.close()
    await storage.close()


async def open_round(battles: BattleService, setup: str | None) -> int:
    answer = await battles.start(FAMILY, ALICE, setup)
    assert answer.ok, answer.text
    await battles.settle()
    battle = await battles.storage.battles.open_in_chat(FAMILY.platform, FAMILY.chat_id)
    assert battle is not None
    return battle.id


async def test_an_offensive_setup_is_refused_in_a_family_group(service) -> None:  # type: ignore[no-untyped-def]
    battles, generator, _ = service
    answer = await battles.start(FAMILY, ALICE, "Why is my b1tch of a cat so rude?")
    assert not answer.ok and answer.reason is RefusalReason.FAMILY and answer.text == views.MSG_FAMILY_SETUP
    assert generator.calls == []


async def test_a_flagged_entry_is_withheld_and_the_classic_sits_out(service) -> None:  # type: ignore[no-untyped-def]
    battles, _, _ = service
    battle_id = await open_round(battles, None)  # from the pool: its classic says "fuck"
    withheld = await battles.entries.submit(battle_id, BOB, FLAGGED)
    assert not withheld.ok and withheld.reason is RefusalReason.FAMILY
    assert withheld.text == views.MSG_ENTRY_WITHHELD
    kept = await battles.entries.submit(battle_id, BOB, "Because of his fieldwork.")
    assert kept.ok
    entries = await battles.storage.battle_entries.entries(battle_id)
    assert sorted(e.kind for e in entries) == sorted([AuthorKind.BOT, AuthorKind.PERSON])  # no classic
    assert FLAGGED not in [e.text for e in entries]


async def test_the_bots_entry_in_a_family_group_is_screened(service) -> None:  # type: ignore[no-untyped-def]
    battles, generator, _ = service
    generator.answer_with(FLAGGED, FLAGGED, FLAGGED, CLEAN)
    battle_id = await open_round(battles, "Why did the cow cross the road?")
    [bot_entry] = [
        e for e in await battles.storage.battle_entries.entries(battle_id) if e.kind is AuthorKind.BOT
    ]
    assert bot_entry.text == CLEAN
    assert all(call.safe for call in generator.calls)


async def test_with_family_mode_off_entries_are_not_filtered(service) -> None:  # type: ignore[no-untyped-def]
    battles, _, _ = service
    chat = ChatRef(Platform.TELEGRAM, "-1002", ChatKind.GROUP, "Adults")
    await battles.storage.people.set_chat_setting(chat, "family", False, battles.clock.now())
    assert (await battles.start(chat, ALICE, "Why did the cow cross the road?")).ok
    await battles.settle()
    battle = await battles.storage.battles.open_in_chat(chat.platform, chat.chat_id)
    assert battle is not None
    assert (await battles.entries.submit(battle.id, BOB, FLAGGED)).ok
