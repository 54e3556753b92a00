"""People's controls on Discord: /privacy, /forget (with its confirmation button), /optout,
/optin, and /family for server managers. All answered privately (ephemeral). The core decides
(`bot.core.privacy`, `bot.core.family`); this module only speaks Discord.
"""

from __future__ import annotations

from typing import Any

import discord

from bot.core import texts
from bot.core.service import BotCore
from bot.discord.convert import answer_ephemeral, chat_ref_for_interaction, fit, user_ref
from bot.payloads import ForgetPayload, encode

NOT_ALLOWED_TEXT = "I'm not enabled here, sorry."


def forget_view() -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(
        discord.ui.Button(
            label=texts.FORGET_BUTTON, style=discord.ButtonStyle.danger, custom_id=encode(ForgetPayload())
        )
    )
    return view


class DiscordPrivacyUI:
    def __init__(self, core: BotCore):
        self.core = core

    async def privacy(self, interaction: discord.Interaction[Any]) -> None:
        if await self._allowed(interaction):
            await answer_ephemeral(
                interaction, await self.core.privacy.privacy_text(user_ref(interaction.user))
            )

    async def forget(self, interaction: discord.Interaction[Any]) -> None:
        """The confirmation, privately; its button erases whoever presses it
        (`DiscordHandlers.on_forget`)."""
        if await self._allowed(interaction):
            await interaction.response.send_message(
                fit(texts.MSG_FORGET_CONFIRM), view=forget_view(), ephemeral=True
            )

    async def training(self, interaction: discord.Interaction[Any], *, opted_in: bool) -> None:
        if await self._allowed(interaction):
            await answer_ephemeral(
                interaction, await self.core.privacy.set_training(user_ref(interaction.user), opted_in)
            )

    async def family(self, interaction: discord.Interaction[Any], mode: str | None) -> None:
        """`/family mode:<on|off>`: Manage Server (or a bot admin) may change it."""
        if not await self._allowed(interaction):
            return
        manager = bool(interaction.guild_id) and bool(getattr(interaction.permissions, "manage_guild", False))
        text = await self.core.family.command(
            chat_ref_for_interaction(interaction), user_ref(interaction.user), mode or "", chat_admin=manager
        )
        await answer_ephemeral(interaction, text)

    async def _allowed(self, interaction: discord.Interaction[Any]) -> bool:
        """Whether the bot serves this person here; if not, says so (never "interaction failed")."""
        if self.core.access.is_allowed(chat_ref_for_interaction(interaction), user_ref(interaction.user)):
            return True
        await answer_ephemeral(interaction, NOT_ALLOWED_TEXT)
        return False
