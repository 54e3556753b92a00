"""Fairness and the rating races, through the real python-telegram-bot stack against the fake
Bot API: a throttled group holds no shared update slot, a flood is answered once and not stored,
a reaction that beats the reply's link still counts, and rapid presses end as the last one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.core.service import BotCore
from bot.core.texts import MSG_CHAT_SLOW_DOWN
from bot.types import MessageRef
from tests.fakes.telegram_api import FakeBotAPI
from tests.helpers import db
from tests.helpers.telegram_bot import PUNCHLINE, SETUP, eventually, running_bot, tg_chat


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


def people(api: FakeBotAPI, n: int, first_id: int = 2001) -> list[dict[str, Any]]:
    return [api.user(first_id + i, f"Person {i}") for i in range(n)]


async def test_a_throttled_group_holds_no_update_slot(api: FakeBotAPI, tmp_path: Path) -> None:
    """Two update slots; the group's sends meet 429s. Before the per-chat outbox, the group's
    handlers slept through its flood waits in both slots and the private chat was answered only
    after the group; now the private answer goes out while the group is still throttled, and
    the group's answers follow in order."""
    async with running_bot(api, tmp_path / "p.db", concurrent_updates=2) as bot:
        group = api.group_chat()
        # Two 429s in a row: the first answer waits 4 s, within its retries (max_retries=2).
        api.inject_error("sendMessage", 429, retry_after=2, times=2, chat_id=group["id"])
        asked = [api.push_message(group, person, f"/joke {SETUP}") for person in people(api, 3)]
        await api.wait_for("sendMessage", lambda c: c.failed and c.chat_id == group["id"])
        carol = api.user(3001, "Carol")
        private = await bot.reply_to(api.push_message(api.private_chat(carol), carol, SETUP))
        group_answers = [await bot.reply_to(m) for m in asked]
        assert [c.reply_to_message_id for c in group_answers] == [m["message_id"] for m in asked]
        assert private.params["text"] == PUNCHLINE
        assert all(c.params["text"] == PUNCHLINE for c in group_answers)
        assert private.at < min(c.at for c in group_answers), "the private chat waited for the group"
        for call in [private, *group_answers]:  # every reply that went out is linked
            await bot.linked(call)


async def test_a_group_flood_is_answered_once_and_not_stored(api: FakeBotAPI, tmp_path: Path) -> None:
    limits = {"chat_burst": 3, "chat_per_minute": 1}
    async with running_bot(api, tmp_path / "p.db", limits=limits) as bot:
        group = api.group_chat()
        api.set_bot_admin(group["id"])  # no reaction hint: only answers in this chat
        crowd = people(api, 6)
        for person in crowd[:3]:
            await bot.reply_to(api.push_message(group, person, f"/joke {SETUP}"))
        for i, person in enumerate(crowd[3:]):
            api.push_message(group, person, f"/joke {SETUP} {i}")
        await api.wait_fetched(api.last_update_id)
        slow = await api.wait_for(
            "sendMessage", lambda c: not c.failed and c.params["text"].startswith("This chat")
        )
        assert slow.params["text"] == MSG_CHAT_SLOW_DOWN.format(seconds=60)
        await asyncio.sleep(0.5)  # the other two are handled by now; they must stay unanswered
        in_group = [c for c in api.calls_of("sendMessage") if c.chat_id == group["id"] and not c.failed]
        assert len(in_group) == 4, [c.params["text"] for c in in_group]
        assert await db.count(bot.storage, "requests") == 3  # refused setups are not stored
        assert len(bot.generator.calls) == 3


class SlowLinkCore(BotCore):
    """Links a sent punchline to its message only when the test says so: the window in which a
    reaction reaches the bot before the link is written."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.link_now = asyncio.Event()

    async def reply_sent(self, reply_id: int, ref: MessageRef) -> None:
        await self.link_now.wait()
        await super().reply_sent(reply_id, ref)


async def test_a_reaction_before_the_link_still_counts(api: FakeBotAPI, tmp_path: Path) -> None:
    async with running_bot(api, tmp_path / "p.db", core_class=SlowLinkCore) as bot:
        alice = api.user(1001, "Alice")
        asked = api.push_message(api.private_chat(alice), alice, SETUP)
        sent = (await bot.reply_to(asked)).result
        update_id = api.push_reaction(sent, alice, new=["🤣"])
        await api.wait_fetched(update_id)
        ref = MessageRef(tg_chat(sent["chat"]), str(sent["message_id"]))
        assert await bot.storage.requests.find_reply(ref) is None  # not linked yet
        assert isinstance(bot.core, SlowLinkCore)
        bot.core.link_now.set()

        async def stored() -> bool:
            reply = await bot.storage.requests.find_reply(ref)
            return reply is not None and bool(await db.reactions_for(bot.storage, reply.id))

        await eventually(stored)
        reply = await bot.storage.requests.find_reply(ref)
        assert reply is not None
        [reaction] = await db.reactions_for(bot.storage, reply.id)
        assert reaction.funniness == 1 and reaction.emojis == ("🤣",)


async def test_rapid_presses_end_as_one_rating_the_last(api: FakeBotAPI, tmp_path: Path) -> None:
    async with running_bot(api, tmp_path / "p.db") as bot:
        alice = api.user(1001, "Alice")
        sent, reply_id = await bot.punchline_for(api.private_chat(alice), alice)
        presses = ["funny", "meh", "inappropriate", "meh", "funny", "inappropriate", "meh"]
        queries = [api.push_callback(sent, alice, f"1:rate:{r}") for r in presses]
        for query_id in queries:  # every press is answered (no spinner left turning)
            await api.wait_for(
                "answerCallbackQuery", lambda c, q=query_id: c.params["callback_query_id"] == q
            )
        [rating] = await db.reactions_for(bot.storage, reply_id)
        assert (rating.source, rating.rating) == ("button", "meh")
