"""Family mode per chat: whether a chat is one, and `/family on|off` (docs/DESIGN.md,
decision 11). What family mode does to setups, punchlines and battle entries is in
`BotCore` and the battles; which text is offensive is `model.safety`.
"""

from __future__ import annotations

import logging

from bot.clock import Clock
from bot.core import texts
from bot.core.access import Access
from bot.storage import Storage
from bot.types import ChatKind, ChatRef, UserRef
from config.settings import SafetySettings
from model.safety import ContentFilter
from model.types import Generator, Punchline

log = logging.getLogger(__name__)

FAMILY_KEY = "family"  # the per-chat setting (JSON true/false); unset: the default


def family_by_default(settings: SafetySettings, kind: ChatKind) -> bool:
    if settings.family_default == "groups":
        return kind is not ChatKind.PRIVATE
    return settings.family_default == "on"


class FamilyDesk:
    def __init__(self, settings: SafetySettings, storage: Storage, access: Access, clock: Clock):
        self.settings = settings
        self.storage = storage
        self.access = access
        self.clock = clock

    async def is_family(self, chat: ChatRef) -> bool:
        """Whether family mode is on in `chat` (on when the setting cannot be read: the safe side)."""
        try:
            value = await self.storage.people.get_chat_setting(chat, FAMILY_KEY)
        except Exception:
            log.exception("could not read the family setting of %s", chat.chat_id)
            return True
        return family_by_default(self.settings, chat.kind) if value is None else bool(value)

    async def command(self, chat: ChatRef, user: UserRef, argument: str, *, chat_admin: bool) -> str:
        """`/family [on|off]`: say the mode, or change it. Changing is for the chat's admins
        (`chat_admin`, the platform's verdict) and the bot's admins; in a private chat, for its
        person."""
        wanted = argument.strip().lower()
        current = await self.is_family(chat)
        if wanted not in ("on", "off"):
            return texts.family_status(current) if not wanted else texts.MSG_FAMILY_USAGE
        allowed = chat_admin or self.access.is_admin(user) or chat.kind is ChatKind.PRIVATE
        if not allowed:
            return texts.MSG_FAMILY_REFUSED
        try:
            await self.storage.people.set_chat_setting(chat, FAMILY_KEY, wanted == "on", self.clock.now())
        except Exception:
            log.exception("could not change the family setting of %s", chat.chat_id)
            return texts.MSG_PRIVACY_FAILED
        return texts.MSG_FAMILY_ON if wanted == "on" else texts.MSG_FAMILY_OFF


class FamilyScreen:
    """What family mode does to texts (one implementation, for chats, inline and battles):
    offensive setups and entries are refused, every candidate punchline is checked and the
    flagged ones dropped, decoding bans the worst words (`safe=True`), and when nothing clean
    survives the model is asked again, `PUNCHLINE_SAFETY__RETRIES` times."""

    def __init__(self, settings: SafetySettings, content_filter: ContentFilter):
        self.settings = settings
        self.filter = content_filter

    def offensive(self, text: str) -> bool:
        """Whether the filter flags `text` (the terms go to DEBUG only: they quote people)."""
        flag = self.filter.check(text)
        if flag.flagged:
            log.debug("family filter flagged %r (%s)", text, ", ".join(flag.terms))
        return flag.flagged

    async def punchlines(
        self,
        generator: Generator,
        setup: str,
        n: int,
        deadline: float | None,
        version: str | None = None,
    ) -> list[Punchline]:
        """Clean punchlines for `setup`, best first; [] when every try was flagged. Raises what
        `Generator.punchlines` raises."""
        for attempt in range(1 + self.settings.retries):
            # More candidates on each try: the ones already seen were flagged.
            found = await generator.punchlines(
                setup, n=n * (attempt + 1), deadline=deadline, version=version, safe=True
            )
            clean = [p for p in found if p.text.strip() and not self.offensive(p.text)]
            if clean:
                return clean
            log.info("family mode: all %d candidates flagged (try %d)", len(found), attempt + 1)
        return []


class FamilyGuard:
    """Family mode's check of a text in a chat: flagged only where the chat is a family one
    (the battles' setups, entries and the classic)."""

    def __init__(self, desk: FamilyDesk, screen: FamilyScreen):
        self.desk = desk
        self.screen = screen

    async def blocks(self, chat: ChatRef, text: str) -> bool:
        """Whether `text` must not be shown in `chat` (family mode on there and flagged)."""
        return await self.desk.is_family(chat) and self.screen.offensive(text)
