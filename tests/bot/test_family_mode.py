"""Family mode through the real Telegram stack (python-telegram-bot against the fake Bot API),
the real core and SQLite file, the real word-list filter and a scripted generator: a family
group never receives a flagged punchline, offensive setups (leetspeak too) are refused,
innocent words are not, and a chat with family mode off gets what the model says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.core import texts
from bot.core.inline import InlineDesk
from bot.core.suggestions import SetupSuggestions
from bot.types import MessageRef
from tests.fakes.telegram_api import FakeBotAPI
from tests.helpers.telegram_bot import Bot, running_bot, tg_chat, tg_user

FLAGGED = ["You fucking donkey.", "What a sh1t answer.", "Total b.u.l.l.s.h.i.t."]
CLEAN = "Because it was outstanding in its field."


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotAPI, tmp_path: Path) -> AsyncIterator[Bot]:
    async with running_bot(api, tmp_path / "bot.db", admin_ids=[7]) as running:
        yield running


@pytest.fixture
def alice(api: FakeBotAPI) -> dict[str, Any]:
    return api.user(1001, "Alice")


def texts_sent(bot: Bot) -> list[str]:
    return [c.params["text"] for c in bot.api.calls_of("sendMessage")]


async def test_a_family_group_never_receives_a_flagged_punchline(bot: Bot, alice: dict) -> None:
    group = bot.api.group_chat(-100501, "School")
    bot.generator.answer_with(*FLAGGED, CLEAN)  # the first three candidates are all flagged
    asked = bot.api.push_command(group, alice, "joke", "Why did the scarecrow win an award?")
    answer = await bot.reply_to(asked)
    await bot.linked(answer)

    assert answer.params["text"] == CLEAN
    assert all(call.safe for call in bot.generator.calls)  # decoding banned the worst words too
    assert [c.n for c in bot.generator.calls] == [3, 6]  # a second, larger try after the first
    assert not any(flagged in text for flagged in FLAGGED for text in texts_sent(bot))
    reply = await bot.storage.requests.find_reply(
        MessageRef(tg_chat(group), str(answer.result["message_id"]))
    )
    assert reply is not None and reply.text == CLEAN  # the clean one is what gets rated


async def test_when_nothing_clean_survives_a_clean_canned_line_answers(bot: Bot, alice: dict) -> None:
    group = bot.api.group_chat(-100502, "School")
    bot.generator.answer_with(FLAGGED[0])  # every candidate, every try
    answer = await bot.reply_to(bot.api.push_command(group, alice, "joke", "Why did the chicken cross?"))

    assert answer.params["text"] == texts.MSG_FAMILY_CLEAN
    assert answer.callback_data == []  # canned, not the model's: nothing to rate
    assert len(bot.generator.calls) == 1 + bot.core.settings.safety.retries
    assert not any(FLAGGED[0] in text for text in texts_sent(bot))
    counts = await bot.storage.requests.counts(tg_chat(group))
    assert counts["refused"] == 1 and counts["answered"] == 0


@pytest.mark.parametrize(
    "setup", ["Why is my b1tch of a boss so mean?", "What do you call a f.u.c.k.i.n.g mess?"]
)
async def test_offensive_setups_leetspeak_included_are_refused_in_a_family_group(
    bot: Bot, alice: dict, setup: str
) -> None:
    group = bot.api.group_chat(-100503, "School")
    answer = await bot.reply_to(bot.api.push_command(group, alice, "joke", setup))
    assert answer.params["text"] == texts.MSG_FAMILY_SETUP
    assert not bot.generator.calls


async def test_innocent_words_that_contain_a_listed_string_are_answered(bot: Bot, alice: dict) -> None:
    group = bot.api.group_chat(-100504, "School")
    bot.generator.answer_with(CLEAN)
    for setup in ("Why is Scunthorpe so cold?", "What does an assassin order at a cocktail bar?"):
        answer = await bot.reply_to(bot.api.push_command(group, alice, "joke", setup))
        assert answer.params["text"] == CLEAN
    assert [c.setup for c in bot.generator.calls] == [
        "Why is Scunthorpe so cold?",
        "What does an assassin order at a cocktail bar?",
    ]


async def test_with_family_mode_off_the_model_is_not_filtered(bot: Bot, alice: dict) -> None:
    private = bot.api.private_chat(alice)  # off by default in private chats
    bot.generator.answer_with(FLAGGED[0])
    answer = await bot.reply_to(bot.api.push_message(private, alice, "Why did the donkey cross?"))
    assert answer.params["text"] == FLAGGED[0]
    assert [c.safe for c in bot.generator.calls] == [False]

    group = bot.api.group_chat(-100505, "Adults")
    admin = bot.api.user(7, "Owner")
    off = await bot.reply_to(bot.api.push_command(group, admin, "family", "off"))
    assert off.params["text"] == texts.MSG_FAMILY_OFF
    answer = await bot.reply_to(bot.api.push_command(group, alice, "joke", "Why did the donkey cross?"))
    assert answer.params["text"] == FLAGGED[0]


async def test_inline_answers_are_family_safe(bot: Bot, alice: dict) -> None:
    """An inline result can land in any chat, so it is screened like a family chat's."""
    desk: InlineDesk = bot.core.inline
    bot.generator.answer_with(FLAGGED[0], CLEAN, FLAGGED[1])
    answer = await desk.answer(tg_user(alice), "Why did the cow cross?")
    assert [p.text for p in answer.punchlines] == [CLEAN]
    assert bot.generator.calls[-1].safe
    # Setups suggested for an empty query come from the pool (r/Jokes): screened too.
    desk.suggestions = SetupSuggestions(lambda: ["Why is porn so popular?", "Why did the cow moo?"])
    offered = await desk.answer(tg_user(alice), "")
    assert offered.suggestions == ["Why did the cow moo?"]


async def test_a_joke_on_request_in_a_family_group_picks_a_clean_setup(bot: Bot, alice: dict) -> None:
    bot.core.suggestions = SetupSuggestions(lambda: ["Why is porn so popular?", "Why did the cow moo?"])
    group = bot.api.group_chat(-100506, "School")
    for _ in range(3):
        answer = await bot.reply_to(bot.api.push_command(group, alice, "joke"))
        assert answer.params["text"].startswith("Why did the cow moo?")
    assert {c.setup for c in bot.generator.calls} == {"Why did the cow moo?"}
