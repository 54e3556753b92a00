"""`Consent`: who may be in a training export, and the salted codes that stand for people and
chats there (docs/DESIGN.md, decision 10).

A person is in when their own choice says so (/optin, /optout), else the setting's default
(`bot.core.privacy.in_training`, the one rule). A forgotten author (an anonymous entry) or an
unknown one is never in. People and chats appear only as salted hashes, stable across exports
from one database (the salt is `PUNCHLINE_PRIVACY__SALT`, else a random one kept in the
database), so training can cap any one rater's weight without learning who they are.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from bot.core.privacy import in_training
from bot.storage import Storage
from bot.storage.personal import FORGOTTEN_PREFIX
from config.settings import PrivacySettings

HASH_CHARS = 16


@dataclass(frozen=True, slots=True)
class Consent:
    settings: PrivacySettings
    choices: dict[tuple[str, str], str]  # (platform, user id) -> 'in' / 'out'
    salt: bytes

    @classmethod
    async def load(cls, storage: Storage, settings: PrivacySettings) -> Consent:
        secret = (
            settings.salt.get_secret_value() if settings.salt is not None else await storage.privacy.salt()
        )
        return cls(settings, await storage.privacy.choices(), secret.encode())

    def allows(self, platform: str, user_id: str | None) -> bool:
        """Whether this person's words and ratings may go into a training export."""
        if not user_id or user_id.startswith(FORGOTTEN_PREFIX):
            return False
        return in_training(self.choices.get((str(platform), user_id)), self.settings)

    def person(self, platform: str, user_id: str | None) -> str:
        """The person's stable code in exports ("" for nobody)."""
        return self._code("person", str(platform), user_id) if user_id else ""

    def chat(self, platform: str, chat_id: str) -> str:
        return self._code("chat", str(platform), chat_id)

    def _code(self, kind: str, platform: str, ident: str) -> str:
        digest = hmac.new(self.salt, f"{kind}:{platform}:{ident}".encode(), hashlib.sha256)
        return digest.hexdigest()[:HASH_CHARS]
