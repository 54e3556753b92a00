"""Joke battles on Discord: slash commands, an entry button that opens a modal, vote buttons.

`install_battles(client, service)` adds `/battle [setup]`, `/cancel` and `/leaderboard` to
`client.tree` and registers one persistent button class (a `DynamicItem` matching every
`battle:` custom_id), so buttons on old messages keep working after a restart without any view
kept in memory:

- `battle:<id>:enter` opens a modal for the entry (only the bot sees it until voting);
- `battle:<id>:vote:<position>` votes; answers are ephemeral.

Anything else starting with `battle:` (forged or from an older format) gets a polite answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import discord
from discord import app_commands

from bot.battles.models import (
    Answer,
    ButtonKind,
    EnterPayload,
    View,
    VotePayload,
    parse_payload,
)
from bot.battles.service import BattleService
from bot.discord_refs import answer_ephemeral, chat_ref_for_interaction, fit, user_ref
from bot.types import ChatKind, ChatRef, Platform

log = logging.getLogger(__name__)

PAYLOAD_TEMPLATE = re.compile(r"battle:.*", re.DOTALL)
READY_TIMEOUT_S = 60.0  # rounds resumed at start-up wait this long for the gateway
MSG_BAD_BUTTON = "That button isn't valid."
MSG_FAILED = "Sorry, something went wrong on my side. Please try again in a moment."
MSG_GROUPS_ONLY = "Leaderboards are kept per server channel: use /leaderboard in one."
ENTRY_INPUT_ID = "punchline"


def discord_view(view: View) -> discord.ui.View | None:
    """The view's buttons as a persistent discord.py view (None: no buttons)."""
    if not view.buttons:
        return None
    out = discord.ui.View(timeout=None)
    for button in view.buttons:
        style = (
            discord.ButtonStyle.primary
            if button.kind is ButtonKind.ENTER
            else discord.ButtonStyle.secondary
        )
        out.add_item(discord.ui.Button(label=button.label, style=style, custom_id=button.payload))
    return out


class DiscordAnnouncer:
    """Posts battle messages through the client; Discord errors are logged, never raised."""

    def __init__(self, client: discord.Client):
        self.client = client

    async def _channel(self, chat: ChatRef) -> Any:
        # Rounds resumed at start-up may close before the gateway is ready.
        waited = 0.0
        while not self.client.is_ready():
            if waited >= READY_TIMEOUT_S:
                raise RuntimeError("the Discord client is not connected")
            await asyncio.sleep(0.2)
            waited += 0.2
        channel_id = int(chat.chat_id)
        return self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)

    async def post(self, chat: ChatRef, view: View) -> str | None:
        try:
            channel = await self._channel(chat)
            extra = {"view": v} if (v := discord_view(view)) is not None else {}
            sent = await channel.send(fit(view.text), **extra)
        except (discord.HTTPException, RuntimeError) as exc:
            log.warning("battle message not sent to channel %s: %r", chat.chat_id, exc)
            return None
        return str(sent.id)

    async def edit(self, chat: ChatRef, message_id: str, view: View) -> bool:
        try:
            channel = await self._channel(chat)
            message = channel.get_partial_message(int(message_id))
            await message.edit(content=fit(view.text), view=discord_view(view))
        except (discord.HTTPException, RuntimeError) as exc:
            log.info("battle message %s not edited: %r", message_id, exc)
            return False
        return True

    async def delete(self, chat: ChatRef, message_id: str) -> bool:
        try:
            channel = await self._channel(chat)
            await channel.get_partial_message(int(message_id)).delete()
        except (discord.HTTPException, RuntimeError) as exc:
            log.info("message %s not deleted: %r", message_id, exc)
            return False
        return True


class EntryModal(discord.ui.Modal):
    """One text field: the person's punchline for a round."""

    def __init__(self, service: BattleService, battle_id: int, setup: str, max_chars: int):
        super().__init__(title=f"Battle #{battle_id}: your punchline"[:45], timeout=None)
        self.service = service
        self.battle_id = battle_id
        self.text: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Your punchline",
            placeholder=setup[:100],
            style=discord.TextStyle.paragraph,
            max_length=max_chars,
            custom_id=ENTRY_INPUT_ID,
        )
        self.add_item(self.text)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        answer = await self.service.submit(self.battle_id, user_ref(interaction.user), self.text.value)
        await answer_ephemeral(interaction, answer.text)

    async def on_error(self, interaction: discord.Interaction[Any], error: Exception, /) -> None:
        log.error("battle entry modal failed", exc_info=error)
        await answer_ephemeral(interaction, MSG_FAILED)


