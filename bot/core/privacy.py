"""`PrivacyDesk`: /privacy, /forget, /optout and /optin, and the retention purge
(docs/DESIGN.md, decision 10). Front-ends show what it returns; the storage does the work
(`bot.storage.privacy`).

Nothing here raises to a front-end: a fault is logged and answered with a short apology.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.clock import Clock
from bot.core import texts
from bot.storage import Storage
from bot.storage.privacy import TRAINING_IN, TRAINING_OUT
from bot.types import UserRef
from config.settings import PrivacySettings

log = logging.getLogger(__name__)


def in_training(choice: str | None, settings: PrivacySettings) -> bool:
    """Whether a person's words and ratings may train the next adapter: their own choice, else
    the setting's default. The one rule, for the export and /privacy alike."""
    if choice is not None:
        return choice == TRAINING_IN
    return settings.training_default == "opt-out"


class PrivacyDesk:
    def __init__(self, settings: PrivacySettings, storage: Storage, clock: Clock):
        self.settings = settings
        self.storage = storage
        self.clock = clock

    async def privacy_text(self, user: UserRef | None) -> str:
        """What is kept, for how long, what for, and this person's training status."""
        status = texts.MSG_TRAINING_IN
        try:
            if user is not None and not in_training(
                await self.storage.privacy.training_choice(user), self.settings
            ):
                status = texts.MSG_TRAINING_OUT
        except Exception:
            log.exception("could not read a training choice")
        return texts.privacy_text(self.settings.retention_days, status)

    async def forget(self, user: UserRef) -> str:
        """Erase everything held about `user` (their confirmation came first); what went."""
        try:
            removed = await self.storage.privacy.forget(user.platform, user.user_id)
        except Exception:
            log.exception("forgetting a person failed")
            return texts.MSG_PRIVACY_FAILED
        log.info("forgot a person on %s (%s)", user.platform, ", ".join(removed) or "nothing held")
        return texts.forgotten_text(removed)

    async def set_training(self, user: UserRef, opted_in: bool) -> str:
        """/optin (True) or /optout (False)."""
        if user.is_bot or user.anonymous:
            return texts.MSG_OPT_NOBODY
        try:
            await self.storage.privacy.set_training(
                user, TRAINING_IN if opted_in else TRAINING_OUT, self.clock.now()
            )
        except Exception:
            log.exception("recording a training choice failed")
            return texts.MSG_PRIVACY_FAILED
        return texts.MSG_OPTED_IN if opted_in else texts.MSG_OPTED_OUT

    async def purge(self) -> dict[str, int]:
        """Blank setups and names older than the retention period (nothing when it is 0).
        Raises `StorageError` when the database cannot be written."""
        if not self.settings.retention_days:
            return {}
        cutoff = self.clock.now() - timedelta(days=self.settings.retention_days)
        return await self.storage.privacy.purge(cutoff)
