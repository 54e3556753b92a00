"""Where ratings come in: emoji reactions, rating buttons and the console's keys.

Each person's ratings are kept as a net state per reply and source (docs/DESIGN.md, decision
3): Telegram sends the whole new reaction list, Discord one add or remove at a time, and both
fold into the same emoji set, so a changed reaction updates and never counts twice. Ratings are
stored one at a time, in the order they came, so rapid presses of one button end as one rating:
the last.

A reaction can reach the bot before the punchline's message id is stored (the platform
delivers it while the bot is still linking the message it just sent). While a chat has a
punchline on its way (`expect`), a rating on a message not yet known is parked and applied as
soon as the link is written (`linked`), so no rating is lost to that race; a button press waits
a moment for the link the same way. With nothing on its way, an unknown message is answered
at once: it is not one of ours.

Nothing here raises to a front-end: a fault is logged and reported as False or a short text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.clock import Clock
from bot.core import ratings
from bot.core.texts import MSG_RATE_FAILED, MSG_STALE, rated_text
from bot.storage import Storage
from bot.storage.records import ReplyRecord
from bot.types import MessageRef, Rating, UserRef

log = logging.getLogger(__name__)

REACTION_SOURCE = "reaction"  # Telegram reaction lists and Discord add/remove fold into this
BUTTON_SOURCE = "button"
PARK_S = 60.0  # a reaction on a message not (yet) known waits this long for its link
MAX_PARKED = 10_000  # messages with parked reactions; the oldest go first beyond this
PRESS_WAIT_S = 2.0  # a button pressed on a message not yet linked waits this long for it

Apply = Callable[[ReplyRecord], Awaitable[None]]


@dataclass(slots=True)
class _Parked:
    until: float  # monotonic instant after which it is dropped
    apply: Apply


def _key(ref: MessageRef) -> tuple[str, str, str]:
    return (str(ref.chat.platform), ref.chat.chat_id, ref.message_id)


class RatingDesk:
    """Stores reactions and button presses as ratings of the bot's punchlines."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        emoji_map: ratings.EmojiMap,
        on_rated: Callable[[str, str], None] = lambda platform, chat_id: None,
    ):
        """`on_rated(platform, chat_id)` hears of every rating stored (the /stats cache)."""
        self.storage = storage
        self.clock = clock
        self.emoji_map = emoji_map
        self.on_rated = on_rated
        # One rating at a time: a reaction update reads a person's emoji set and writes the new
        # one, and Discord dispatches add/remove events concurrently; presses keep their order.
        self._lock = asyncio.Lock()
        self._parked: dict[tuple[str, str, str], list[_Parked]] = {}
        self._links: dict[tuple[str, str, str], asyncio.Event] = {}
        self._expected: dict[tuple[str, str], list[float]] = {}  # chat -> deadlines of links due
        # The newest press per (message, person, source): an older press still on its way to the
        # database must not overwrite a newer one (handlers run concurrently).
        self._presses = 0
        self._newest: dict[tuple[tuple[str, str, str], str, str], int] = {}

    # -- reactions ------------------------------------------------------------------------------

    async def set_reactions(self, ref: MessageRef, user: UserRef, emojis: Sequence[str]) -> bool:
        """A user's whole reaction set on a message (Telegram's new_reaction); [] removes.

        False: the message is not one of the bot's punchlines, not yet at least (the update is
        parked until it is), or the user is a bot.
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

        async def apply(reply: ReplyRecord) -> None:
            await self._store_emojis(reply, user, action, payload, update)

        return await self._apply_or_park(ref, apply)

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
            reply.id, user, REACTION_SOURCE, emojis=new, rating=None,
            funniness=verdict.funniness, appropriateness=verdict.appropriateness,
            action=action, event_payload=list(payload), at=self.clock.now(),
        )  # fmt: skip
        self.on_rated(str(reply.platform), reply.chat_id)

    async def set_reaction_counts(self, ref: MessageRef, counts: Mapping[str, int]) -> bool:
        """Anonymous reaction counts of a message (Telegram channels); they replace earlier ones."""
        merged: dict[str, int] = {}
        for emoji, n in counts.items():
            key = ratings.emoji_key(emoji)
            if key:
                merged[key] = merged.get(key, 0) + max(0, int(n))
        rows = []
        for emoji, n in sorted(merged.items()):
            v = self.emoji_map.verdict(emoji)
            rows.append((emoji, n, v.funniness, v.appropriateness))

        async def apply(reply: ReplyRecord) -> None:
            await self.storage.ratings.replace_counts(reply.id, rows, self.clock.now())
            self.on_rated(str(reply.platform), reply.chat_id)

        return await self._apply_or_park(ref, apply)

    async def _apply_or_park(self, ref: MessageRef, apply: Apply) -> bool:
        """Apply a rating to the punchline `ref` carries, or park it until `ref` is linked."""
        try:
            async with self._lock:
                reply = await self.storage.requests.find_reply(ref)
                if reply is not None:
                    await apply(reply)
                    return True
                if self._link_due(ref):
                    self._park(ref, apply)
                return False
        except Exception:
            log.exception("could not store a rating on %s/%s", ref.chat.chat_id, ref.message_id)
            return False

    def _park(self, ref: MessageRef, apply: Apply) -> None:
        now = self.clock.monotonic()
        if len(self._parked) >= MAX_PARKED:
            self._parked = {k: [p for p in v if p.until > now] for k, v in self._parked.items()}
            self._parked = {k: v for k, v in self._parked.items() if v}
            while len(self._parked) >= MAX_PARKED:
                del self._parked[next(iter(self._parked))]
        self._parked.setdefault(_key(ref), []).append(_Parked(now + PARK_S, apply))

    def expect(self, platform: str, chat_id: str) -> None:
        """A punchline for this chat is on its way; its message will be `linked` soon."""
        self._expected.setdefault((platform, chat_id), []).append(self.clock.monotonic() + PARK_S)

    def _link_due(self, ref: MessageRef) -> bool:
        chat = (str(ref.chat.platform), ref.chat.chat_id)
        now = self.clock.monotonic()
        due = [t for t in self._expected.get(chat, ()) if t > now]
        if due:
            self._expected[chat] = due
        else:
            self._expected.pop(chat, None)
        return bool(due)

    async def linked(self, ref: MessageRef) -> None:
        """The punchline's message id was just stored: apply what waited for it."""
        due = self._expected.get((str(ref.chat.platform), ref.chat.chat_id))
        if due:
            due.pop(0)
        key = _key(ref)
        event = self._links.pop(key, None)
        if event is not None:
            event.set()
        parked = self._parked.pop(key, [])
        now = self.clock.monotonic()
        waiting = [p for p in parked if p.until > now]
        if not waiting:
            return
        try:
            async with self._lock:
                reply = await self.storage.requests.find_reply(ref)
                if reply is None:
                    return
                for item in waiting:  # in the order they came
                    await item.apply(reply)
        except Exception:
            log.exception(
                "could not store the ratings that waited for %s/%s", ref.chat.chat_id, ref.message_id
            )

    # -- buttons --------------------------------------------------------------------------------

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
        if user.is_bot:
            return MSG_STALE
        self._presses += 1
        press, who = self._presses, (_key(ref), f"{user.platform}:{user.user_id}", source)
        self._newest[who] = press
        try:
            reply = await self.reply_for_press(ref)
            if reply is None:
                return MSG_STALE
            verdict = ratings.Verdict() if rating is None else ratings.verdict_for_rating(rating)
            async with self._lock:
                if self._newest.get(who) != press:
                    return rated_text(rating)  # a newer press by the same person decides
                await self.storage.ratings.put_reaction(
                    reply.id, user, source, emojis=(), rating=None if rating is None else rating.value,
                    funniness=verdict.funniness, appropriateness=verdict.appropriateness,
                    action="clear" if rating is None else "rate",
                    event_payload=[] if rating is None else [rating.value], at=self.clock.now(),
                )  # fmt: skip
            self.on_rated(str(reply.platform), reply.chat_id)
        except Exception:
            log.exception("could not store a rating on %s/%s", ref.chat.chat_id, ref.message_id)
            return MSG_RATE_FAILED
        finally:
            if self._newest.get(who) == press:
                del self._newest[who]
        return rated_text(rating)

    async def reply_for_press(self, ref: MessageRef) -> ReplyRecord | None:
        """The punchline a pressed message carries, waiting a moment if it is not linked yet
        (a button pressed the instant its message arrived). None: not a punchline of ours."""
        reply = await self.storage.requests.find_reply(ref)
        if reply is not None or not self._link_due(ref):
            return reply
        event = self._links.setdefault(_key(ref), asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), PRESS_WAIT_S)
        self._links.pop(_key(ref), None)
        return await self.storage.requests.find_reply(ref)
