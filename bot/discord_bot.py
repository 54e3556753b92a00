"""The Discord front-end: discord.py over the platform-free bot core.

What counts as a setup (DESIGN decision 5): every message in a DM; in guild channels only
messages that mention the bot or reply to one of its messages, and the `/joke setup:<text>`
slash command. Unaddressed chatter, edits and other bots are ignored on purpose. None of this
needs the privileged message-content intent: Discord always shows a bot the text of DMs and of
messages that mention it (a reply that pings the bot mentions it). With
`PUNCHLINE_DISCORD__MESSAGE_CONTENT_INTENT=true` the bot also reads replies sent without a ping.

Ratings: the buttons under each punchline (`bot.discord_views`) and emoji reactions, taken from
the raw reaction events so that reactions on messages outside discord.py's cache still count.

`build_client(settings, core, battles)` builds the client; `run_discord(client, token, stop)`
runs it on the current event loop until `stop` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.discord_refs import (
    answer_ephemeral,
    chat_ref,
    chat_ref_for_interaction,
    chat_ref_for_message,
    fit,
    message_ref,
    readable_mentions,
    strip_bot_mentions,
    user_ref,
)
from bot.discord_views import RatingButton, rating_view
from bot.types import ChatRef, IncomingSetup, OutgoingReply, Platform, UserRef
from config.errors import PunchlineError

if TYPE_CHECKING:
    from bot.battles.service import BattleService
    from bot.core import BotCore
    from config.settings import Settings

log = logging.getLogger(__name__)

# What people read when something failed on our side: never a traceback in a chat.
SORRY_TEXT = "Sorry, something went wrong on my side. Please try again in a moment."
NOT_ALLOWED_TEXT = "I'm not enabled here, sorry."
RESTARTING_TEXT = "I'm restarting right now. Please try again in a minute."
# A reply to the bot whose text Discord hid (no ping, no message-content intent).
CANNOT_READ_TEXT = (
    "I can't read replies that don't ping me. Mention me (@me) with your setup, "
    "or use /joke setup:<your setup>."
)

# Message types that people write; joins, pins, boosts and the like are never setups.
_USER_MESSAGE_TYPES = (discord.MessageType.default, discord.MessageType.reply)


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

    def __init__(
        self,
        settings: Settings,
        core: BotCore,
        battles: BattleService | None = None,
    ) -> None:
        super().__init__(
            intents=build_intents(settings.discord.message_content_intent),
            # Punchlines echo user text; never let them ping @everyone, roles or users.
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.settings = settings
        self.core = core
        self.battles = battles
        self.tree = _Tree(self)
        self._add_commands()
        # Handlers answering a setup right now; `drain` lets them finish before closing.
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._stopping = False

    # ----------------------------------------------------------------- start-up

    async def setup_hook(self) -> None:
        """Register the persistent rating buttons and sync the slash commands."""
        self.add_dynamic_items(RatingButton)
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
        # Handlers below catch their own errors; this logs anything that still escapes one.
        log.exception("Discord event handler %s failed", event_method)

    # ----------------------------------------------------------------- commands

    def _add_commands(self) -> None:
        @self.tree.command(name="joke", description="Give me a joke setup and I'll answer with a punchline")
        @app_commands.describe(setup="The setup, e.g. Why did the chicken cross the road?")
        async def joke(interaction: discord.Interaction[PunchlineDiscord], setup: str) -> None:
            await self.slash_joke(interaction, setup)

        @self.tree.command(name="stats", description="How my punchlines have been rated here")
        async def stats(interaction: discord.Interaction[PunchlineDiscord]) -> None:
            await self.slash_stats(interaction)

        @self.tree.command(name="help", description="How to ask me for punchlines and how to rate them")
        async def help_(interaction: discord.Interaction[PunchlineDiscord]) -> None:
            await self.slash_help(interaction)

        @self.tree.command(name="reload", description="Admins: load a new adapter without a restart")
        @app_commands.describe(adapter_dir="Adapter directory on the bot's machine (default: the configured one)")
        async def reload(
            interaction: discord.Interaction[PunchlineDiscord], adapter_dir: str | None = None
        ) -> None:
            await self.slash_reload(interaction, adapter_dir)

    async def slash_joke(self, interaction: discord.Interaction[Any], setup: str) -> None:
        """`/joke setup:<text>`: defer (Discord shows "thinking"), generate, answer."""
        chat = chat_ref_for_interaction(interaction)
        user = user_ref(interaction.user)
        if not self._allowed(chat, user):
            await answer_ephemeral(interaction, NOT_ALLOWED_TEXT)
            return
        if self._stopping:
            await answer_ephemeral(interaction, RESTARTING_TEXT)
            return
        with self._tracked():
            await interaction.response.defer(thinking=True)
            reply = await self.core.handle_setup(IncomingSetup(chat, user, setup, addressed=True))
            if reply is None:
                await interaction.followup.send(NOT_ALLOWED_TEXT, ephemeral=True)
                return
            sent = await interaction.followup.send(fit(reply.text), wait=True, **_buttons(reply))
            await self._link(reply, chat, sent.id)

    async def slash_stats(self, interaction: discord.Interaction[Any]) -> None:
        chat = chat_ref_for_interaction(interaction)
        if not self._allowed(chat, user_ref(interaction.user)):
            await answer_ephemeral(interaction, NOT_ALLOWED_TEXT)
            return
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(fit(await self.core.stats_text(chat)))

    async def slash_help(self, interaction: discord.Interaction[Any]) -> None:
        chat = chat_ref_for_interaction(interaction)
        admin = self.core.is_admin(user_ref(interaction.user))
        await answer_ephemeral(interaction, self.core.help_text(Platform.DISCORD, chat.kind, admin=admin))

    async def slash_reload(self, interaction: discord.Interaction[Any], adapter_dir: str | None) -> None:
        """`/reload adapter_dir:<optional>`: an admin swaps the adapter; answered privately.

        The core refuses anyone but the configured admins (PUNCHLINE_DISCORD__ADMIN_IDS).
        """
        user = user_ref(interaction.user)
        if not self.core.is_admin(user):
            await answer_ephemeral(interaction, await self.core.reload_adapter(user, adapter_dir))
            return
        # Loading takes longer than the 3 s Discord gives an interaction: defer, then follow up.
        await interaction.response.defer(ephemeral=True, thinking=True)
        await answer_ephemeral(interaction, await self.core.reload_adapter(user, adapter_dir))

    # ----------------------------------------------------------------- messages

    async def on_message(self, message: discord.Message) -> None:
        """A DM, a mention or a reply to the bot is a setup; anything else is ignored."""
        try:
            setup = self.setup_from_message(message)
        except Exception:
            log.exception("reading a Discord message failed")
            return
        if setup is None:
            return
        if self._stopping:
            if self._allowed(setup.chat, setup.user):
                await self._reply(message, RESTARTING_TEXT)
            return
        with self._tracked():
            try:
                if not setup.text and not self._can_read(message):
                    await self._reply(message, CANNOT_READ_TEXT)
                    return
                async with _typing(message.channel):
                    reply = await self.core.handle_setup(setup)
                if reply is None:
                    return
                sent = await self._reply(message, reply.text, **_buttons(reply))
                if sent is not None:
                    await self._link(reply, setup.chat, sent.id)
            except Exception:
                log.exception("answering a Discord message failed")
                await self._reply(message, SORRY_TEXT)

    def setup_from_message(self, message: discord.Message) -> IncomingSetup | None:
        """The setup in a message, or None when the message is not for the bot.

        Other bots (and the bot itself), webhooks and system messages are never setups; neither
        is guild chatter that neither mentions the bot nor replies to it.
        """
        me = self.user
        if me is None or message.author.bot or message.webhook_id is not None:
            return None
        if message.type not in _USER_MESSAGE_TYPES:
            return None
        private = message.guild is None
        if not private and not (self._mentions_me(message) or self._replies_to_me(message)):
            return None
        role = message.guild.self_role if message.guild is not None else None
        text = strip_bot_mentions(message.content, me.id, role.id if role else None)
        names = {user.id: user.display_name for user in message.mentions}
        text = readable_mentions(text, names)
        return IncomingSetup(
            chat=chat_ref_for_message(message),
            user=user_ref(message.author),
            text=text,
            addressed=True,
            message_id=str(message.id),
        )

    def _mentions_me(self, message: discord.Message) -> bool:
        assert self.user is not None
        if any(user.id == self.user.id for user in message.mentions):
            return True
        role = message.guild.self_role if message.guild is not None else None
        return role is not None and role in message.role_mentions

    def _replies_to_me(self, message: discord.Message) -> bool:
        reference = message.reference
        if reference is None or self.user is None:
            return False
        replied = reference.resolved if reference.resolved is not None else reference.cached_message
        return isinstance(replied, discord.Message) and replied.author.id == self.user.id

    def _can_read(self, message: discord.Message) -> bool:
        """False where Discord hid the text: a guild reply without a ping, no content intent."""
        return message.guild is None or self.intents.message_content or self._mentions_me(message)

    # ----------------------------------------------------------------- reactions

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, added=True)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, added=False)

    async def _reaction(self, payload: discord.RawReactionActionEvent, *, added: bool) -> None:
        """A reaction is a rating when it is a unicode emoji on one of the bot's punchlines.

        The core knows which messages are punchlines and ignores the rest; custom server emoji
        carry no agreed meaning and are dropped here.
        """
        if self.user is not None and payload.user_id == self.user.id:
            return
        if not payload.emoji.is_unicode_emoji():
            return
        member = payload.member
        if member is not None and member.bot:
            return
        user = self._reacting_user(payload)
        ref = message_ref(chat_ref(payload.channel_id, payload.guild_id), payload.message_id)
        emoji = payload.emoji.name or ""
        try:
            if added:
                await self.core.add_reaction(ref, user, emoji)
            else:
                await self.core.remove_reaction(ref, user, emoji)
        except Exception:
            # No chat message: a reaction gets no answer, and nothing stored is lost.
            log.exception("recording a Discord reaction failed")

    def _reacting_user(self, payload: discord.RawReactionActionEvent) -> UserRef:
        if payload.member is not None:
            return user_ref(payload.member)
        cached = self.get_user(payload.user_id)
        if cached is not None:
            return user_ref(cached)
        return UserRef(Platform.DISCORD, str(payload.user_id))

    # ----------------------------------------------------------------- shutdown

    async def drain(self, timeout: float) -> bool:
        """Stop taking setups and give the ones in progress up to `timeout` s to be answered.

        New setups meanwhile are told to try again in a minute. True when none is left.
        """
        self._stopping = True
        current = asyncio.current_task()
        pending = {task for task in self._in_flight if not task.done() and task is not current}
        if not pending:
            return True
        log.info("Discord: waiting for %d repl%s in progress", len(pending), "y" if len(pending) == 1 else "ies")
        _, still = await asyncio.wait(pending, timeout=timeout)
        return not still

    @contextlib.contextmanager
    def _tracked(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._in_flight.discard(task)

    # ----------------------------------------------------------------- helpers

    def _allowed(self, chat: ChatRef, user: UserRef) -> bool:
        return self.core.is_allowed(chat, user)

    async def _link(self, reply: OutgoingReply, chat: ChatRef, message_id: int) -> None:
        """Tell the core which Discord message carries a punchline, so reactions find it."""
        if reply.rateable and reply.reply_id is not None:
            await self.core.reply_sent(reply.reply_id, message_ref(chat, message_id))

    async def _reply(
        self, message: discord.Message, text: str, **extra: Any
    ) -> discord.Message | None:
        """Reply to a message; if it was deleted meanwhile, post in its channel. None on failure."""
        reference = message.to_reference(fail_if_not_exists=False)
        try:
            return await message.channel.send(fit(text), reference=reference, **extra)
        except discord.HTTPException:
            log.warning("cannot send a reply in channel %s", message.channel.id, exc_info=True)
            return None


def _buttons(reply: OutgoingReply) -> dict[str, discord.ui.View]:
    """The rating buttons for a punchline (send keyword arguments); nothing for other replies."""
    if reply.rateable and reply.reply_id is not None:
        return {"view": rating_view(reply.reply_id)}
    return {}


@contextlib.asynccontextmanager
async def _typing(channel: discord.abc.Messageable) -> AsyncIterator[None]:
    """Show "typing…" while the model works; a refused typing call never stops the answer."""
    typing = channel.typing()
    try:
        await typing.__aenter__()
    except discord.HTTPException:
        log.debug("typing indicator refused", exc_info=True)
        yield
        return
    try:
        yield
    finally:
        await typing.__aexit__(None, None, None)


def build_client(
    settings: Settings, core: BotCore, battles: BattleService | None = None
) -> PunchlineDiscord:
    """The Discord client with its slash commands, ready for `run_discord`.

    When `battles` is given, its Discord UI is installed before the commands are synced.
    """
    client = PunchlineDiscord(settings, core, battles)
    if battles is not None:
        from bot.battles.discord_ui import install_battles

        install_battles(client, battles)
    return client


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
        raise DiscordStartError(
            "Discord rejected the bot token; check PUNCHLINE_DISCORD__TOKEN"
        ) from exc
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
