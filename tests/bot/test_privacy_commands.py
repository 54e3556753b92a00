"""/privacy, /forget, /optout, /optin and /family through the real stacks: python-telegram-bot
against the fake Bot API, discord.py under simcord, the console; the SQLite file is checked."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest

from bot.clock import ManualClock
from bot.console.chat import ConsoleChat
from bot.core import texts
from bot.core.service import BotCore
from bot.discord.client import build_client
from bot.payloads import ForgetPayload, encode
from bot.storage import Storage
from bot.types import ChatKind, ChatRef, Platform
from config.settings import load_settings
from tests.fakes.discord_sim import simulated_discord
from tests.fakes.generator import FakeGenerator
from tests.fakes.telegram_api import FakeBotAPI
from tests.helpers import db
from tests.helpers.telegram_bot import SETUP, running_bot


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


async def user_rows(storage: Storage, user_id: str) -> int:
    async with storage.db.execute("SELECT COUNT(*) FROM users WHERE user_id = ?", (user_id,)) as cur:
        return int((await cur.fetchone())[0])


# -- Telegram --------------------------------------------------------------------------------------


async def test_telegram_forget_in_a_group_is_confirmed_by_a_button_and_answered_privately(
    api: FakeBotAPI, tmp_path: Path
) -> None:
    async with running_bot(api, tmp_path / "p.db") as bot:
        alice, bob = api.user(1001, "Alice"), api.user(1002, "Bob")
        group = api.group_chat()
        await bot.punchline_for(group, alice)
        await bot.punchline_for(group, bob)
        asked = api.push_command(group, alice, "forget")
        prompt = await bot.reply_to(asked)
        assert prompt.params["text"] == texts.MSG_FORGET_CONFIRM
        assert prompt.callback_data == [encode(ForgetPayload())]
        assert await user_rows(bot.storage, "1001") == 1  # nothing erased before the press
        query = api.push_callback(prompt.result, alice, encode(ForgetPayload()))
        answer = await api.wait_for("answerCallbackQuery", lambda c: c.params["callback_query_id"] == query)
        assert answer.params["show_alert"] is True  # only Alice sees it
        assert answer.params["text"].startswith("Done — I erased: 1 setups, 1 punchlines")
        assert await user_rows(bot.storage, "1001") == 0
        assert await user_rows(bot.storage, "1002") == 1  # Bob is untouched
        assert await db.count(bot.storage, "requests") == 1
        again = api.push_callback(prompt.result, alice, encode(ForgetPayload()))
        answer = await api.wait_for("answerCallbackQuery", lambda c: c.params["callback_query_id"] == again)
        assert answer.params["text"] == texts.MSG_FORGOT_NOTHING  # idempotent


async def test_telegram_privacy_and_opting_out(api: FakeBotAPI, tmp_path: Path) -> None:
    async with running_bot(api, tmp_path / "p.db") as bot:
        alice = api.user(1001, "Alice")
        chat = api.private_chat(alice)
        text = (await bot.reply_to(api.push_command(chat, alice, "privacy"))).params["text"]
        assert "90 days" in text and "/forget" in text and "train" in text
        assert (await bot.reply_to(api.push_command(chat, alice, "optout"))).params[
            "text"
        ] == texts.MSG_OPTED_OUT
        async with bot.storage.db.execute("SELECT training FROM users WHERE user_id = '1001'") as cur:
            assert (await cur.fetchone())[0] == "out"
        assert (
            texts.MSG_TRAINING_OUT
            in (await bot.reply_to(api.push_command(chat, alice, "privacy"))).params["text"]
        )
        assert (await bot.reply_to(api.push_command(chat, alice, "optin"))).params[
            "text"
        ] == texts.MSG_OPTED_IN
        helped = (await bot.reply_to(api.push_command(chat, alice, "start"))).params["text"]
        assert "/privacy" in helped  # /start and /help point to it


async def test_telegram_family_is_changed_by_chat_admins_only(api: FakeBotAPI, tmp_path: Path) -> None:
    async with running_bot(api, tmp_path / "p.db") as bot:
        alice, bob = api.user(1001, "Alice"), api.user(1002, "Bob")
        group = api.group_chat()
        chat = ChatRef(Platform.TELEGRAM, str(group["id"]), ChatKind.GROUP)
        api.set_member_status(group["id"], 1001, "administrator")
        shown = (await bot.reply_to(api.push_command(group, bob, "family"))).params["text"]
        assert shown.startswith(texts.MSG_FAMILY_ON)  # on by default in groups
        refused = (await bot.reply_to(api.push_command(group, bob, "family", "off"))).params["text"]
        assert refused == texts.MSG_FAMILY_REFUSED
        assert await bot.core.family.is_family(chat)  # a member's /family changed nothing
        done = (await bot.reply_to(api.push_command(group, alice, "family", "off"))).params["text"]
        assert done == texts.MSG_FAMILY_OFF and not await bot.core.family.is_family(chat)
        stats = (await bot.reply_to(api.push_command(group, bob, "stats"))).params["text"]
        assert stats.endswith(texts.MSG_FAMILY_OFF)


# -- Discord ---------------------------------------------------------------------------------------


async def test_discord_forget_and_family(tmp_path: Path, storage: Storage) -> None:
    settings = load_settings(storage={"path": str(tmp_path / "bot.db")}, limits={"burst": 20})
    core = BotCore(settings, storage, FakeGenerator(["Because."]), ManualClock())
    async with simulated_discord(build_client(settings, core)) as world:
        alice = world.member("alice")
        bob = world.member("bob")
        asked = await alice.slash(world.channel, "joke", setup=SETUP)
        assert asked.response is not None
        prompt = await alice.slash(world.channel, "forget")
        assert prompt.ephemeral and prompt.response is not None
        assert prompt.response.content == texts.MSG_FORGET_CONFIRM
        assert await user_rows(storage, str(alice.id)) == 1
        pressed = await alice.click(prompt.response, custom_id=encode(ForgetPayload()))
        assert pressed.ephemeral and pressed.response is not None
        assert pressed.response.content.startswith("Done — I erased: 1 setups")
        assert await user_rows(storage, str(alice.id)) == 0
        refused = await bob.slash(world.channel, "family", mode="off")
        assert refused.ephemeral and refused.response is not None
        assert refused.response.content == texts.MSG_FAMILY_REFUSED
        chat = ChatRef(Platform.DISCORD, str(world.channel.id), ChatKind.GROUP)
        assert await core.family.is_family(chat)
        mods = world.guild.create_role("mods", permissions=discord.Permissions(manage_guild=True))
        carol = world.guild.add_member(world.env.create_user("carol"), roles=[mods])
        done = await carol.slash(world.channel, "family", mode="off")
        assert done.response is not None and done.response.content == texts.MSG_FAMILY_OFF
        assert not await core.family.is_family(chat)


# -- console ---------------------------------------------------------------------------------------


async def test_console_forget_asks_for_yes(tmp_path: Path, storage: Storage) -> None:
    settings = load_settings(storage={"path": str(tmp_path / "bot.db")})
    core = BotCore(settings, storage, FakeGenerator(["Because."]), ManualClock())
    lines = "\n".join([SETUP, "", "/forget", "no", "/forget", "yes", "/quit"]) + "\n"
    out = io.StringIO()
    await ConsoleChat(core, io.StringIO(lines), out, user_name="tester").run()
    said = out.getvalue()
    assert "Nothing erased." in said and "Done — I erased: 1 setups" in said
    assert await db.count(storage, "users") == 0


async def test_setups_and_names_never_reach_the_logs_at_info(
    api: FakeBotAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    secret_setup, secret_name = "Why does Zebulon hide his diary?", "Zebulon Quartermaine"
    async with running_bot(api, tmp_path / "p.db") as bot:
        zeb = api.user(1009, secret_name)
        group = api.group_chat()
        await bot.punchline_for(group, zeb, secret_setup)
        api.push_command(group, zeb, "forget")
        await bot.api.wait_for("sendMessage", lambda c: c.params["text"] == texts.MSG_FORGET_CONFIRM)
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert caplog.records and secret_setup not in logged and "Zebulon" not in logged