def battle_button_class(service: BattleService) -> type[discord.ui.DynamicItem[Any]]:
    """The persistent button class for `service` (a class per service: no global state)."""

    class BattleButton(
        discord.ui.DynamicItem[discord.ui.Button[Any]], template=PAYLOAD_TEMPLATE
    ):
        def __init__(self, custom_id: str) -> None:
            super().__init__(discord.ui.Button(label="…", custom_id=custom_id))
            self.payload = parse_payload(custom_id)

        @classmethod
        async def from_custom_id(
            cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
        ) -> BattleButton:
            return cls(match.group(0))

        async def callback(self, interaction: discord.Interaction[Any]) -> None:
            try:
                if isinstance(self.payload, VotePayload):
                    answer = await service.vote(
                        self.payload.battle_id,
                        self.payload.position,
                        user_ref(interaction.user),
                        chat_ref_for_interaction(interaction),
                    )
                elif isinstance(self.payload, EnterPayload):
                    await self._open_entry(interaction, self.payload.battle_id)
                    return
                else:
                    log.info("battle button with a custom_id that does not parse: %r", self.custom_id)
                    answer = Answer(MSG_BAD_BUTTON, ok=False)
            except Exception:
                log.exception("a battle button press failed")
                answer = Answer(MSG_FAILED, ok=False)
            await answer_ephemeral(interaction, answer.text)

        async def _open_entry(self, interaction: discord.Interaction[Any], battle_id: int) -> None:
            check = await service.entry_check(battle_id, user_ref(interaction.user))
            if not check.ok:
                await answer_ephemeral(interaction, check.text)
                return
            battle = await service.store.get(battle_id)
            assert battle is not None
            modal = EntryModal(service, battle_id, battle.setup, service.settings.max_entry_chars)
            await interaction.response.send_modal(modal)

    return BattleButton


class DiscordBattleCommands:
    """The slash command callbacks, bound to one service."""

    def __init__(self, service: BattleService):
        self.service = service

    async def battle(self, interaction: discord.Interaction[Any], setup: str | None = None) -> None:
        chat = chat_ref_for_interaction(interaction)
        # Starting may read the setup file and post the announcement: acknowledge at once.
        await interaction.response.defer(ephemeral=True, thinking=True)
        answer = await self.service.start(chat, user_ref(interaction.user), setup)
        await interaction.followup.send(fit(answer.text), ephemeral=True)

    async def cancel(self, interaction: discord.Interaction[Any]) -> None:
        chat = chat_ref_for_interaction(interaction)
        answer = await self.service.cancel(chat, user_ref(interaction.user), _is_channel_admin(interaction))
        await answer_ephemeral(interaction, answer.text)

    async def leaderboard(self, interaction: discord.Interaction[Any]) -> None:
        chat = chat_ref_for_interaction(interaction)
        if chat.kind is not ChatKind.GROUP:
            await answer_ephemeral(interaction, MSG_GROUPS_ONLY)
            return
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(fit(await self.service.leaderboard_text(chat)))


def install_battles(client: discord.Client, service: BattleService) -> None:
    """Add the battle slash commands to `client.tree`, register the persistent buttons and
    attach the Discord announcer. Call before the commands are synced (setup_hook)."""
    tree: app_commands.CommandTree[Any] = client.tree  # type: ignore[attr-defined]
    commands = DiscordBattleCommands(service)
    service.attach(Platform.DISCORD, DiscordAnnouncer(client))
    client.add_dynamic_items(battle_button_class(service))

    @tree.command(name="battle", description="Start a joke battle here: people against the bot")
    @app_commands.describe(setup="A joke setup; leave it out and I'll pick one")
    async def battle(interaction: discord.Interaction[Any], setup: str | None = None) -> None:
        await commands.battle(interaction, setup)

    @tree.command(name="cancel", description="Cancel the joke battle running here")
    async def cancel(interaction: discord.Interaction[Any]) -> None:
        await commands.cancel(interaction)

    @tree.command(name="leaderboard", description="Joke battle standings in this channel")
    async def leaderboard(interaction: discord.Interaction[Any]) -> None:
        await commands.leaderboard(interaction)


def _is_channel_admin(interaction: discord.Interaction[Any]) -> bool:
    """People who may manage messages here count as chat admins for /cancel."""
    permissions = interaction.permissions
    return bool(permissions.administrator or permissions.manage_messages or permissions.manage_guild)
