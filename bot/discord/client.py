"""The Discord front-end: a discord.py client over the platform-free bot core.

    client = build_client(settings, core, battles)
    await run_discord(client, token, stop)   # runs until `stop` is set, then closes cleanly

`register_handlers` is the one place that lists everything the Discord bot answers: its slash
commands (the battles' included), its events and its persistent buttons. What each does lives
in `bot.discord.handlers` and `bot.discord.battles`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import discord
from discord import app_commands

from bot.battles.service import BattleService
from bot.core.service import BotCore
from bot.discord.battles import DiscordAnnouncer, DiscordBattleUI
from bot.discord.buttons import button_class
from bot.discord.convert import answer_ephemeral
from bot.discord.handlers import SORRY_TEXT, DiscordHandlers
from bot.discord.in_flight import InFlight
from bot.discord.privacy import DiscordPrivacyUI
from bot.types import Platform
from config.errors import PunchlineError
from config.settings import Settings

log = logging.getLogger(__name__)


class DiscordStartError(PunchlineError):
    """The Discord front-end cannot start: a bad token, a missing intent, or Discord unreachable."""


def build_intents(message_content: bool) -> discord.Intents:
    """Default (non-privileged) intents, reactions and DMs; message content only when asked."""
    intents = discord.Intents.default()
    intents.guild_messages = True
    intents.dm_messages = True
    intents.guild_reactions = True
    intents.dm_reactions = True
    intents.message_content = message_content
    return intents


class _Tree(app_commands.CommandTree["PunchlineDiscord"]):
    """A command tree whose errors end as a kind line to the user, never a traceback."""

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError, /
    ) -> None:
        command = interaction.command.name if interaction.command else "?"
        log.error("slash command /%s failed", command, exc_info=error)
        await answer_ephemeral(interaction, SORRY_TEXT)


class PunchlineDiscord(discord.Client):
    """The Punchline bot on Discord. Build it with `build_client`."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            intents=build_intents(settings.discord.message_content_intent),
            # Punchlines echo user text; never let them ping @everyone, roles or users.
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.settings = settings
        self.tree = _Tree(self)
        # Handlers answering a setup right now; `drain` lets them finish before closing.
        self.in_flight = InFlight()

    async def setup_hook(self) -> None:
        """Sync the slash commands at start-up (when configured)."""
        if self.settings.discord.sync_commands:
            await self.sync_commands()

    async def sync_commands(self) -> None:
        """Sync slash commands to the configured guilds (at once), else globally (may take an hour).

        A guild the bot cannot sync to (not a member, no `applications.commands` scope) is logged
        and skipped: the rest of the bot keeps working.
        """
        guild_ids = self.settings.discord.guilds
        if not guild_ids:
            synced = await self.tree.sync()
            log.info("synced %d slash commands globally", len(synced))
            return
        for guild_id in guild_ids:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            try:
                synced = await self.tree.sync(guild=guild)
            except discord.HTTPException as exc:
                log.error(
                    "cannot sync slash commands to guild %s (%s); is the bot in it, invited with "
                    "the applications.commands scope? (PUNCHLINE_DISCORD__GUILDS)",
                    guild_id,
                    exc,
                )
                continue
            log.info("synced %d slash commands to guild %s", len(synced), guild_id)

    async def on_ready(self) -> None:
        log.info("Discord: logged in as %s (%s)", self.user, getattr(self.user, "id", "?"))

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        # Handlers catch their own errors; this logs anything that still escapes one.
        log.exception("Discord event handler %s failed", event_method)

    async def drain(self, timeout: float) -> bool:
        """Stop taking setups and let the ones in progress finish (see `InFlight.drain`)."""
        return await self.in_flight.drain(timeout)


def build_client(settings: Settings, core: BotCore, battles: BattleService | None = None) -> PunchlineDiscord:
    """The Discord client with every handler registered, ready for `run_discord`."""
    client = PunchlineDiscord(settings)
    battle_ui = None
    if battles is not None:
        battles.attach(Platform.DISCORD, DiscordAnnouncer(client))
        battle_ui = DiscordBattleUI(battles)
    register_handlers(
        client, DiscordHandlers(client, client.in_flight, core, battle_ui), DiscordPrivacyUI(core), battle_ui
    )
    return client


