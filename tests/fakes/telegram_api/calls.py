"""What the fake records of each request, and the errors tests ask it to answer with."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.telegram_api.objects import JSON


@dataclass(slots=True)
class ApiCall:
    """One request the bot made. `status` is the HTTP status the fake answered with."""

    method: str
    params: JSON
    status: int = 200
    result: Any = None
    at: float = field(default_factory=time.monotonic)

    @property
    def failed(self) -> bool:
        return self.status != 200

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    @property
    def reply_to_message_id(self) -> int | None:
        """The message this sendMessage replies to (``reply_parameters`` or the old parameter)."""
        parameters = self.params.get("reply_parameters")
        if isinstance(parameters, Mapping) and "message_id" in parameters:
            return int(parameters["message_id"])
        value = self.params.get("reply_to_message_id")
        return int(value) if value is not None else None

    def replies_to(self, message: Mapping[str, Any]) -> bool:
        """True for a successful send in `message`'s chat that replies to it."""
        return (
            not self.failed
            and self.chat_id == message["chat"]["id"]
            and self.reply_to_message_id == message["message_id"]
        )

    @property
    def callback_data(self) -> list[str]:
        """The callback_data of every inline button this call attached."""
        markup = self.params.get("reply_markup") or {}
        rows = markup.get("inline_keyboard", []) if isinstance(markup, Mapping) else []
        return [button["callback_data"] for row in rows for button in row if "callback_data" in button]


@dataclass(slots=True)
class InjectedError:
    status: int
    retry_after: int | None
    description: str
    times: int
    chat_id: int | None = None  # only calls for this chat; None: any
