"""The rating buttons under each Discord punchline.

Each button's custom_id is the core's payload `rate:<reply_id>:<funny|meh|inappropriate>`, so
the button carries its own state: a `DynamicItem` whose template matches every `rate:` id is
registered at start-up, which keeps buttons on old messages working after a restart without
remembering any view. A custom_id that starts with `rate:` but does not parse (forged, or from
an older format) still lands here and gets a polite answer instead of "interaction failed".
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord

from bot.core import parse_rating_payload
from bot.discord_refs import fit, user_ref
from bot.types import Rating

if TYPE_CHECKING:
    from bot.discord_bot import PunchlineDiscord

log = logging.getLogger(__name__)

RATING_PREFIX = "rate:"

# (label, emoji, style) per rating, in the order the buttons appear.
_BUTTONS: dict[Rating, tuple[str, str, discord.ButtonStyle]] = {
    Rating.FUNNY: ("Funny", "🤣", discord.ButtonStyle.success),
    Rating.MEH: ("Meh", "😐", discord.ButtonStyle.secondary),
    Rating.INAPPROPRIATE: ("Inappropriate", "🤮", discord.ButtonStyle.danger),
}

FORGED_TEXT = "That button doesn't work any more. You can still rate with a reaction emoji."
FAILED_TEXT = "Sorry, I couldn't record that just now. Please try again in a moment."


def rating_custom_id(reply_id: int, rating: Rating) -> str:
    """The custom_id of one rating button (the core's payload format)."""
    return f"{RATING_PREFIX}{reply_id}:{rating.value}"


class RatingButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=re.compile(re.escape(RATING_PREFIX) + r".*", re.DOTALL),
):
    """One persistent rating button; rebuilt from its custom_id on every press."""

    def __init__(self, custom_id: str) -> None:
        parsed = parse_rating_payload(custom_id)
        rating = parsed[1] if parsed else Rating.MEH
        label, emoji, style = _BUTTONS[rating]
        super().__init__(discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=custom_id))
        self.parsed = parsed

    @classmethod
    def for_reply(cls, reply_id: int, rating: Rating) -> RatingButton:
        return cls(rating_custom_id(reply_id, rating))

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> RatingButton:
        return cls(match.group(0))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client: PunchlineDiscord = interaction.client  # type: ignore[assignment]
        try:
            if self.parsed is None:
                log.info("rating button with a custom_id that does not parse: %r", self.custom_id)
                text = FORGED_TEXT
            else:
                reply_id, rating = self.parsed
                text = await client.core.rate(reply_id, user_ref(interaction.user), rating)
        except Exception:
            log.exception("recording a rating button press failed")
            text = FAILED_TEXT
        try:
            await interaction.response.send_message(fit(text), ephemeral=True)
        except discord.HTTPException:
            log.warning("could not answer a rating button press", exc_info=True)


def rating_view(reply_id: int) -> discord.ui.View:
    """A view with the three rating buttons for one reply; timeout=None so it never expires."""
    view = discord.ui.View(timeout=None)
    for rating in _BUTTONS:
        view.add_item(RatingButton.for_reply(reply_id, rating))
    return view
