"""What the Discord bot does: slash commands, setups in messages, reactions and buttons.

What counts as a setup (docs/DESIGN.md, decision 5): every message in a DM; in guild channels
only messages that mention the bot or reply to one of its messages, and the `/joke setup:<text>`
slash command. Unaddressed chatter, edits and other bots are ignored on purpose. None of this
needs the privileged message-content intent: Discord always shows a bot the text of DMs and of
messages that mention it (a reply that pings the bot mentions it). With
`PUNCHLINE_DISCORD__MESSAGE_CONTENT_INTENT=true` the bot also reads replies sent without a ping.

Ratings: the buttons under each punchline (`bot.discord.buttons`) and emoji reactions, taken
from the raw reaction events so that reactions on messages outside discord.py's cache count too.
`bot.discord.client.register_handlers` wires all of these.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import discord

from bot.core.service import BotCore
from bot.discord.buttons import FORGED_TEXT, rating_view
from bot.discord.convert import (
    answer_ephemeral,
    chat_ref,
    chat_ref_for_interaction,
    chat_ref_for_message,
    fit,
    interaction_message_ref,
    message_ref,
    readable_mentions,
    strip_bot_mentions,
    user_ref,
)
from bot.discord.in_flight import InFlight
from bot.payloads import RatePayload, VotePayload
from bot.types import ChatRef, IncomingSetup, MessageRef, OutgoingReply, Platform, UserRef

if TYPE_CHECKING:
    from bot.discord.battles import DiscordBattleUI

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
NO_TEXT_TEXT = "That message has no text I can read as a setup."
SEND_FAILED_TEXT = "I couldn't post in this channel, sorry."
ANSWERED_TEXT = "Answered in the channel."
ANOTHER_TEXT = "🔁 Another one, posted."
SLOW_DOWN_TEXT = "Not so fast — try again in a moment."
MAX_JOKES = 3  # /joke count:<1-3>

# Message types that people write; joins, pins, boosts and the like are never setups.
_USER_MESSAGE_TYPES = (discord.MessageType.default, discord.MessageType.reply)


class DiscordHandlers:
    """The bot's Discord callbacks, bound to one client and core."""

    def __init__(
        self,
        client: discord.Client,
        in_flight: InFlight,
        core: BotCore,
        battle_ui: DiscordBattleUI | None = None,
    ):
        self.client = client
        self.in_flight = in_flight
        self.core = core
        self.battle_ui = battle_ui  # battle buttons are routed there

    async def slash_joke(
        self, interaction: discord.Interaction[Any], setup: str | None, count: int = 1
    ) -> None:
        """`/joke setup:<text> count:<1-3>`: defer (Discord shows "thinking"), generate, answer
        with `count` punchlines as separate messages, so each is rated on its own (the later
        ones never repeat an earlier one). Without a setup the bot picks one for each."""
        chat = chat_ref_for_interaction(interaction)
        user = user_ref(interaction.user)
        if not self._allowed(chat, user):
            await answer_ephemeral(interaction, NOT_ALLOWED_TEXT)
            return
        if self.in_flight.stopping:
            await answer_ephemeral(interaction, RESTARTING_TEXT)
            return
        with self.in_flight.tracked():
            await interaction.response.defer(thinking=True)
            previous: MessageRef | None = None
            for _ in range(max(1, min(count, MAX_JOKES))):
                if setup is None:
                    reply = await self.core.joke_on_request(chat, user)
                elif previous is None:
                    reply = await self.core.handle_setup(IncomingSetup(chat, user, setup, addressed=True))
                else:
                    reply = await self.core.another(previous, user)
                if reply is None:
                    # Quiet for a flood: the first was answered, the others wait for the limit.
                    await interaction.followup.send(
                        SLOW_DOWN_TEXT if previous else NOT_ALLOWED_TEXT, ephemeral=True
                    )
                    return
                sent = await interaction.followup.send(fit(reply.text), wait=True, view=_buttons(reply))
                await self._link(reply, chat, sent.id)
                if not reply.rateable:
                    return  # a refusal or "busy": said once, not count times
                previous = message_ref(chat, sent.id)

    async def context_punchline(
        self, interaction: discord.Interaction[Any], message: discord.Message
    ) -> None:
        """ "Punchline this" (a message's context menu): answer that message as a setup, in the
        channel, as a reply to it with the rating buttons; anything else is said privately."""
        chat = chat_ref_for_interaction(interaction)
        user = user_ref(interaction.user)
        if not self._allowed(chat, user):
            await answer_ephemeral(interaction, NOT_ALLOWED_TEXT)
            return
        if not message.content.strip():
            await answer_ephemeral(interaction, NO_TEXT_TEXT)
            return
        if self.in_flight.stopping:
            await answer_ephemeral(interaction, RESTARTING_TEXT)
            return
        with self.in_flight.tracked():
            # Private "thinking…" while the model works: a refusal stays between us.
            await interaction.response.defer(ephemeral=True, thinking=True)
            words = IncomingSetup(
                chat, user, message.content, addressed=True, author=user_ref(message.author)
            )
            reply = await self.core.handle_setup(words)
            if reply is None:
                await interaction.followup.send(NOT_ALLOWED_TEXT, ephemeral=True)
                return
            if not reply.rateable:
                await interaction.followup.send(fit(reply.text), ephemeral=True)
                return
            sent = await self._reply(message, reply.text, view=_buttons(reply))
            if sent is None:
                await interaction.followup.send(SEND_FAILED_TEXT, ephemeral=True)
                return
            await self._link(reply, chat, sent.id)
            await interaction.followup.send(ANSWERED_TEXT, ephemeral=True)

    async def slash_stats(self, interaction: discord.Interaction[Any]) -> None:
        chat = chat_ref_for_interaction(interaction)
        if not self._allowed(chat, user_ref(interaction.user)):
            await answer_ephemeral(interaction, NOT_ALLOWED_TEXT)
            return
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(fit(await self.core.stats_text(chat)))

    async def slash_help(self, interaction: discord.Interaction[Any]) -> None:
        chat = chat_ref_for_interaction(interaction)
        await answer_ephemeral(interaction, await self.core.help_for(chat, user_ref(interaction.user)))

    async def slash_reload(self, interaction: discord.Interaction[Any], adapter_dir: str | None) -> None:
        """`/reload adapter_dir:<optional>`: an admin swaps the adapter; answered privately.

        The core refuses anyone but the configured admins (PUNCHLINE_DISCORD__ADMIN_IDS).
        """
        user = user_ref(interaction.user)
        if not self.core.access.is_admin(user):
            await answer_ephemeral(interaction, await self.core.admin.reload_adapter(user, adapter_dir))
            return
        # Loading takes longer than the 3 s Discord gives an interaction: defer, then follow up.
        await interaction.response.defer(ephemeral=True, thinking=True)
        await answer_ephemeral(interaction, await self.core.admin.reload_adapter(user, adapter_dir))

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
        if self.in_flight.stopping:
            if self._allowed(setup.chat, setup.user):
                await self._reply(message, RESTARTING_TEXT)
            return
        with self.in_flight.tracked():
            try:
                if not setup.text and not self._can_read(message):
                    await self._reply(message, CANNOT_READ_TEXT)
                    return
                async with _typing(message.channel):
                    reply = await self.core.handle_setup(setup)
                if reply is None:
                    return
                sent = await self._reply(message, reply.text, view=_buttons(reply))
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
        me = self.client.user
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
        assert self.client.user is not None
        if any(user.id == self.client.user.id for user in message.mentions):
            return True
        role = message.guild.self_role if message.guild is not None else None
        return role is not None and role in message.role_mentions

    def _replies_to_me(self, message: discord.Message) -> bool:
        reference = message.reference
        if reference is None or self.client.user is None:
            return False
        replied = reference.resolved if reference.resolved is not None else reference.cached_message
        return isinstance(replied, discord.Message) and replied.author.id == self.client.user.id

    def _can_read(self, message: discord.Message) -> bool:
        """False where Discord hid the text: a guild reply without a ping, no content intent."""
        return message.guild is None or self.client.intents.message_content or self._mentions_me(message)

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
        if self.client.user is not None and payload.user_id == self.client.user.id:
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
                await self.core.ratings.add_reaction(ref, user, emoji)
            else:
                await self.core.ratings.remove_reaction(ref, user, emoji)
        except Exception:
            # No chat message: a reaction gets no answer, and nothing stored is lost.
            log.exception("recording a Discord reaction failed")

    def _reacting_user(self, payload: discord.RawReactionActionEvent) -> UserRef:
        if payload.member is not None:
            return user_ref(payload.member)
        cached = self.client.get_user(payload.user_id)
        if cached is not None:
            return user_ref(cached)
        return UserRef(Platform.DISCORD, str(payload.user_id))

    # ----------------------------------------------------------------- buttons

    async def on_rate(self, interaction: discord.Interaction[Any], payload: RatePayload) -> str:
        """A rating button: it rates the punchline of the message it sits on."""
        ref = interaction_message_ref(interaction)
        if ref is None:
            return FORGED_TEXT
        return await self.core.ratings.rate(ref, user_ref(interaction.user), payload.rating)

    async def on_again(self, interaction: discord.Interaction[Any]) -> str:
        """🔁: a new punchline to the same setup, as a reply to the punchline pressed; the
        private answer says what happened."""
        ref = interaction_message_ref(interaction)
        if ref is None or interaction.message is None:
            return FORGED_TEXT
        chat, user = ref.chat, user_ref(interaction.user)
        if not self._allowed(chat, user):
            return NOT_ALLOWED_TEXT
        if self.in_flight.stopping:
            return RESTARTING_TEXT
        with self.in_flight.tracked():  # shutdown waits for it like for any reply
            # Generating takes longer than Discord's 3 s for a first answer.
            await interaction.response.defer(ephemeral=True, thinking=True)
            return await self._post_another(interaction, ref, user)

    async def _post_another(
        self, interaction: discord.Interaction[Any], ref: MessageRef, user: UserRef
    ) -> str:
        assert interaction.message is not None
        chat = ref.chat
        reply = await self.core.another(ref, user)
        if reply is None:
            return SLOW_DOWN_TEXT
        if not reply.rateable:
            return reply.text
        sent = await self._reply(interaction.message, reply.text, view=_buttons(reply))
        if sent is None:
            return SEND_FAILED_TEXT
        await self._link(reply, chat, sent.id)
        return ANOTHER_TEXT

    async def on_vote(self, interaction: discord.Interaction[Any], payload: VotePayload) -> str:
        if self.battle_ui is None:
            return FORGED_TEXT
        return await self.battle_ui.on_vote(interaction, payload)

    async def on_enter(self, interaction: discord.Interaction[Any]) -> str | None:
        if self.battle_ui is None:
            return FORGED_TEXT
        return await self.battle_ui.on_enter(interaction)

    async def on_forget(self, interaction: discord.Interaction[Any]) -> str:
        """/forget's confirmation: it erases whoever pressed it (answered privately)."""
        return await self.core.privacy.forget(user_ref(interaction.user))

    # ----------------------------------------------------------------- helpers

    def _allowed(self, chat: ChatRef, user: UserRef) -> bool:
        return self.core.access.is_allowed(chat, user)

    async def _link(self, reply: OutgoingReply, chat: ChatRef, message_id: int) -> None:
        """Tell the core which Discord message carries a punchline, so reactions find it."""
        if reply.rateable and reply.reply_id is not None:
            await self.core.reply_sent(reply.reply_id, message_ref(chat, message_id))

    async def _reply(self, message: discord.Message, text: str, **extra: Any) -> discord.Message | None:
        """Reply to a message; if it was deleted meanwhile, post in its channel. None on failure."""
        reference = message.to_reference(fail_if_not_exists=False)
        try:
            return await message.channel.send(fit(text), reference=reference, **extra)
        except discord.HTTPException:
            log.warning("cannot send a reply in channel %s", message.channel.id, exc_info=True)
            return None


def _buttons(reply: OutgoingReply) -> Any:
    """The rating buttons for a punchline, `MISSING` (no view) for other replies."""
    return rating_view() if reply.rateable else discord.utils.MISSING


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
