"""Starting and stopping the Discord front-end: intents, `run_discord`'s stop and its start errors.

`discord.Client.start` needs Discord itself (login and gateway over the network), so these tests
use subclasses of the real client whose `start` stands in for the network part: one that
connects and idles, others that fail the way discord.py reports a rejected token, a
privileged intent the portal has not enabled, or an unreachable Discord. Everything after
`start` (the stop, `close()`, error translation) is the real code.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import discord
import pytest
import simcord
from pydantic import SecretStr

from bot.discord.client import DiscordStartError, PunchlineDiscord, build_intents, run_discord
from config.errors import PunchlineError
from config.settings import Settings, load_settings
from tests.fakes.discord_clients import FailingClient, IdleClient


def _settings(tmp_path: Path, **discord_settings: object) -> Settings:
    return load_settings(discord=discord_settings, storage={"path": str(tmp_path / "bot.db")})


def test_intents_need_no_privileged_ones_by_default() -> None:
    intents = build_intents(message_content=False)
    assert intents.guild_messages and intents.dm_messages
    assert intents.guild_reactions and intents.dm_reactions
    assert not (intents.message_content or intents.members or intents.presences)
    assert build_intents(message_content=True).message_content


async def test_without_the_content_intent_the_bot_starts_where_the_portal_grants_nothing(
    tmp_path: Path,
) -> None:
    """simcord plays the developer portal: no privileged intent approved."""
    for wanted, starts in ((False, True), (True, False)):
        client = PunchlineDiscord(_settings(tmp_path, message_content_intent=wanted))
        runner = simcord.run(client, approved_intents=discord.Intents.none())
        if starts:
            async with runner as env:
                assert env.bot.is_ready()
        else:
            with pytest.raises(discord.PrivilegedIntentsRequired):
                async with runner:
                    pass


async def test_run_discord_stops_cleanly_when_asked(tmp_path: Path) -> None:
    client = IdleClient(_settings(tmp_path))
    stop = asyncio.Event()
    running = asyncio.create_task(run_discord(client, SecretStr("t0ken"), stop))
    await asyncio.sleep(0.05)
    assert not running.done()
    assert client.started_with == "t0ken"

    stop.set()
    await asyncio.wait_for(running, timeout=30)
    assert client.is_closed()


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (discord.LoginFailure("Improper token has been passed."), "PUNCHLINE_DISCORD__TOKEN"),
        (discord.PrivilegedIntentsRequired(None), "PUNCHLINE_DISCORD__MESSAGE_CONTENT_INTENT"),
        (OSError("Name or service not known"), "cannot reach Discord"),
    ],
    ids=["bad-token", "intent-not-enabled", "offline"],
)
async def test_run_discord_turns_start_failures_into_one_clear_line(
    tmp_path: Path, error: BaseException, says: str
) -> None:
    client = FailingClient(_settings(tmp_path))
    client.error = error
    with pytest.raises(DiscordStartError) as raised:
        await asyncio.wait_for(run_discord(client, "t0ken", asyncio.Event()), timeout=5)
    assert isinstance(raised.value, PunchlineError)
    assert says in str(raised.value)
    assert "Traceback" not in str(raised.value)
    assert client.is_closed()
