"""Every button of the Discord bot: the rating buttons under a punchline, the battle buttons,
/forget's confirmation.

Each button's custom_id is a `bot.payloads` payload. One persistent `DynamicItem` class matches
every custom_id and is registered at start-up, so buttons on old messages keep working after a
restart without remembering any view; it decodes the payload and hands the press to whoever
handles that kind (`ButtonHandlers`). A custom_id that does not decode (forged, or from an older
version of the bot) still lands here and gets a polite answer instead of "interaction failed".
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

import discord

from bot.discord.convert import answer_ephemeral
from bot.payloads import (
    AgainPayload,
    EnterPayload,
    ForgetPayload,
    Payload,
    RatePayload,
    VotePayload,
    decode,
    encode,
)
from bot.types import Rating

log = logging.getLogger(__name__)

# (label, emoji, style) per rating, in the order the buttons appear.
_RATING_BUTTONS: dict[Rating, tuple[str, str, discord.ButtonStyle]] = {
    Rating.FUNNY: ("Funny", "🤣", discord.ButtonStyle.success),
    Rating.MEH: ("Meh", "😐", discord.ButtonStyle.secondary),
    Rating.INAPPROPRIATE: ("Inappropriate", "🤮", discord.ButtonStyle.danger),
}

FORGED_TEXT = "That button doesn't work any more."
FAILED_TEXT = "Sorry, I couldn't record that just now. Please try again in a moment."


class ButtonHandlers(Protocol):
    """Who answers a pressed button of each kind (`bot.discord.handlers.DiscordHandlers`)."""

    async def on_rate(self, interaction: discord.Interaction[Any], payload: RatePayload) -> str: ...

    async def on_vote(self, interaction: discord.Interaction[Any], payload: VotePayload) -> str: ...

    async def on_enter(self, interaction: discord.Interaction[Any]) -> str | None:
        """Answer with a modal (None) or with a text."""
        ...

    async def on_forget(self, interaction: discord.Interaction[Any]) -> str:
        """/forget's confirmation: erase whoever pressed it."""
        ...

    async def on_again(self, interaction: discord.Interaction[Any]) -> str:
        """🔁 under a punchline: another one to the same setup."""
        ...


def rating_view() -> discord.ui.View:
    """The three rating buttons and 🔁 (another punchline to the same setup); the message they
    sit on names the punchline they belong to."""
    view = discord.ui.View(timeout=None)
    for rating, (label, emoji, style) in _RATING_BUTTONS.items():
        custom_id = encode(RatePayload(rating))
        view.add_item(discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=custom_id))
    view.add_item(
        discord.ui.Button(
            label="Another one",
            emoji="🔁",
            style=discord.ButtonStyle.primary,
            custom_id=encode(AgainPayload()),
        )
    )
    return view


def button_class(handlers: ButtonHandlers) -> type[discord.ui.DynamicItem[Any]]:
    """The persistent button class answering through `handlers` (a class per client: no
    module-level state)."""

    class BotButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=re.compile(".*", re.DOTALL)):
        def __init__(self, custom_id: str) -> None:
            super().__init__(discord.ui.Button(label="…", custom_id=custom_id))
            self.payload: Payload | None = decode(custom_id)

        @classmethod
        async def from_custom_id(
            cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
        ) -> BotButton:
            return cls(match.group(0))

        async def callback(self, interaction: discord.Interaction[Any]) -> None:
            try:
                text = await self._answer(interaction)
            except Exception:
                log.exception("a button press failed")
                text = FAILED_TEXT
            if text is not None:
                await answer_ephemeral(interaction, text)

        async def _answer(self, interaction: discord.Interaction[Any]) -> str | None:
            payload = self.payload
            if isinstance(payload, RatePayload):
                return await handlers.on_rate(interaction, payload)
            if isinstance(payload, VotePayload):
                return await handlers.on_vote(interaction, payload)
            if isinstance(payload, EnterPayload):
                return await handlers.on_enter(interaction)
            if isinstance(payload, ForgetPayload):
                return await handlers.on_forget(interaction)
            if isinstance(payload, AgainPayload):
                return await handlers.on_again(interaction)
            log.info("a button with a custom_id that does not decode: %r", self.custom_id)
            return FORGED_TEXT

    return BotButton
