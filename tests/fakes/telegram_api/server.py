"""A fake Telegram Bot API server on loopback, for driving the real python-telegram-bot stack.

The bot under test is built with ``base_url=api.base_url`` and talks HTTP to this server exactly
as it would to api.telegram.org: ``POST /bot<token>/<method>`` with form or JSON parameters,
answers ``{"ok": true, "result": ...}``. Tests push updates (which the bot fetches by long
polling ``getUpdates``) and then wait for the calls the bot makes in answer.

Usage::

    async with FakeBotAPI() as api:
        settings = load_settings(telegram={"token": api.token, "base_url": api.base_url, ...})
        ...start the bot...
        alice = api.user(1001, "Alice")
        sent = api.push_message(api.private_chat(alice), alice, "Why did the chicken cross?")
        call = await api.wait_for("sendMessage", lambda c: c.replies_to(sent))
        assert call.params["text"]

What it implements (the subset a chat bot uses, with realistic result objects):
getMe, getUpdates (long polling, ``offset``/``timeout``/``limit``/``allowed_updates``, and the
real server's habit of remembering ``allowed_updates``: reactions and chat_member updates are not
delivered unless asked for), deleteWebhook, getWebhookInfo, sendMessage, editMessageText,
editMessageReplyMarkup, deleteMessage, sendChatAction, setMessageReaction, answerCallbackQuery,
setMyCommands, getMyCommands, deleteMyCommands, getChat, getChatMember, getChatAdministrators,
close, logOut. Any other method answers 404 ``{"ok": false}`` like Telegram does.

Keyboards as on Telegram: a returned Message carries ``reply_markup`` only as an inline keyboard
with buttons (python-telegram-bot parses ``reply_markup["inline_keyboard"]`` unconditionally);
``editMessageText`` without ``reply_markup`` takes the keyboard off; markup that is not a JSON
object answers 400.

Faults: ``inject_error("sendMessage", status=429, retry_after=1)`` answers the next call(s) of a
method with a flood-limit error (or any 4xx/5xx), so retry logic runs for real.

Every call is recorded as an `ApiCall` (including the ones answered with an injected error) in
``calls``; ``sent_messages`` holds the messages the bot sent (as Telegram returned them).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from tests.fakes.telegram_api.calls import ApiCall, InjectedError
from tests.fakes.telegram_api.methods import BotApiMethods
from tests.fakes.telegram_api.objects import JSON, STRING_PARAMS, BadRequest
from tests.fakes.telegram_api.scripting import Scripting


class FakeBotAPI(Scripting, BotApiMethods):
    """A Bot API server on 127.0.0.1 with a random port. Use ``async with`` or start()/close()."""

    def __init__(
        self,
        token: str = "123456:TEST-token",
        *,
        username: str = "punchline_test_bot",
        first_name: str = "Punchline",
        can_read_all_group_messages: bool = False,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_user: JSON = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": first_name,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": can_read_all_group_messages,
            "supports_inline_queries": False,
        }
        self.calls: list[ApiCall] = []
        self.sent_messages: list[JSON] = []
        self.messages: dict[tuple[int, int], JSON] = {}  # (chat id, message id) -> message
        self.chats: dict[int, JSON] = {}
        self.commands: list[JSON] = []
        self.allowed_updates: list[str] | None = None  # as the bot last set it
        self._member_status: dict[tuple[int, int], str] = {}
        self._errors: dict[str, list[InjectedError]] = {}
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self.last_update_id = 0  # the newest update pushed
        self._message_ids = itertools.count(100)
        self._callback_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._closing = False
        self.open_polls = 0  # getUpdates requests waiting right now
        self.max_open_polls = 0  # the most ever open at once: one token allows one consumer
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ----------------------------------------------------------------------------- lifecycle
    async def start(self) -> FakeBotAPI:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        """Wake every long poll and stop the server."""
        self._closing = True
        await self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """For ``PUNCHLINE_TELEGRAM__BASE_URL`` (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ------------------------------------------------------------------------- internals
    def _notify_soon(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the next poll sees the update anyway
        task = loop.create_task(self._notify())
        self._tasks.add(task)  # keep a reference until it ran
        task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _new_message(
        self,
        chat: Mapping[str, Any],
        user: Mapping[str, Any] | None,
        text: str,
        *,
        reply_to: Mapping[str, Any] | None = None,
        message_thread_id: int | None = None,
    ) -> JSON:
        self.chats.setdefault(chat["id"], dict(chat))
        message: JSON = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": dict(chat),
            "text": text,
        }
        if user is not None:
            message["from"] = dict(user)
        if reply_to is not None:
            message["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "reply_to_message"}
        if message_thread_id is not None:
            message["message_thread_id"] = message_thread_id
            message["is_topic_message"] = True
        self.messages[(chat["id"], message["message_id"])] = message
        return message

    def _chat(self, chat_id: Any) -> JSON:
        chat_id = int(chat_id)
        if chat_id in self.chats:
            return self.chats[chat_id]
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "User"}
        return {"id": chat_id, "type": "supergroup", "title": f"Chat {chat_id}"}

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await read_params(request)
        if request.match_info["token"] != self.token:
            self.calls.append(ApiCall(method, params, status=401))
            return _error(401, "Unauthorized")
        injected = self._take_error(method, params)
        if injected is not None:
            self.calls.append(ApiCall(method, params, status=injected.status))
            await self._notify()
            extra = {"retry_after": injected.retry_after} if injected.retry_after else None
            return _error(injected.status, injected.description, extra)
        handler = getattr(self, f"_api_{method.lower()}", None)
        if handler is None:
            self.calls.append(ApiCall(method, params, status=404))
            await self._notify()
            return _error(404, "Not Found: method not found")
        try:
            result = await handler(params)
        except BadRequest as exc:
            self.calls.append(ApiCall(method, params, status=400))
            await self._notify()
            return _error(400, f"Bad Request: {exc}")
        if method != "getUpdates":  # getUpdates records itself before it waits
            # A snapshot, as Telegram returned it: later edits of the stored message must not
            # change what a test sees in an earlier call's result.
            self.calls.append(ApiCall(method, params, result=json.loads(json.dumps(result))))
            await self._notify()
        return web.json_response({"ok": True, "result": result})

    def _take_error(self, method: str, params: JSON) -> InjectedError | None:
        queue = self._errors.get(method) or []
        chat_id = params.get("chat_id")
        for injected in queue:
            if injected.chat_id is None or str(injected.chat_id) == str(chat_id):
                injected.times -= 1
                if injected.times <= 0:
                    queue.remove(injected)
                return injected
        return None


def _error(status: int, description: str, parameters: JSON | None = None) -> web.Response:
    body: JSON = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


async def read_params(request: web.Request) -> JSON:
    """Parameters as Telegram reads them: JSON body, query string, or form fields."""
    params: JSON = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json() if request.can_read_body else {}
        params.update(body or {})
        return params
    if request.can_read_body:
        form = await request.post()
        for name, value in form.items():
            params[name] = value if isinstance(value, str) else str(value)
    return {
        name: decode_param(name, value) if isinstance(value, str) else value for name, value in params.items()
    }


def decode_param(name: str, value: str) -> Any:
    # PTB sends strings as they are and everything else JSON-encoded.
    if name in STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