def register_handlers(
    client: PunchlineDiscord, bot: DiscordHandlers, privacy: DiscordPrivacyUI, battles: DiscordBattleUI | None
) -> None:
    """Everything the Discord bot answers, in one list: events, slash commands, buttons."""
    client.event(bot.on_message)
    client.event(bot.on_raw_reaction_add)
    client.event(bot.on_raw_reaction_remove)
    # One persistent class for every button: buttons on old messages work after a restart.
    client.add_dynamic_items(button_class(bot))
    tree = client.tree

    @tree.command(name="joke", description="Give me a joke setup and I'll answer with a punchline")
    @app_commands.describe(
        setup="The setup, e.g. Why did the chicken cross the road? (empty: I pick one)",
        count="How many punchlines, each its own message (1-3)",
    )
    async def joke(
        interaction: discord.Interaction[Any],
        setup: str | None = None,
        count: app_commands.Range[int, 1, 3] = 1,
    ) -> None:
        await bot.slash_joke(interaction, setup, count)

    @tree.context_menu(name="Punchline this")
    async def punchline_this(interaction: discord.Interaction[Any], message: discord.Message) -> None:
        await bot.context_punchline(interaction, message)

    @tree.command(name="stats", description="How my punchlines have been rated here")
    async def stats(interaction: discord.Interaction[Any]) -> None:
        await bot.slash_stats(interaction)

    @tree.command(name="help", description="How to ask me for punchlines and how to rate them")
    async def help_(interaction: discord.Interaction[Any]) -> None:
        await bot.slash_help(interaction)

    @tree.command(name="reload", description="Admins: load a new adapter without a restart")
    @app_commands.describe(adapter_dir="Adapter directory on the bot's machine (default: the configured one)")
    async def reload(interaction: discord.Interaction[Any], adapter_dir: str | None = None) -> None:
        await bot.slash_reload(interaction, adapter_dir)

    @tree.command(name="privacy", description="What I keep about you, and why")
    async def privacy_(interaction: discord.Interaction[Any]) -> None:
        await privacy.privacy(interaction)

    @tree.command(name="forget", description="Erase everything I keep about you")
    async def forget(interaction: discord.Interaction[Any]) -> None:
        await privacy.forget(interaction)

    @tree.command(name="optout", description="Keep what you write and rate out of training")
    async def optout(interaction: discord.Interaction[Any]) -> None:
        await privacy.training(interaction, opted_in=False)

    @tree.command(name="optin", description="Let what you write and rate help training")
    async def optin(interaction: discord.Interaction[Any]) -> None:
        await privacy.training(interaction, opted_in=True)

    @tree.command(name="family", description="Family mode here; Manage Server may turn it on or off")
    @app_commands.describe(mode="on or off; leave it out to see the mode")
    @app_commands.choices(
        mode=[app_commands.Choice(name="on", value="on"), app_commands.Choice(name="off", value="off")]
    )
    async def family(interaction: discord.Interaction[Any], mode: str | None = None) -> None:
        await privacy.family(interaction, mode)

    if battles is None:
        return

    @tree.command(name="battle", description="Start a joke battle here: people against the bot")
    @app_commands.describe(setup="A joke setup; leave it out and I'll pick one")
    async def battle(interaction: discord.Interaction[Any], setup: str | None = None) -> None:
        await battles.battle(interaction, setup)

    @tree.command(name="cancel", description="Cancel the joke battle running here")
    async def cancel(interaction: discord.Interaction[Any]) -> None:
        await battles.cancel(interaction)

    @tree.command(name="promote", description="Admins: serve a challenger version to everyone")
    @app_commands.describe(version="The challenger to promote (empty: where each one stands)")
    async def promote(interaction: discord.Interaction[Any], version: str | None = None) -> None:
        await battles.promote(interaction, version)

    @tree.command(name="leaderboard", description="Joke battle standings in this channel")
    async def leaderboard(interaction: discord.Interaction[Any]) -> None:
        await battles.leaderboard(interaction)


async def run_discord(
    client: discord.Client, token: Any, stop: asyncio.Event, *, grace_s: float | None = None
) -> None:
    """Run `client` on the current loop until `stop` is set, then close it cleanly.

    On stop, replies in progress get up to `grace_s` seconds (default: the worker's request
    timeout plus 5 s) to be sent before the connection closes; setups arriving meanwhile are told
    to try again. `token` is a str or a pydantic SecretStr. A rejected token, a privileged intent
    the developer portal has not enabled, or an unreachable Discord raise `DiscordStartError`.
    """
    secret = token.get_secret_value() if hasattr(token, "get_secret_value") else str(token)
    runner = asyncio.create_task(client.start(secret), name="discord-client")
    stopper = asyncio.create_task(stop.wait(), name="discord-stop")
    try:
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            _raise_start_error(runner)
        elif isinstance(client, PunchlineDiscord):
            wait = client.settings.worker.timeout_s + 5.0 if grace_s is None else grace_s
            if not await client.drain(wait):
                log.warning("Discord: closing with replies still in progress")
    finally:
        stopper.cancel()
        if not client.is_closed():
            await client.close()
        if not runner.done():
            runner.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await runner
        log.info("Discord: closed")


def _raise_start_error(runner: asyncio.Task[None]) -> None:
    """Turn the way `client.start` ended into one clear line for people (or nothing)."""
    if runner.cancelled():
        return
    exc = runner.exception()
    if exc is None:
        return
    if isinstance(exc, discord.LoginFailure):
        raise DiscordStartError("Discord rejected the bot token; check PUNCHLINE_DISCORD__TOKEN") from exc
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        raise DiscordStartError(
            "Discord refused the message-content intent: enable it for the bot in the developer "
            "portal, or set PUNCHLINE_DISCORD__MESSAGE_CONTENT_INTENT=false"
        ) from exc
    if isinstance(exc, (OSError, discord.GatewayNotFound, discord.ConnectionClosed)):
        raise DiscordStartError(f"cannot reach Discord: {exc}") from exc
    if isinstance(exc, discord.HTTPException):
        raise DiscordStartError(f"Discord answered an error at start-up: {exc}") from exc
    raise exc
