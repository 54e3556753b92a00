"""Where ratings come in: emoji reactions, rating buttons and the console's keys.

Each person's ratings are kept as a net state per reply and source (docs/DESIGN.md, decision
3): Telegram sends the whole new reaction list, Discord one add or remove at a time, and both
fold into the same emoji set, so a changed reaction updates and never counts twice. Nothing
here raises to a front-end: a fault is logged and reported as False or a short text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

from bot.clock import Clock
from bot.core import ratings
from bot.core.texts import MSG_RATE_FAILED, MSG_STALE, rated_text
from bot.storage import Storage
from bot.storage.records import ReplyRecord
from bot.types import MessageRef, Rating, UserRef

log = logging.getLogger(__name__)

REACTION_SOURCE = "reaction"  # Telegram reaction lists and Discord add/remove fold into this
BUTTON_SOURCE = "button"


class RatingDesk:
    """Stores reactions and button presses as ratings of the bot's punchlines."""

    def __init__(self, storage: Storage, clock: Clock, emoji_map: ratings.EmojiMap):
        self.storage = storage
        self.clock = clock
        self.emoji_map = emoji_map
        # Reaction updates read the person's current emoji set and write the new one; Discord
        # dispatches add/remove events concurrently, so they are serialised to lose none.
        self._lock = asyncio.Lock()

    async def set_reactions(self, ref: MessageRef, user: UserRef, emojis: Sequence[str]) -> bool:
        """A user's whole reaction set on a message (Telegram's new_reaction); [] removes.

        False: the message is not one of the bot's punchlines (or the user is a bot).
        """
        return await self._react(ref, user, "set", emojis, lambda old: ratings.normalise_emoji_set(emojis))

    async def add_reaction(self, ref: MessageRef, user: UserRef, emoji: str) -> bool:
        """One emoji added (Discord); folded into the same net state."""
        return await self._react(
            ref, user, "add", [emoji], lambda old: ratings.normalise_emoji_set([*old, emoji])
        )

    async def remove_reaction(self, ref: MessageRef, user: UserRef, emoji: str) -> bool:
        """One emoji removed (Discord)."""
        key = ratings.emoji_key(emoji)
        return await self._react(ref, user, "remove", [emoji], lambda old: tuple(e for e in old if e != key))

    async def _react(
        self,
        ref: MessageRef,
        user: UserRef,
        action: str,
        payload: Sequence[str],
        update: Callable[[tuple[str, ...]], tuple[str, ...]],
    ) -> bool:
        if user.is_bot:
            return False
        try:
            async with self._lock:
                reply = await self.storage.requests.find_reply(ref)
                if reply is None:
                    return False
                await self._store_emojis(reply, user, action, payload, update)
                return True
        except Exception:
            log.exception("could not store a reaction on %s/%s", ref.chat.chat_id, ref.message_id)
            return False

    async def _store_emojis(
        self,
        reply: ReplyRecord,
        user: UserRef,
        action: str,
        payload: Sequence[str],
        update: Callable[[tuple[str, ...]], tuple[str, ...]],
    ) -> None:
        current = await self.storage.ratings.get_reaction(reply.id, user, REACTION_SOURCE)
        new = update(current.emojis if current else ())
        verdict = self.emoji_map.fold(new)
        await self.storage.ratings.put_reaction(
            reply.id,
            user,
            REACTION_SOURCE,
            emojis=new,
            rating=None,
            funniness=verdict.funniness,
            appropriateness=verdict.appropriateness,
            action=action,
            event_payload=list(payload),
            at=self.clock.now(),
        )

    async def set_reaction_counts(self, ref: MessageRef, counts: Mapping[str, int]) -> bool:
        """Anonymous reaction counts of a message (Telegram channels); they replace earlier ones."""
        try:
            reply = await self.storage.requests.find_reply(ref)
            if reply is None:
                return False
            merged: dict[str, int] = {}
            for emoji, n in counts.items():
                key = ratings.emoji_key(emoji)
                if key:
                    merged[key] = merged.get(key, 0) + max(0, int(n))
            rows = []
            for emoji, n in sorted(merged.items()):
                v = self.emoji_map.verdict(emoji)
                rows.append((emoji, n, v.funniness, v.appropriateness))
            await self.storage.ratings.replace_counts(reply.id, rows, self.clock.now())
            return True
        except Exception:
            log.exception("could not store reaction counts on %s/%s", ref.chat.chat_id, ref.message_id)
            return False

    async def rate(
        self, ref: MessageRef, user: UserRef, rating: Rating | None, source: str = BUTTON_SOURCE
    ) -> str:
        """A rating button pressed on the message `ref` (or a console key); None clears it.

        The message itself names the punchline: a button on any message that does not carry
        one of the bot's punchlines in that chat rates nothing. Returns the short text to show
        the person. Never raises.
        """
        if source == REACTION_SOURCE:
            # Reactions keep an emoji set under this source; a rating there would clobber it.
            log.error("rate() called with source=%r; reactions go through set_reactions()", source)
            return MSG_RATE_FAILED
        try:
            reply = await self.storage.requests.find_reply(ref)
            if reply is None or user.is_bot:
                return MSG_STALE
            verdict = ratings.Verdict() if rating is None else ratings.verdict_for_rating(rating)
            await self.storage.ratings.put_reaction(
                reply.id,
                user,
                source,
                emojis=(),
                rating=None if rating is None else rating.value,
                funniness=verdict.funniness,
                appropriateness=verdict.appropriateness,
                action="clear" if rating is None else "rate",
                event_payload=[] if rating is None else [rating.value],
                at=self.clock.now(),
            )
        except Exception:
            log.exception("could not store a rating on %s/%s", ref.chat.chat_id, ref.message_id)
            return MSG_RATE_FAILED
        return rated_text(rating)
