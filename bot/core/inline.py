"""Inline answers (`@bot <setup>` typed in any chat, Telegram's inline mode), platform-free.

An inline query asks for a few punchlines to pick from; nothing is stored until the person
picks one (`chosen`), which then becomes a reply of that version like any other, rateable by
the buttons under the inline message. Inline load has its own limits: a person's token bucket
(`PUNCHLINE_INLINE__BURST`, `__PER_MINUTE`) and a share of the worker (`__CONCURRENCY`
requests at once), so people typing inline never take every slot from the chats' replies.
Every inline answer is screened as in a family chat (`FamilyScreen`): the bot cannot know
where a result will be sent. The debounce (answer only after a pause in typing) is the
front-end's: it sees the keystrokes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.clock import Clock
from bot.core.access import Access
from bot.core.family import FamilyScreen
from bot.core.limits import Admission, RateLimiter
from bot.core.suggestions import SetupSuggestions
from bot.core.texts import MSG_FAMILY_SETUP
from bot.storage import Storage
from bot.types import ChatKind, ChatRef, MessageRef, UserRef
from config.settings import InlineSettings, LimitSettings
from model.text import clean_text, same_text_key
from model.types import GenerationError, Generator, Punchline

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InlineAnswer:
    """What to show under the typed text: punchlines to pick, or setups to try, or one line
    saying why there is nothing (`note`)."""

    setup: str = ""
    punchlines: list[Punchline] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    note: str = ""


MSG_INLINE_SLOW_DOWN = "Slow down a little — try again in a moment."
MSG_INLINE_BUSY = "I'm busy right now — try again in a moment."
MSG_INLINE_NOTHING = "Nothing funny came to mind — try another setup."
MSG_INLINE_NOT_ALLOWED = "I'm not enabled for you, sorry."


class InlineDesk:
    """Inline queries and chosen inline results."""

    def __init__(
        self,
        settings: InlineSettings,
        storage: Storage,
        generator: Generator,
        clock: Clock,
        suggestions: SetupSuggestions,
        refusal: Callable[[str], str | None],
        on_reply: Callable[[ChatRef], None],
        screen: FamilyScreen,
        access: Access,
    ):
        """`refusal` is the core's rule for setups (the same refusals as in chats); `on_reply`
        tells the core a reply was stored in a chat (its /stats count afresh); `screen` is
        family mode's, applied to every inline answer: a result can be sent to any chat, a
        school's group included, and the bot cannot know which; `access` applies the
        allow-lists as to the person's private chat with the bot."""
        self.settings = settings
        self.storage = storage
        self.generator = generator
        self.clock = clock
        self.suggestions = suggestions
        self.refusal = refusal
        self.on_reply = on_reply
        self.screen = screen
        self.access = access
        # A bucket without the one-in-flight rule (the chat kind): a person types on while an
        # earlier query is answered, and the latest must not be refused for it.
        self.limiter = RateLimiter(
            LimitSettings(chat_burst=settings.burst, chat_per_minute=settings.per_minute),
            clock,
            per_chat=True,
        )
        self._share = asyncio.Semaphore(settings.concurrency)

    async def answer(self, user: UserRef, text: str) -> InlineAnswer:
        """Punchlines for an inline query, best first and all different. An empty query gets
        setups to try. Never raises: faults become a `note`."""
        setup = clean_text(text)
        if not self._allowed(user):
            return InlineAnswer(setup, note=MSG_INLINE_NOT_ALLOWED)
        try:
            if not setup:
                return InlineAnswer(suggestions=await self._clean_suggestions())
            refusal = self.refusal(setup)
            if refusal is None and self.screen.offensive(setup):
                refusal = MSG_FAMILY_SETUP
            if refusal is not None:
                return InlineAnswer(setup, note=refusal)
            return await self._punchlines(user, setup)
        except Exception:
            log.exception("an inline answer failed")
            return InlineAnswer(setup, note=MSG_INLINE_BUSY)

    def _allowed(self, user: UserRef) -> bool:
        """The allow-lists, as for the person's private chat (inline has no chat of its own)."""
        return not user.is_bot and self.access.is_allowed(
            ChatRef(user.platform, user.user_id, ChatKind.PRIVATE), user
        )

    async def _clean_suggestions(self) -> list[str]:
        """Setups to try, family-screened like the answers (the pool is r/Jokes)."""
        wanted = self.settings.results
        offered = await self.suggestions.few(wanted * 3)
        return [s for s in offered if not self.screen.offensive(s)][:wanted]

    async def _punchlines(self, user: UserRef, setup: str) -> InlineAnswer:
        key = f"inline:{user.platform}:{user.user_id}"
        decision = await self.limiter.acquire(key)
        if decision.admission is not Admission.OK:
            return InlineAnswer(setup, note=MSG_INLINE_SLOW_DOWN)
        try:
            deadline = self.clock.monotonic() + self.settings.timeout_s
            # Wait for a share of the worker no longer than the answer would still be shown.
            async with asyncio.timeout(self.settings.timeout_s):
                async with self._share:
                    found = await self.screen.punchlines(
                        self.generator, setup, self.settings.results, deadline
                    )
        except (TimeoutError, GenerationError) as exc:
            log.info("inline answer for %s lapsed: %s", user.user_id, type(exc).__name__)
            return InlineAnswer(setup, note=MSG_INLINE_BUSY)
        finally:
            await self.limiter.release(key)
        distinct: dict[str, Punchline] = {}
        for p in found:
            text = p.text.strip()
            if text and same_text_key(text) not in distinct:
                distinct[same_text_key(text)] = Punchline(text, p.version, p.score)
        if not distinct:
            return InlineAnswer(setup, note=MSG_INLINE_NOTHING)
        return InlineAnswer(setup, list(distinct.values()))

    async def chosen(self, ref: MessageRef, user: UserRef, setup: str, punchline: Punchline) -> int | None:
        """Someone picked `punchline` for `setup` and Telegram posted it as the message `ref`:
        store it as a reply of its version, linked, so the buttons under it rate it. The
        reply's id; None (logged) when it cannot be stored. Never raises."""
        if not self._allowed(user):
            return None
        requests = self.storage.requests
        request_id: int | None = None
        try:
            now = self.clock.now()
            request_id = await requests.add(ref.chat, user, setup, None, now)
            reply_id = await requests.add_reply(
                request_id, ref.chat, punchline.text, punchline.version, punchline.score, now
            )
            await requests.set_reply_message(reply_id, ref, now)
        except Exception as exc:
            log.exception("could not store a chosen inline result")
            if request_id is not None:  # no request stays "received"
                with contextlib.suppress(Exception):
                    await requests.finish(request_id, "error", self.clock.now(), type(exc).__name__)
            return None
        self.on_reply(ref.chat)
        return reply_id
