"""Telegram inline mode through the real python-telegram-bot stack and the fake Bot API: a burst
of keystrokes gets one answer for the latest text, a chosen result is stored and rateable by
the buttons under the inline message, an empty query suggests setups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.core.inline import MSG_INLINE_NOT_ALLOWED
from bot.core.suggestions import BUILT_IN
from bot.core.texts import MSG_FAMILY_SETUP, MSG_STALE
from bot.telegram.inline import INLINE_CHAT, inline_ref
from tests.fakes.telegram_api import FakeBotAPI
from tests.helpers.telegram_bot import Bot, eventually, running_bot, tg_user

DEBOUNCE_S = 0.3


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotAPI, tmp_path: Path) -> AsyncIterator[Bot]:
    async with running_bot(api, tmp_path / "bot.db", inline={"debounce_s": DEBOUNCE_S}) as running:
        yield running


@pytest.fixture
def alice(api: FakeBotAPI) -> dict[str, Any]:
    return api.user(1001, "Alice")


async def test_a_burst_of_keystrokes_gets_one_answer_for_the_latest_text(bot: Bot, alice: dict) -> None:
    bot.generator.answer_with("Because he lost his marbles.", "Lightsaber tan.", "The Force was weak.")
    typed = "Why do Yoda's jokes always suck?"
    ids = []
    for end in range(8, len(typed) + 1, 4):  # a keystroke every 50 ms, faster than the pause
        ids.append(bot.api.push_inline_query(alice, typed[:end]))
        await asyncio.sleep(0.05)
    ids.append(bot.api.push_inline_query(alice, typed))

    answer = await bot.api.wait_for("answerInlineQuery")
    await asyncio.sleep(DEBOUNCE_S * 2)  # anything else would have come by now

    assert [c.params["inline_query_id"] for c in bot.api.calls_of("answerInlineQuery")] == [ids[-1]]
    assert [c.setup for c in bot.generator.calls] == [typed]  # the model saw only the latest text
    results = answer.params["results"]
    assert [r["title"] for r in results] == [
        "Because he lost his marbles.",
        "Lightsaber tan.",
        "The Force was weak.",
    ]
    assert answer.params["is_personal"] is True
    assert results[0]["input_message_content"]["message_text"] == f"{typed}\n\nBecause he lost his marbles."
    buttons = [b["callback_data"] for row in results[0]["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == ["1:rate:funny", "1:rate:meh", "1:rate:inappropriate"]  # no 🔁 inline


async def test_a_chosen_result_is_stored_and_its_buttons_rate_it(bot: Bot, alice: dict) -> None:
    bot.generator.answer_with("Lightsaber tan.", "Because.")
    bot.api.push_inline_query(alice, "Why was Yoda so brown?")
    answer = await bot.api.wait_for("answerInlineQuery")
    picked = answer.params["results"][0]

    bot.api.push_chosen_inline_result(alice, picked["id"], "Why was Yoda so brown?", "AgAAAInline42")
    ref = inline_ref("AgAAAInline42")

    async def stored() -> bool:
        return await bot.storage.requests.find_reply(ref) is not None

    await eventually(stored)
    reply = await bot.storage.requests.find_reply(ref)
    assert reply is not None and reply.text == "Lightsaber tan." and reply.version == bot.generator.version
    asked = await bot.storage.requests.setup_of(reply.id)
    assert asked is not None and asked[0] == "Why was Yoda so brown?" and asked[1].user_id == str(alice["id"])
    assert reply.chat_id == INLINE_CHAT.chat_id

    query_id = bot.api.push_inline_callback("AgAAAInline42", alice, "1:rate:funny")
    pressed = await bot.api.wait_for(
        "answerCallbackQuery", lambda c: c.params["callback_query_id"] == query_id
    )
    assert pressed.params["text"] == "Noted: funny 🤣"
    record = await bot.storage.ratings.get_reaction(reply.id, tg_user(alice), "button")
    assert record is not None and record.funniness == 1


async def test_a_result_chosen_that_the_bot_never_offered_stores_nothing(bot: Bot, alice: dict) -> None:
    bot.api.push_chosen_inline_result(alice, "forged-id", "Why?", "AgAAAForged")
    query_id = bot.api.push_inline_callback("AgAAAForged", alice, "1:rate:funny")
    pressed = await bot.api.wait_for(
        "answerCallbackQuery", lambda c: c.params["callback_query_id"] == query_id
    )
    assert pressed.params["text"] == MSG_STALE  # a polite answer, nothing rated
    assert await bot.storage.requests.find_reply(inline_ref("AgAAAForged")) is None
    assert sum((await bot.storage.requests.counts()).values()) == 0


async def test_an_empty_query_suggests_setups_and_bad_ones_say_why(bot: Bot, alice: dict) -> None:
    bot.api.push_inline_query(alice, "")
    answer = await bot.api.wait_for("answerInlineQuery")
    titles = [r["title"] for r in answer.params["results"]]
    assert len(titles) == 3 and set(titles) <= set(BUILT_IN)
    button = answer.params["results"][0]["reply_markup"]["inline_keyboard"][0][0]
    assert button["switch_inline_query_current_chat"] == titles[0]
    assert not bot.generator.calls

    too_long = bot.api.push_inline_query(alice, "Why " + "very " * 100 + "long?")
    refused = await bot.api.wait_for("answerInlineQuery", lambda c: c.params["inline_query_id"] == too_long)
    [result] = refused.params["results"]
    assert "too long" in result["title"].lower() or "characters" in result["title"]
    assert not bot.generator.calls


async def test_inline_load_takes_only_its_share_of_the_worker(api: FakeBotAPI, tmp_path: Path) -> None:
    alice, bob, carol = api.user(1, "Alice"), api.user(2, "Bob"), api.user(3, "Carol")
    inline = {"debounce_s": 0.05, "concurrency": 1, "timeout_s": 5}
    async with running_bot(api, tmp_path / "bot.db", inline=inline) as bot:
        bot.generator.block()
        bot.api.push_inline_query(alice, "Why did Alice type inline?")
        await eventually(lambda: _true(len(bot.generator.calls) == 1))
        bob_query = bot.api.push_inline_query(bob, "Why did Bob type inline?")
        await asyncio.sleep(0.3)  # Bob waits for the one inline slot Alice holds
        asked = bot.api.push_message(bot.api.private_chat(carol), carol, "Why did Carol just ask?")
        await eventually(lambda: _true(len(bot.generator.calls) == 2))
        # The chat setup reached the model beside Alice's inline one; Bob's did not.
        assert [c.setup for c in bot.generator.calls] == [
            "Why did Alice type inline?",
            "Why did Carol just ask?",
        ]
        bot.generator.unblock()
        await bot.reply_to(asked)
        await bot.api.wait_for("answerInlineQuery", lambda c: c.params["inline_query_id"] == bob_query)
        assert len(bot.generator.calls) == 3


async def _true(value: bool) -> bool:
    return value


async def test_inline_keeps_to_the_allow_lists(api: FakeBotAPI, tmp_path: Path) -> None:
    alice = api.user(1001, "Alice")
    async with running_bot(api, tmp_path / "bot.db", inline={"debounce_s": 0.05}, allowed_users=[7]) as bot:
        bot.api.push_inline_query(alice, "Why did the outsider type inline?")
        answer = await bot.api.wait_for("answerInlineQuery")
        [result] = answer.params["results"]
        assert result["title"] == MSG_INLINE_NOT_ALLOWED
        assert bot.generator.calls == []


async def test_a_refused_inline_setup_is_never_what_the_result_posts(bot: Bot, alice: dict) -> None:
    query = bot.api.push_inline_query(alice, "Why is my b1tch of a boss so mean?")
    answer = await bot.api.wait_for("answerInlineQuery", lambda c: c.params["inline_query_id"] == query)
    [result] = answer.params["results"]
    assert result["input_message_content"]["message_text"] == MSG_FAMILY_SETUP
    assert bot.generator.calls == []
