"""A fake Telegram Bot API server on loopback (`server.FakeBotAPI`), split by concern: the
objects it builds (`objects`), what it records (`calls`), what tests do with it (`scripting`)
and the Bot API methods it answers (`methods`)."""

from tests.fakes.telegram_api.calls import ApiCall
from tests.fakes.telegram_api.objects import text_entities, utf16_len
from tests.fakes.telegram_api.scripting import WAIT_TIMEOUT_S
from tests.fakes.telegram_api.server import FakeBotAPI

__all__ = ["WAIT_TIMEOUT_S", "ApiCall", "FakeBotAPI", "text_entities", "utf16_len"]
