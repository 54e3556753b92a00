"""`BotCore`: the platform-free bot, shared by every front-end (Telegram, Discord, console).

    core = BotCore(settings, storage, generator, clock, stats_sections=[battles.stats_text])
    reply = await core.handle_setup(IncomingSetup(chat, user, text, addressed=True))
    await core.reply_sent(reply.reply_id, MessageRef(chat, platform_message_id))
    await core.ratings.set_reactions(ref, user, ["🤣"])      # bot.core.rating_desk
    await core.admin.reload_adapter(user, "adapters/v2")     # bot.core.admin
    answer = await core.inline.answer(user, "Why …?")        # bot.core.inline
    core.access.is_allowed(chat, user)                       # bot.core.access

Front-ends turn platform events into `bot.types` events and call the core; the core validates,
limits, stores and asks the `Generator` (only through `model.types`). No method raises to a
front-end: faults become a friendly `OutgoingReply` (or False), and are logged.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from bot.clock import Clock
from bot.core import ratings, texts
from bot.core.access import Access
from bot.core.admin import AdminCommands
from bot.core.family import FamilyDesk, FamilyScreen
from bot.core.flood import FloodGuard
from bot.core.inline import InlineDesk
from bot.core.language import LanguageCheck
from bot.core.limits import Limiter, RateLimiter
from bot.core.privacy import PrivacyDesk
from bot.core.rating_desk import RatingDesk
from bot.core.stats import StatsSection, stats_text
from bot.core.suggestions import SetupSuggestions
from bot.storage import Storage
from bot.types import (
    ChatKind,
    ChatRef,
    IncomingSetup,
    MessageRef,
    OutgoingReply,
    Platform,
    ReplyKind,
    UserRef,
)
from config.settings import Settings
from model.safety import ContentFilter, build_filter
from model.text import clean_text, same_text_key
from model.types import (
    DeadlineExceeded,
    GenerationError,
    Generator,
    InvalidSetup,
    WorkerBusy,
    WorkerClosed,
    WorkerUnavailable,
)

log = logging.getLogger(__name__)

STATS_CACHE_S = 10.0  # /stats of one chat is counted at most this often
# Candidates "another one" asks for: enough that one is new after a few presses, few enough to
# cost about one batch.
ANOTHER_CANDIDATES = 4
FAMILY_CANDIDATES = 3  # a family chat's first try; flagged ones are dropped before ranking
FAMILY_PICKS = 10  # setups `/joke` alone tries in a family chat before one the filter passes


@dataclass(frozen=True, slots=True)
class Ask:
    """How to answer one setup: punchlines not to give (their `same_text_key` keys), and
    whether the reply shows the setup (the bot picked it)."""

    exclude: frozenset[str] = frozenset()
    show_setup: bool = False


def has_words(text: str) -> bool:
    """True when the text has a letter or digit in any script (emoji-only has none)."""
    return any(unicodedata.category(ch)[0] in ("L", "N") for ch in text)


class BotCore:
    """The bot's behaviour, shared by every front-end."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        generator: Generator,
        clock: Clock,
        *,
        access: Access | None = None,
        limiters: tuple[Limiter, Limiter] | None = None,
        stats_sections: Sequence[StatsSection] = (),
        suggestions: SetupSuggestions | None = None,
        content_filter: ContentFilter | None = None,
        language: LanguageCheck | None = None,
    ):
        """`stats_sections` add lines to /stats (battles add theirs), so the core needs to know
        nothing of them; `access` is shared with the battles (built from settings if omitted);
        `limiters` (per person, per chat) are this process's unless several processes share
        them (the broker's); `suggestions` are the setups `/joke` alone picks from (the
        built-in list if omitted); `content_filter` is family mode's (the configured one if
        omitted: `model.safety.build_filter`, which raises `FilterError` for a bad list);
        `language` says which setups are clearly not English (its model loads on first use
        unless `language.load()` ran at start-up)."""
        self.settings = settings
        self.storage = storage
        self.generator = generator
        self.clock = clock
        self.access = access or Access(settings)
        self.emoji_map = ratings.EmojiMap.from_settings(settings.ratings)
        self.ratings = RatingDesk(storage, clock, self.emoji_map, on_rated=self._stats_changed)
        self.admin = AdminCommands(settings.model, self.access, generator, storage, clock)
        self.privacy = PrivacyDesk(settings.privacy, storage, clock)
        self.family = FamilyDesk(settings.safety, storage, self.access, clock)
        self.screen = FamilyScreen(settings.safety, content_filter or build_filter(settings.safety))
        self.suggestions = suggestions or SetupSuggestions()
        self.language = language or LanguageCheck(settings.language)
        self.inline = InlineDesk(
            settings.inline,
            storage,
            generator,
            clock,
            self.suggestions,
            self.refusal,
            self._inline_reply,
            self.screen,
            self.access,
        )
        person, chat = limiters or (
            RateLimiter(settings.limits, clock),
            RateLimiter(settings.limits, clock, per_chat=True),
        )
        self.flood = FloodGuard(person, chat, clock)
        self.stats_sections = list(stats_sections)
        self._stats_cache: dict[str, tuple[float, str]] = {}  # "platform:chat" -> (until, text)
        # The stricter of the two limits: the worker would refuse longer setups anyway.
        self.max_setup_chars = min(settings.limits.max_message_chars, settings.model.max_setup_chars)

    # -- setups ---------------------------------------------------------------------------------

    async def handle_setup(self, msg: IncomingSetup) -> OutgoingReply | None:
        """Answer a possible setup; None means ignored on purpose (not for the bot, not allowed,
        or a flood already answered once). Never raises."""
        if msg.user.is_bot:
            return None
        if msg.chat.kind is not ChatKind.PRIVATE and not msg.addressed:
            # Group manners (docs/DESIGN.md, decision 5): never unaddressed chatter. Channels
            # behave like groups: an admin's `/joke` post is answered, its reactions are counts.
            return None
        return await self._ask(msg, Ask())

    async def joke_on_request(
        self, chat: ChatRef, user: UserRef, message_id: str | None = None
    ) -> OutgoingReply | None:
        """`/joke` without a setup ("tell me a joke"): a setup from the pool, answered; the
        reply shows the setup too. Same limits as any setup. Never raises."""
        if user.is_bot:
            return None
        try:
            setup = await self._pick_setup(chat)
        except Exception:
            log.exception("could not pick a setup")
            return OutgoingReply(ReplyKind.ERROR, texts.MSG_ERROR)
        return await self._ask(IncomingSetup(chat, user, setup, True, message_id), Ask(show_setup=True))

    async def _pick_setup(self, chat: ChatRef) -> str:
        """A setup for `chat`; in a family chat one the filter passes (the pool is r/Jokes)."""
        key = f"{chat.platform}:{chat.chat_id}"
        setup = await self.suggestions.pick(key)
        if await self.family.is_family(chat):
            for _ in range(FAMILY_PICKS):
                if not self.screen.offensive(setup):
                    break
                setup = await self.suggestions.pick(key)
        return setup

    async def another(self, ref: MessageRef, user: UserRef) -> OutgoingReply | None:
        """🔁 under a punchline: a different punchline to the same setup, none the bot already
        gave to it in this chat; the earlier reply keeps its ratings. Same limits as any setup.
        Never raises."""
        if user.is_bot:
            return None
        try:
            # A press right after the reply was sent may beat its link: wait for it a moment.
            reply = await self.ratings.reply_for_press(ref)
            asked = await self.storage.requests.setup_of(reply.id) if reply else None
            if asked is None:
                return OutgoingReply(ReplyKind.REFUSAL, texts.MSG_SETUP_GONE)
            setup, author = asked
            given = await self.storage.requests.given_for(ref.chat, setup)
        except Exception:
            log.exception("could not read the reply under an 'another one' press")
            return OutgoingReply(ReplyKind.ERROR, texts.MSG_ERROR)
        msg = IncomingSetup(ref.chat, user, setup, True, author=author)
        return await self._ask(msg, Ask(exclude=frozenset(same_text_key(t) for t in given)))

    async def _ask(self, msg: IncomingSetup, ask: Ask) -> OutgoingReply | None:
        if not self.access.is_allowed(msg.chat, msg.user):
            log.info("ignored a setup from %s in %s (not allowed)", msg.user.user_id, msg.chat.chat_id)
            return None
        try:
            return await self._answer(msg, ask)
        except Exception:
            log.exception("failed to answer a setup in %s/%s", msg.chat.platform, msg.chat.chat_id)
            return OutgoingReply(ReplyKind.ERROR, texts.MSG_ERROR)

    async def _answer(self, msg: IncomingSetup, ask: Ask) -> OutgoingReply | None:
        text = clean_text(msg.text)
        requests = self.storage.requests
        family = await self.family.is_family(msg.chat)
        refusal = self.refusal(text)
        if refusal is None and family and self.screen.offensive(text):
            refusal = texts.MSG_FAMILY_SETUP
        if refusal is not None:
            request_id = await requests.add(msg.chat, msg.words_of, text, msg.message_id, self.clock.now())
            await requests.finish(request_id, "refused", self.clock.now(), refusal)
            return OutgoingReply(ReplyKind.REFUSAL, refusal)
        # Prefixed: a private chat's id is its person's id, and a shared limiter keeps both
        # buckets in one key space.
        person = f"person:{msg.user.platform}:{msg.user.user_id}"
        verdict = await self.flood.admit(person, f"chat:{msg.chat.platform}:{msg.chat.chat_id}")
        if not verdict.ok:
            # Not stored: it never went to the model. Said once per flood, then quiet (None).
            return None if verdict.say is None else OutgoingReply(ReplyKind.RATE_LIMITED, verdict.say)
        try:
            request_id = await requests.add(msg.chat, msg.words_of, text, msg.message_id, self.clock.now())
            try:
                return await self._generate(msg, text, request_id, ask, family)
            except BaseException as exc:
                # No request stays "received": whatever happened, it ends with a status.
                await requests.finish(request_id, "error", self.clock.now(), type(exc).__name__)
                raise
        finally:
            await self.flood.release(person)

    def refusal(self, text: str) -> str | None:
        """Why a (cleaned) setup cannot be answered, or None: the one rule, inline too."""
        if not text:
            return texts.MSG_EMPTY
        if len(text) > self.max_setup_chars:
            return texts.MSG_TOO_LONG.format(limit=self.max_setup_chars)
        if not has_words(text):
            return texts.MSG_NO_WORDS.format(example=texts.EXAMPLE_SETUP)
        if self.language.check(text).refused:
            return texts.MSG_NOT_ENGLISH
        return None

    async def _generate(
        self, msg: IncomingSetup, text: str, request_id: int, ask: Ask, family: bool
    ) -> OutgoingReply:
        requests = self.storage.requests
        deadline = self.clock.monotonic() + self.settings.worker.timeout_s
        # "Another one" asks for several and takes the best one not given yet; a family chat
        # asks for a few, so that one is likely to survive the filter.
        n = ANOTHER_CANDIDATES if ask.exclude else (FAMILY_CANDIDATES if family else 1)
        try:
            if family:
                found = await self.screen.punchlines(self.generator, text, n, deadline)
                if not found:
                    await requests.finish(
                        request_id, "refused", self.clock.now(), "family: every candidate flagged"
                    )
                    return OutgoingReply(ReplyKind.REFUSAL, texts.MSG_FAMILY_CLEAN)
            else:
                found = await self.generator.punchlines(text, n=n, deadline=deadline)
        except (WorkerBusy, WorkerUnavailable, DeadlineExceeded, WorkerClosed) as exc:
            await requests.finish(request_id, "busy", self.clock.now(), type(exc).__name__)
            return OutgoingReply(ReplyKind.BUSY, texts.MSG_BUSY)
        except InvalidSetup as exc:
            await requests.finish(request_id, "refused", self.clock.now(), str(exc))
            return OutgoingReply(ReplyKind.REFUSAL, texts.MSG_EMPTY)
        except GenerationError as exc:
            log.warning("generation failed for request %d: %s", request_id, exc)
            await requests.finish(request_id, "error", self.clock.now(), str(exc))
            return OutgoingReply(ReplyKind.ERROR, texts.MSG_ERROR)
        except Exception as exc:
            log.exception("the generator raised for request %d", request_id)
            await requests.finish(request_id, "error", self.clock.now(), f"{type(exc).__name__}: {exc}")
            return OutgoingReply(ReplyKind.ERROR, texts.MSG_ERROR)
        usable = [p for p in found if p.text.strip()]
        best = next((p for p in usable if same_text_key(p.text) not in ask.exclude), None)
        if best is None:
            if usable:  # only repeats: say so rather than give the same line twice
                await requests.finish(request_id, "refused", self.clock.now(), "no new punchline")
                return OutgoingReply(ReplyKind.REFUSAL, texts.MSG_NO_MORE)
            await requests.finish(request_id, "error", self.clock.now(), "no punchline")
            return OutgoingReply(ReplyKind.ERROR, texts.MSG_NOTHING)
        punchline = best.text.strip()
        reply_id = await requests.add_reply(
            request_id, msg.chat, punchline, best.version, best.score, self.clock.now()
        )
        self._stats_changed(msg.chat.platform, msg.chat.chat_id)
        self.ratings.expect(str(msg.chat.platform), msg.chat.chat_id)
        shown = (
            texts.SETUP_AND_PUNCHLINE.format(setup=text, punchline=punchline) if ask.show_setup else punchline
        )
        return OutgoingReply(ReplyKind.PUNCHLINE, shown, reply_id=reply_id, version=best.version)

    async def reply_sent(self, reply_id: int, ref: MessageRef) -> None:
        """Link a punchline to the platform message that carries it. Never raises."""
        try:
            if not await self.storage.requests.set_reply_message(reply_id, ref, self.clock.now()):
                log.warning("reply_sent for unknown reply %d in %s", reply_id, ref.chat.chat_id)
                return
        except Exception:
            log.exception("could not link reply %d to message %s", reply_id, ref.message_id)
            return
        await self.ratings.linked(ref)  # reactions that came before the link now count

    # -- chat flags and texts -------------------------------------------------------------------

    async def first_time(self, chat: ChatRef, flag: str) -> bool:
        """True once per chat and flag (e.g. "reaction_hint_sent": say it once). Never raises."""
        try:
            return await self.storage.people.claim_chat_flag(chat, flag, self.clock.now())
        except Exception:
            log.exception("could not read chat flag %s", flag)
            return False

    async def stats_text(self, chat: ChatRef) -> str:
        """The /stats answer for this chat, counted afresh at most every `STATS_CACHE_S` (a
        count reads every reply of the chat; /stats spam must not cost that each time). Never
        raises."""
        now = self.clock.monotonic()
        key = f"{chat.platform}:{chat.chat_id}"
        cached = self._stats_cache.get(key)
        if cached is not None and cached[0] > now:
            return await self._with_family(chat, cached[1])
        text = await stats_text(self.storage, self.generator, chat, self.stats_sections)
        if len(self._stats_cache) > 1000:
            self._stats_cache = {c: v for c, v in self._stats_cache.items() if v[0] > now}
        self._stats_cache[key] = (now + STATS_CACHE_S, text)
        return await self._with_family(chat, text)

    async def _with_family(self, chat: ChatRef, text: str) -> str:
        """/stats ends with the chat's mode, read afresh (not cached: /family changes it)."""
        if chat.platform is Platform.CONSOLE:
            return text
        on = await self.family.is_family(chat)
        return f"{text}\n{texts.MSG_FAMILY_ON if on else texts.MSG_FAMILY_OFF}"

    def _inline_reply(self, chat: ChatRef) -> None:
        # Linked at once (Telegram names the inline message when it is chosen): nothing to expect.
        self._stats_changed(chat.platform, chat.chat_id)

    def _stats_changed(self, platform: str, chat_id: str) -> None:
        """A new punchline or rating in a chat: its next /stats counts afresh."""
        self._stats_cache.pop(f"{platform}:{chat_id}", None)

    async def help_for(self, chat: ChatRef, user: UserRef) -> str:
        """How to use the bot in `chat`, for `user` (admins hear their commands too), with the
        chat's family mode (`bot.core.texts.help_text`). Never raises."""
        family = await self.family.is_family(chat)
        return texts.help_text(
            self.emoji_map, chat.platform, chat.kind, admin=self.access.is_admin(user), family=family
        )
