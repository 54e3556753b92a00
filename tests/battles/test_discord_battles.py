"""Battles on Discord end to end: the real discord.py client (slash commands, persistent
buttons, modals) under simcord, a real BotCore and BattleService over a real SQLite file.

simcord runs on a virtual clock: the service reads the time from it (an injected Clock), and
`env.advance_time` ends the phases, so nothing sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import discord
import pytest
import simcord

from bot.battles.models import Phase
from bot.battles.service import BattleService
from bot.battles.views import MSG_PROMOTE_REFUSED
from bot.core.service import BotCore
from bot.discord.client import PunchlineDiscord, build_client
from bot.storage import Storage
from config.settings import Settings, load_settings
from tests.fakes.discord_sim import DiscordWorld, SimClock, simulated_discord
from tests.fakes.generator import FakeGenerator

SETUP = "Why did the scarecrow win an award?"
BOT_LINE = "Because he was outstanding in his field."
GUILD_ID = 1_234_567_890_123_456_789
ENTRY_S = 60.0
VOTE_S = 30.0


@dataclass
class Bot:
    settings: Settings
    storage: Storage
    clock: SimClock
    service: BattleService | None = None

    def client(self) -> PunchlineDiscord:
        """A fresh client, core and battle service over the same database (a new process)."""
        generator = FakeGenerator([BOT_LINE], version="v1")
        core = BotCore(self.settings, self.storage, generator, self.clock)
        self.service = BattleService(self.settings, self.storage, generator, self.clock, core.access)
        return build_client(self.settings, core, self.service)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    settings = load_settings(
        discord={"guilds": [GUILD_ID]},
        storage={"path": str(tmp_path / "bot.db")},
        battles={"entry_seconds": ENTRY_S, "vote_seconds": VOTE_S},
    )
    storage = await Storage.open(settings.storage.path)
    made = Bot(settings, storage, SimClock())
    yield made
    if made.service is not None:
        await made.service.close()
    await storage.close()


@pytest.fixture
async def world(bot: Bot) -> AsyncIterator[DiscordWorld]:
    async with simulated_discord(bot.client(), guild_ids=[GUILD_ID]) as running:
        bot.clock.env = running.env
        yield running


def said(result: simcord.InteractionResult) -> str:
    """What the bot answered to an interaction (a deferred answer edits the first response)."""
    assert result.response is not None, result
    return result.response.content


def position_of(ballot: discord.Message, entry: str) -> int:
    line = next(l for l in ballot.content.splitlines() if l.endswith(entry))
    return int(line.split(".")[0])


def bot_message_with(world: DiscordWorld, text: str) -> discord.Message:
    found = [m for m in world.bot_messages() if text in m.content]
    assert found, f"no bot message with {text!r}; saw {[m.content for m in world.bot_messages()]}"
    return found[-1]


async def posted(world: DiscordWorld, text: str, timeout: float = 30.0) -> discord.Message:
    """Wait for a bot message posted by a task the test started (resume() runs outside the
    bot's own tasks, so simcord's settling does not wait for it). `text` must belong to the
    message awaited alone: a phase change edits the old message before it posts the new one, so
    a word both share (e.g. "results") would match the edit that comes first."""
    deadline = time.monotonic() + timeout
    while not any(text in m.content for m in world.bot_messages()):
        assert time.monotonic() < deadline, f"no bot message with {text!r}"
        await asyncio.sleep(0.02)
        await world.env.settle()
    return bot_message_with(world, text)


async def enter(actor: simcord.MemberActor, announcement: discord.Message, battle_id: int, text: str) -> str:
    shown = await actor.click(announcement, custom_id="1:enter")
    assert shown.modal is not None, shown
    done = await actor.submit_modal(shown, {"punchline": text})
    assert done.response is not None
    return done.response.content


async def vote(actor: simcord.MemberActor, ballot: discord.Message, battle_id: int, entry: str) -> str:
    result = await actor.click(ballot, custom_id=f"1:vote:{position_of(ballot, entry)}")
    assert result.response is not None and result.ephemeral
    return result.response.content


async def test_a_whole_round_in_a_channel(bot: Bot, world: DiscordWorld) -> None:
    alice, bob, carol, dave = (world.member(n) for n in ("alice", "bob", "carol", "dave"))
    started = await alice.slash(world.channel, "battle", setup=SETUP)
    assert "Battle #1 is on" in said(started)
    announcement = bot_message_with(world, "Joke battle #1")
    assert SETUP in announcement.content
    again = await bob.slash(world.channel, "battle")
    assert "already running" in said(again)

    assert "is in" in await enter(bob, announcement, 1, "Straw poll")
    assert "is in" in await enter(carol, announcement, 1, "Corn-gratulations")
    assert "is in" in await enter(alice, announcement, 1, "First try")
    assert "Replaced" in await enter(alice, announcement, 1, "He was a born winner")
    announcement = bot_message_with(world, "Joke battle #1")
    assert "carol" in announcement.content and "Straw" not in announcement.content

    slow = await dave.click(announcement, custom_id="1:enter")  # opened in time...
    await world.env.advance_time(ENTRY_S)
    too_late = await dave.submit_modal(slow, {"punchline": "Sent after the deadline"})
    assert "Too late" in said(too_late)  # ...sent too late
    assert bot_message_with(world, "entries are closed").components == []
    ballot = bot_message_with(world, "vote for the funniest")
    assert all(
        e in ballot.content for e in ("Straw poll", "Corn-gratulations", "He was a born winner", BOT_LINE)
    )
    assert "First try" not in ballot.content and "bob" not in ballot.content
    assert "Sent after" not in ballot.content

    assert "own" in await vote(bob, ballot, 1, "Straw poll")
    for actor, entry in [
        (alice, "Straw poll"),
        (bob, "He was a born winner"),
        (carol, "Straw poll"),
        (dave, BOT_LINE),
    ]:
        assert "counted" in await vote(actor, ballot, 1, entry)
    assert "changed" in await vote(dave, ballot, 1, "Corn-gratulations")

    await world.env.advance_time(VOTE_S)
    results = bot_message_with(world, "Battle #1 results")
    assert "“Straw poll” by bob: 2 votes, 600 points 🏆" in results.content
    assert "“Corn-gratulations” by carol: 1 vote, 250 points" in results.content
    assert "People beat the bot" in results.content
    assert bot_message_with(world, "voting is closed").components == []

    board = await carol.slash(world.channel, "leaderboard")
    assert said(board).splitlines()[1] == "1. bob: 600 points, 1 win in 1 round"
    assert bot.service is not None
    battle = await bot.service.storage.battles.get(1)
    assert battle is not None and battle.phase is Phase.FINISHED


async def test_forged_buttons_and_cancel(bot: Bot, world: DiscordWorld) -> None:
    alice, bob = world.member("alice"), world.member("bob")
    await alice.slash(world.channel, "battle", setup=SETUP)
    planted = await world.plant_bot_message(world.channel, "old", ["1:vote:9", "battle:nonsense"])
    first = await bob.click(planted, custom_id="1:vote:9")  # a vote button on no round's message
    assert first.response is not None and "isn't valid" in first.response.content
    second = await bob.click(planted, custom_id="battle:nonsense")
    assert second.response is not None and "doesn't work any more" in second.response.content
    refused = await bob.slash(world.channel, "cancel")
    assert refused.response is not None and "Only alice" in refused.response.content
    done = await alice.slash(world.channel, "cancel")
    assert done.response is not None and "cancelled" in done.response.content
    assert "was cancelled by alice" in world.last_bot_message().content


async def test_a_restart_mid_round_loses_nothing(bot: Bot, world: DiscordWorld) -> None:
    alice, bob, carol = world.member("alice"), world.member("bob"), world.member("carol")
    await alice.slash(world.channel, "battle", setup=SETUP)
    announcement = bot_message_with(world, "Joke battle #1")
    await enter(bob, announcement, 1, "Before the restart")
    assert bot.service is not None
    await bot.service.close()
    await world.restart(bot.client())  # a new process: new client, core and service
    assert await bot.service.resume() == [1]
    assert "is in" in await enter(carol, announcement, 1, "After the restart")
    # down past the entry deadline: the voting phase opens as soon as the bot is back
    await bot.service.close()
    client = bot.client()
    await world.env.advance_time(ENTRY_S)
    await world.restart(client)
    await bot.service.resume()
    ballot = await posted(world, "vote for the funniest")
    assert "Before the restart" in ballot.content and "After the restart" in ballot.content
    assert "counted" in await vote(alice, ballot, 1, "After the restart")
    # and down past the vote deadline: the results come at once, Alice's vote counted
    await bot.service.close()
    client = bot.client()
    await world.env.advance_time(VOTE_S)
    await world.restart(client)
    await bot.service.resume()
    results = await posted(world, "Battle #1 results")
    assert "“After the restart” by carol: 1 vote, 1100 points 🏆" in results.content


async def test_ballots_and_results_never_ping_anyone(bot: Bot, world: DiscordWorld) -> None:
    alice, bob, carol = world.member("alice"), world.member("bob"), world.member("carol")
    await alice.slash(world.channel, "battle", setup=SETUP)
    announcement = bot_message_with(world, "Joke battle #1")
    assert "is in" in await enter(bob, announcement, 1, "@everyone @here look at me")
    await world.env.advance_time(ENTRY_S)
    ballot = bot_message_with(world, "vote for the funniest")
    assert "@everyone" in ballot.content  # shown as text...
    assert "counted" in await vote(carol, ballot, 1, "@everyone @here look at me")
    await world.env.advance_time(VOTE_S)
    bot_message_with(world, "Battle #1 results")
    posts = world.requests("POST", "/channels/*/messages")
    assert posts and all(p.json["allowed_mentions"]["parse"] == [] for p in posts)  # ...never a ping


async def test_promote_is_for_the_bots_admins_and_answered_privately(bot: Bot, world: DiscordWorld) -> None:
    bob = world.member("bob")
    refused = await bob.slash(world.channel, "promote", version="v2")
    assert refused.ephemeral and said(refused) == MSG_PROMOTE_REFUSED
    assert world.bot_messages() == []  # nothing in the channel
