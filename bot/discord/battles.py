"""Joke battles on Discord: `/battle`, `/cancel`, `/leaderboard`, an entry button that opens a
modal, and vote buttons; all answered privately (ephemeral) where Discord allows.

`bot.discord.client.register_handlers` registers the commands; battle buttons reach
`on_vote` / `on_enter` through `bot.discord.buttons`. The ballot or announcement a button sits
on names the round.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord

from bot.battles.models import Answer, ButtonKind, EntryForm, View
from bot.battles.service import BattleService
from bot.discord.convert import answer_ephemeral, chat_ref_for_interaction, fit, user_ref
from bot.payloads import VotePayload
from bot.types import ChatKind, ChatRef

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0  # rounds resumed at start-up wait this long for the gateway
MSG_FAILED = "Sorry, something went wrong on my side. Please try again in a moment."
MSG_GROUPS_ONLY = "Leaderboards are kept per server channel: use /leaderboard in one."
MSG_NO_MESSAGE = "That button isn't valid."
ENTRY_INPUT_ID = "punchline"
# Discord closes a modal's interaction after 15 minutes; a form left open longer is dropped.
MODAL_TIMEOUT_S = 15 * 60.0


def discord_view(view: View) -> discord.ui.View | None:
    """The view's buttons as a persistent discord.py view (None: no buttons)."""
    if not view.buttons:
        return None
    out = discord.ui.View(timeout=None)
    for button in view.buttons:
        style = (
            discord.ButtonStyle.primary if button.kind is ButtonKind.ENTER else discord.ButtonStyle.secondary
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

    def __init__(self, service: BattleService, form: EntryForm):
        super().__init__(title=f"Battle #{form.battle_id}: your punchline"[:45], timeout=MODAL_TIMEOUT_S)
        self.service = service
        self.battle_id = form.battle_id
        self.text: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Your punchline",
            placeholder=form.setup[:100],
            style=discord.TextStyle.paragraph,
            max_length=form.max_chars,
            custom_id=ENTRY_INPUT_ID,
        )
        self.add_item(self.text)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        answer = await self.service.entries.submit(
            self.battle_id, user_ref(interaction.user), self.text.value
        )
        await answer_ephemeral(interaction, answer.text)

    # discord.py's stubs give Modal.on_error View's signature (with an item); modals get none.
    async def on_error(self, interaction: discord.Interaction[Any], error: Exception, /) -> None:  # type: ignore[override]
        log.error("battle entry modal failed", exc_info=error)
        await answer_ephemeral(interaction, MSG_FAILED)


class DiscordBattleUI:
    """The battle commands and buttons, bound to one service."""

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

    async def promote(self, interaction: discord.Interaction[Any], version: str | None = None) -> None:
        """`/promote [version]` (the bot's admins): where each challenger stands, or promote one."""
        chat = chat_ref_for_interaction(interaction)
        # A promotion waits for the model to switch (seconds, across a fleet longer).
        await interaction.response.defer(ephemeral=True, thinking=True)
        text = await self.service.promote(chat, user_ref(interaction.user), version or "")
        await interaction.followup.send(fit(text), ephemeral=True)

    async def leaderboard(self, interaction: discord.Interaction[Any]) -> None:
        chat = chat_ref_for_interaction(interaction)
        if chat.kind is not ChatKind.GROUP:
            await answer_ephemeral(interaction, MSG_GROUPS_ONLY)
            return
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(fit(await self.service.leaderboard_text(chat)))

    async def on_vote(self, interaction: discord.Interaction[Any], payload: VotePayload) -> str:
        if interaction.message is None:
            return MSG_NO_MESSAGE
        chat = chat_ref_for_interaction(interaction)
        answer = await self.service.vote(
            chat, str(interaction.message.id), payload.position, user_ref(interaction.user)
        )
        return answer.text

    async def on_enter(self, interaction: discord.Interaction[Any]) -> str | None:
        """Open the entry form for the announced round (None), or say why not."""
        if interaction.message is None:
            return MSG_NO_MESSAGE
        chat = chat_ref_for_interaction(interaction)
        form = await self.service.entries.entry_form(
            chat, str(interaction.message.id), user_ref(interaction.user)
        )
        if isinstance(form, Answer):
            return form.text
        await interaction.response.send_modal(EntryModal(self.service, form))
        return None


def _is_channel_admin(interaction: discord.Interaction[Any]) -> bool:
    """People who may manage messages here count as chat admins for /cancel."""
    permissions = interaction.permissions
    return bool(permissions.administrator or permissions.manage_messages or permissions.manage_guild)
