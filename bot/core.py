"""The platform-free bot: what a setup, a reaction, a rating button or /stats do.

Front-ends (Telegram, Discord, console) turn platform events into `bot.types` events and call
`BotCore`; the core validates, limits, stores and asks the `Generator` (only through
`model.types`). No method raises to a front-end: faults become a friendly `OutgoingReply` (or
False), and are logged.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bot import ratings
from bot.battles.stats import battle_stats_text
from bot.clock import Clock
from bot.limits import Admission, RateLimiter
from bot.stats import render_stats
from bot.storage import Storage
from bot.types import (
    ChatKind,
    ChatRef,
    IncomingSetup,
    MessageRef,
    OutgoingReply,
    Platform,
    Rating,
    ReplyKind,
    UserRef,
)
from config.errors import PunchlineError
from config.settings import Settings
from model.types import (
    DeadlineExceeded,
    Generator,
    GenerationError,
    InvalidSetup,
    Reloadable,
    WorkerBusy,
    WorkerClosed,
)

log = logging.getLogger(__name__)

RATING_PAYLOAD_PREFIX = "rate"
REACTION_SOURCE = "reaction"  # Telegram reaction lists and Discord add/remove fold into this
BUTTON_SOURCE = "button"

EXAMPLE_SETUP = "Why do Yoda's jokes always suck?"

# Friendly lines. Front-ends show them as they are.
MSG_EMPTY = f"Send me a joke setup and I'll find the punchline — e.g. “{EXAMPLE_SETUP}”"
MSG_TOO_LONG = "That's a bit long for a setup — try one under {limit} characters."
MSG_NO_WORDS = "I need some words to work with — try a question like “{example}”"
MSG_IN_FLIGHT = "Still thinking about your last one…"
MSG_SLOW_DOWN = "Easy there — give me {seconds} s before the next one."
MSG_BUSY = "I'm a bit busy right now — try again in a moment."
MSG_ERROR = "Something went wrong on my side — please try again later."
MSG_NOTHING = "I couldn't come up with anything funny for that one — try another setup?"

RATING_LABELS: dict[Rating, str] = {
    Rating.FUNNY: "funny 🤣",
    Rating.MEH: "meh 😐",
    Rating.INAPPROPRIATE: "inappropriate 🚩 — thanks for flagging it",
}
MSG_STALE = "That joke can't be rated any more."
MSG_CLEARED = "Rating cleared."
MSG_RATE_FAILED = "Couldn't save that rating — please try again."

# /reload: an admin swaps the adapter while the bot runs.
MSG_RELOAD_REFUSED = "Sorry — only the bot's admins can reload the model."
MSG_RELOAD_NO_ADAPTER = (
    "No adapter directory to load: give one (/reload <adapter_dir>) or configure one with "
    "PUNCHLINE_MODEL__ADAPTER."
)
MSG_RELOAD_UNSUPPORTED = (
    "This bot's model can't load a new adapter while it runs; restart it with "
    "PUNCHLINE_MODEL__ADAPTER set to the new adapter directory."
)
MSG_RELOAD_FAILED = "Could not load {path}: {reason}; still serving {old}."
MSG_RELOADED = "Now serving {new} (was {old})."
MSG_RELOADED_SAME = "Reloaded {new} from {path} (same version as before)."
MSG_RELOAD_UNEXPECTED = "an unexpected error (details are in the bot's log)"
HELP_ADMIN = "Admins: /reload [adapter_dir] loads a new adapter without a restart."


def parse_rating_payload(data: str | None) -> tuple[int, Rating] | None:
    """Parse a rating button's payload `rate:<reply_id>:<funny|meh|inappropriate>`.

    Anything else (forged, stale format, junk) is None.
    """
    if not data or len(data) > 64:
        return None
    parts = data.split(":")
    if len(parts) != 3 or parts[0] != RATING_PAYLOAD_PREFIX:
        return None
    if not parts[1].isascii() or not parts[1].isdigit():
        return None
    try:
        rating = Rating(parts[2])
    except ValueError:
        return None
    reply_id = int(parts[1])
    return (reply_id, rating) if reply_id > 0 else None


def rating_payload(reply_id: int, rating: Rating) -> str:
    """The payload of a rating button (at most 64 bytes, Telegram's callback_data limit)."""
    return f"{RATING_PAYLOAD_PREFIX}:{reply_id}:{rating.value}"


def clean_setup(text: str) -> str:
    """Trim a setup: NFC, control characters become spaces, whitespace collapsed."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return " ".join(text.split())


def has_words(text: str) -> bool:
    """True when the text has a letter or digit in any script (emoji-only has none)."""
    return any(unicodedata.category(ch)[0] in ("L", "N") for ch in text)


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def _id_in(value: str, allowed: Sequence[int]) -> bool:
    try:
        return int(value) in allowed
    except ValueError:
        return False


class BotCore:
    """The bot's behaviour, shared by every front-end."""

    def __init__(self, settings: Settings, storage: Storage, generator: Generator, clock: Clock):
        self.settings = settings
        self.storage = storage
        self.generator = generator
        self.clock = clock
        self.emoji_map = ratings.EmojiMap.from_settings(settings.ratings)
        self.limiter = RateLimiter(settings.limits, clock)
        # Reaction updates read the user's current emoji set and write the new one; Discord
        # dispatches add/remove events concurrently, so they are serialised to lose none.
        self._reaction_lock = asyncio.Lock()
        # The stricter of the two limits: the worker would refuse longer setups anyway.
        self.max_setup_chars = min(settings.limits.max_message_chars, settings.model.max_setup_chars)

    # -- access ---------------------------------------------------------------------------------

    def is_admin(self, user: UserRef) -> bool:
        """Admins may use the commands that change the bot. The console user is the owner."""
        if user.platform is Platform.CONSOLE:
            return True
        if user.platform is Platform.TELEGRAM:
            return _id_in(user.user_id, self.settings.telegram.admin_ids)
        if user.platform is Platform.DISCORD:
            return _id_in(user.user_id, self.settings.discord.admin_ids)
        return False

    def is_allowed(self, chat: ChatRef, user: UserRef) -> bool:
        """The optional allow-lists (empty lists allow everyone; admins are always allowed).

        A private chat passes the chat list when the user passes an explicit user list, so
        allowed users can talk to the bot directly.
        """
        if user.platform is Platform.CONSOLE or self.is_admin(user):
            return True
        if user.platform is Platform.TELEGRAM:
            chats, users = self.settings.telegram.allowed_chats, self.settings.telegram.allowed_users
        elif user.platform is Platform.DISCORD:
            chats, users = self.settings.discord.allowed_channels, self.settings.discord.allowed_users
        else:
            return False
        user_ok = not users or _id_in(user.user_id, users)
        chat_ok = (
            not chats
            or _id_in(chat.chat_id, chats)
            or (chat.kind is ChatKind.PRIVATE and bool(users) and user_ok)
        )
        return user_ok and chat_ok

    # -- setups ---------------------------------------------------------------------------------

    async def handle_setup(self, msg: IncomingSetup) -> OutgoingReply | None:
        """Answer a possible setup; None means ignored on purpose. Never raises."""
        if msg.user.is_bot:
            return None
        if msg.chat.kind is not ChatKind.PRIVATE and not msg.addressed:
            # Group manners (DESIGN decision 5): never unaddressed chatter. Channels behave like
            # groups: an admin's `/joke` post is answered, and its reactions arrive as counts.
            return None
        if not self.is_allowed(msg.chat, msg.user):
            log.info("ignored a setup from %s in %s (not allowed)", msg.user.user_id, msg.chat.chat_id)
            return None
        try:
            return await self._answer(msg)
        except Exception:
            log.exception("failed to answer a setup in %s/%s", msg.chat.platform, msg.chat.chat_id)
            return OutgoingReply(ReplyKind.ERROR, MSG_ERROR)

    async def _answer(self, msg: IncomingSetup) -> OutgoingReply:
        text = clean_setup(msg.text)
        request_id = await self.storage.add_request(
            msg.chat, msg.user, text, msg.message_id, self.clock.now()
        )
        refusal = self._refusal(text)
        if refusal is not None:
            await self.storage.finish_request(request_id, "refused", self.clock.now(), refusal)
            return OutgoingReply(ReplyKind.REFUSAL, refusal)

        key = (msg.user.platform, msg.user.user_id)
        decision = self.limiter.acquire(key)
        if not decision.ok:
            line = (
                MSG_IN_FLIGHT
                if decision.admission is Admission.IN_FLIGHT
                else MSG_SLOW_DOWN.format(seconds=max(1, round(decision.retry_after)))
            )
            await self.storage.finish_request(request_id, "rate_limited", self.clock.now(), decision.admission)
            return OutgoingReply(ReplyKind.RATE_LIMITED, line)
        try:
            return await self._generate(msg, text, request_id)
        finally:
            self.limiter.release(key)

    def _refusal(self, text: str) -> str | None:
        if not text:
            return MSG_EMPTY
        if len(text) > self.max_setup_chars:
            return MSG_TOO_LONG.format(limit=self.max_setup_chars)
        if not has_words(text):
            return MSG_NO_WORDS.format(example=EXAMPLE_SETUP)
        return None

    async def _generate(self, msg: IncomingSetup, text: str, request_id: int) -> OutgoingReply:
        deadline = self.clock.monotonic() + self.settings.worker.timeout_s
        try:
            found = await self.generator.punchlines(text, n=1, deadline=deadline)
        except (WorkerBusy, DeadlineExceeded, WorkerClosed) as exc:
            await self.storage.finish_request(request_id, "busy", self.clock.now(), type(exc).__name__)
            return OutgoingReply(ReplyKind.BUSY, MSG_BUSY)
        except InvalidSetup as exc:
            await self.storage.finish_request(request_id, "refused", self.clock.now(), str(exc))
            return OutgoingReply(ReplyKind.REFUSAL, MSG_EMPTY)
        except GenerationError as exc:
            log.warning("generation failed for request %d: %s", request_id, exc)
            await self.storage.finish_request(request_id, "error", self.clock.now(), str(exc))
            return OutgoingReply(ReplyKind.ERROR, MSG_ERROR)
        except Exception as exc:
            log.exception("the generator raised for request %d", request_id)
            await self.storage.finish_request(
                request_id, "error", self.clock.now(), f"{type(exc).__name__}: {exc}"
            )
            return OutgoingReply(ReplyKind.ERROR, MSG_ERROR)
        best = next((p for p in found if p.text.strip()), None)
        if best is None:
            await self.storage.finish_request(request_id, "error", self.clock.now(), "no punchline")
            return OutgoingReply(ReplyKind.ERROR, MSG_NOTHING)
        reply_id = await self.storage.add_reply(
            request_id, msg.chat, best.text.strip(), best.version, best.score, self.clock.now()
        )
        return OutgoingReply(ReplyKind.PUNCHLINE, best.text.strip(), reply_id=reply_id, version=best.version)

    async def reply_sent(self, reply_id: int, ref: MessageRef) -> None:
        """Link a punchline to the platform message that carries it. Never raises."""
        try:
            if not await self.storage.set_reply_message(reply_id, ref, self.clock.now()):
                log.warning("reply_sent for unknown reply %d in %s", reply_id, ref.chat.chat_id)
        except Exception:
            log.exception("could not link reply %d to message %s", reply_id, ref.message_id)

    # -- reactions ------------------------------------------------------------------------------

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
        return await self._react(
            ref, user, "remove", [emoji], lambda old: tuple(e for e in old if e != key)
        )

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
            async with self._reaction_lock:
                return await self._react_locked(ref, user, action, payload, update)
        except Exception:
            log.exception("could not store a reaction on %s/%s", ref.chat.chat_id, ref.message_id)
            return False

    async def _react_locked(
        self,
        ref: MessageRef,
        user: UserRef,
        action: str,
        payload: Sequence[str],
        update: Callable[[tuple[str, ...]], tuple[str, ...]],
    ) -> bool:
        reply = await self.storage.find_reply(ref)
        if reply is None:
            return False
        current = await self.storage.get_reaction(reply.id, user, REACTION_SOURCE)
        new = update(current.emojis if current else ())
        verdict = self.emoji_map.fold(new)
        await self.storage.put_reaction(
            reply.id, user, REACTION_SOURCE, emojis=new, rating=None,
            funniness=verdict.funniness, appropriateness=verdict.appropriateness,
            action=action, event_payload=list(payload), at=self.clock.now(),
        )
        return True

    async def set_reaction_counts(self, ref: MessageRef, counts: Mapping[str, int]) -> bool:
        """Anonymous reaction counts of a message (Telegram channels); they replace earlier ones."""
        try:
            reply = await self.storage.find_reply(ref)
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
            await self.storage.replace_reaction_counts(reply.id, rows, self.clock.now())
            return True
        except Exception:
            log.exception("could not store reaction counts on %s/%s", ref.chat.chat_id, ref.message_id)
            return False

    async def rate(
        self, reply_id: int, user: UserRef, rating: Rating | None, source: str = BUTTON_SOURCE
    ) -> str:
        """A rating button press (or a battle vote with source="battle"); None clears it.

        Returns the short text to show the user. Never raises.
        """
        if source == REACTION_SOURCE:
            # Reactions keep an emoji set under this source; a rating there would clobber it.
            log.error("rate() called with source=%r; reactions go through set_reactions()", source)
            return MSG_RATE_FAILED
        try:
            reply = await self.storage.get_reply(reply_id)
            if reply is None or user.is_bot:
                return MSG_STALE
            if rating is None:
                verdict = ratings.Verdict()
            else:
                verdict = ratings.verdict_for_rating(rating)
            await self.storage.put_reaction(
                reply_id, user, source, emojis=(), rating=None if rating is None else rating.value,
                funniness=verdict.funniness, appropriateness=verdict.appropriateness,
                action="clear" if rating is None else "rate",
                event_payload=[] if rating is None else [rating.value], at=self.clock.now(),
            )
        except Exception:
            log.exception("could not store a rating of reply %d", reply_id)
            return MSG_RATE_FAILED
        return MSG_CLEARED if rating is None else f"Noted: {RATING_LABELS[rating]}"

    # -- admin: hot-swapping the adapter ------------------------------------------------------

    async def reload_adapter(self, user: UserRef, adapter_dir: str | None) -> str:
        """An admin's ``/reload [adapter_dir]``: serve another adapter without a restart.

        Without a directory the configured adapter (``PUNCHLINE_MODEL__ADAPTER``) is loaded
        again, which is where ``punchline train --output DIR --force`` leaves a refreshed one.
        The generator loads it beside the serving model and swaps between batches; on failure
        the old version keeps serving. Returns the text to show. Never raises.
        """
        who = f"{user.platform.value}:{user.user_id}" + (f" ({user.name})" if user.name else "")
        if not self.is_admin(user):
            log.info("refused /reload from %s: not an admin", who)
            return MSG_RELOAD_REFUSED
        generator = self.generator
        if not isinstance(generator, Reloadable):
            log.warning("%s asked for /reload, but the generator cannot reload", who)
            return MSG_RELOAD_UNSUPPORTED
        given = (adapter_dir or "").strip()
        path = Path(given).expanduser() if given else self.settings.model.adapter
        if path is None:
            return MSG_RELOAD_NO_ADAPTER
        old = self._serving_version()
        log.info("%s reloads the adapter from %s (serving %s)", who, path, old)
        try:
            new = await generator.reload(path)
        except PunchlineError as exc:
            # AdapterError (missing, corrupt, other base model), WorkerClosed, ...: the worker
            # kept its old version, so the admin learns why and what is still live.
            reason = _first_line(str(exc)) or type(exc).__name__
            still = self._serving_version()
            log.info("reload of %s by %s failed: %s; still serving %s", path, who, reason, still)
            return MSG_RELOAD_FAILED.format(path=path, reason=reason, old=still)
        except Exception:
            log.exception("reload of %s by %s failed", path, who)
            return MSG_RELOAD_FAILED.format(
                path=path, reason=MSG_RELOAD_UNEXPECTED, old=self._serving_version()
            )
        log.info("%s reloaded the adapter: now serving %s from %s (was %s)", who, new, path, old)
        if new == old:
            return MSG_RELOADED_SAME.format(new=new, path=path)
        return MSG_RELOADED.format(new=new, old=old)

    def _serving_version(self) -> str:
        """The version serving now (the generator's first), "unknown" if it cannot say."""
        try:
            versions = self.generator.versions
        except Exception:
            log.warning("the generator gave no versions", exc_info=True)
            return "unknown"
        return versions[0] if versions else "unknown"

    # -- chat flags -----------------------------------------------------------------------------

    async def first_time(self, chat: ChatRef, flag: str) -> bool:
        """True once per chat and flag (e.g. "reaction_hint_sent": say it once). Never raises."""
        try:
            return await self.storage.claim_chat_flag(chat, flag, self.clock.now())
        except Exception:
            log.exception("could not read chat flag %s", flag)
            return False

    # -- texts ----------------------------------------------------------------------------------

    async def stats_text(self, chat: ChatRef) -> str:
        """The /stats answer for this chat. Never raises."""
        try:
            tallies = await self.storage.tallies(chat=chat)
            counts = await self.storage.request_counts(chat)
        except Exception:
            log.exception("could not read stats")
            return "Stats are unavailable right now — please try again later."
        worker = None
        try:
            worker = self.generator.stats()
        except Exception:
            log.warning("the generator gave no stats", exc_info=True)
        title = "Stats for this chat" if chat.kind is not ChatKind.PRIVATE else "Your stats"
        text = render_stats(title, tallies, counts, worker)
        battles = await battle_stats_text(self.storage, chat)  # tally and Elo table; never raises
        return f"{text}\n\n{battles}" if battles else text

    def help_text(self, platform: Platform, kind: ChatKind, *, admin: bool = False) -> str:
        """How to use the bot here: asking, rating, stats (front-ends may add platform tips).

        `admin` adds the admin-only commands (front-ends pass `is_admin(user)`).
        """
        funny = self.emoji_map.example("funny")
        not_funny = self.emoji_map.example("not_funny")
        bad = self.emoji_map.example("inappropriate")
        if platform is Platform.CONSOLE:
            ask = "Type a joke setup and press Enter."
        elif kind is ChatKind.PRIVATE:
            ask = "Send me a joke setup — every message here is one."
        elif platform is Platform.TELEGRAM:
            ask = "In groups: /joke <setup>, mention me, or reply to one of my messages."
        else:
            ask = "In servers: /joke setup:<text>, mention me, or reply to one of my messages."
        lines = [
            "🎤 I answer joke setups with punchlines.",
            ask,
            f"For example: {EXAMPLE_SETUP}",
            (
                "Rate each punchline when asked: f funny, m meh, i inappropriate."
                if platform is Platform.CONSOLE
                else f"Rate a punchline with the buttons under it or react: {funny} funny, "
                f"{not_funny} not funny, {bad} inappropriate."
            ),
            "/stats shows how my jokes are doing.",
        ]
        if platform is Platform.TELEGRAM and kind is ChatKind.GROUP:
            lines.append("To let me see reactions in a group, make me an admin (no rights needed).")
        if admin:
            lines.append(HELP_ADMIN)
        return "\n".join(lines)
