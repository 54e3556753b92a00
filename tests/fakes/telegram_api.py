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
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

JSON = dict[str, Any]

# How long wait_for / wait_fetched wait by default. Generous on purpose: a loaded CI machine can
# be slow, and a wait ends as soon as its call arrives, so only a failing test ever waits this long.
WAIT_TIMEOUT_S = 30.0

# Update types Telegram sends only when a bot lists them in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# Parameters that are always strings on the wire; everything else PTB sends JSON-encoded.
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "callback_query_id",
        "parse_mode",
        "action",
        "url",
        "name",
        "title",
        "description",
        "short_description",
        "language_code",
        "inline_message_id",
        "business_connection_id",
        "secret_token",
    }
)
_MENTION_RE = re.compile(r"@[A-Za-z0-9_]{3,32}")
_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?")
_ADMIN_RIGHTS = (
    "can_be_edited",
    "is_anonymous",
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_pin_messages",
)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def text_entities(text: str) -> list[JSON]:
    """The entities Telegram would attach: a leading ``/command`` and every ``@mention``."""
    entities: list[JSON] = []
    command = _COMMAND_RE.match(text)
    if command:
        entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(command.group())})
    for mention in _MENTION_RE.finditer(text):
        if command and mention.start() < command.end():
            continue  # the /command@bot suffix belongs to the command entity
        entities.append(
            {
                "type": "mention",
                "offset": utf16_len(text[: mention.start()]),
                "length": utf16_len(mention.group()),
            }
        )
    return entities


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
class _InjectedError:
    status: int
    retry_after: int | None
    description: str
    times: int


class FakeBotAPI:
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
        self._errors: dict[str, list[_InjectedError]] = {}
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self._callback_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._closing = False
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

    # -------------------------------------------------------------------- chats and members
    def user(
        self, user_id: int, first_name: str = "User", *, is_bot: bool = False, username: str | None = None
    ) -> JSON:
        """A Telegram User object."""
        user: JSON = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        if username:
            user["username"] = username
        return user

    def private_chat(self, user: Mapping[str, Any]) -> JSON:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        self.chats[chat["id"]] = chat
        return chat

    def group_chat(
        self, chat_id: int = -1001000000001, title: str = "Test group", *, supergroup: bool = True
    ) -> JSON:
        chat = {"id": chat_id, "type": "supergroup" if supergroup else "group", "title": title}
        self.chats[chat_id] = chat
        return chat

    def channel_chat(self, chat_id: int = -1002000000001, title: str = "Test channel") -> JSON:
        chat = {"id": chat_id, "type": "channel", "title": title}
        self.chats[chat_id] = chat
        return chat

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        """getChatMember's answer: creator, administrator, member, restricted, left or kicked."""
        self._member_status[(chat_id, user_id)] = status

    def set_bot_admin(self, chat_id: int, admin: bool = True) -> None:
        self.set_member_status(chat_id, self.bot_id, "administrator" if admin else "member")

    def member_status(self, chat_id: int, user_id: int) -> str:
        return self._member_status.get((chat_id, user_id), "member")

    # ------------------------------------------------------------------- pushing updates
    def push_update(self, **payload: Any) -> int:
        """Queue a raw update, e.g. ``push_update(message={...})``; returns its update_id."""
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, **payload})
        self._notify_soon()
        return update_id

    def push_message(
        self,
        chat: Mapping[str, Any],
        user: Mapping[str, Any] | None,
        text: str,
        *,
        reply_to: Mapping[str, Any] | None = None,
        entities: Sequence[Mapping[str, Any]] | None = None,
        sender_chat: Mapping[str, Any] | None = None,
        edited: bool = False,
        message_thread_id: int | None = None,
    ) -> JSON:
        """Queue a text message from `user` in `chat`; returns the Message JSON.

        Entities for a leading ``/command`` and ``@mentions`` are added as Telegram would
        (UTF-16 offsets) unless given. `reply_to` is a message (e.g. one from
        ``sent_messages``). ``edited=True`` sends it as an ``edited_message`` update.
        """
        message = self._new_message(chat, user, text, reply_to=reply_to, message_thread_id=message_thread_id)
        found = list(entities) if entities is not None else text_entities(text)
        if found:
            message["entities"] = [dict(e) for e in found]
        if sender_chat is not None:
            message["sender_chat"] = dict(sender_chat)
        if edited:
            message["edit_date"] = message["date"] + 1
            self.push_update(edited_message=message)
        else:
            self.push_update(message=message)
        return message

    def push_command(
        self,
        chat: Mapping[str, Any],
        user: Mapping[str, Any],
        command: str,
        argument: str = "",
        *,
        addressed: bool = False,
    ) -> JSON:
        """``/command argument``; ``addressed=True`` writes ``/command@botname``."""
        name = f"/{command}@{self.bot_user['username']}" if addressed else f"/{command}"
        return self.push_message(chat, user, f"{name} {argument}".rstrip())

    def push_reaction(
        self,
        message: Mapping[str, Any],
        user: Mapping[str, Any] | None,
        *,
        old: Iterable[str | Mapping[str, Any]] = (),
        new: Iterable[str | Mapping[str, Any]] = (),
        actor_chat: Mapping[str, Any] | None = None,
    ) -> int:
        """A ``message_reaction`` update: `user` changed their reactions on `message`.

        Items of `old`/`new` are emoji strings or raw ReactionType objects (custom emoji, paid).
        """
        payload: JSON = {
            "chat": dict(message["chat"]),
            "message_id": message["message_id"],
            "date": int(time.time()),
            "old_reaction": [_reaction_type(r) for r in old],
            "new_reaction": [_reaction_type(r) for r in new],
        }
        if user is not None:
            payload["user"] = dict(user)
        if actor_chat is not None:
            payload["actor_chat"] = dict(actor_chat)
        return self.push_update(message_reaction=payload)

    def push_reaction_count(self, message: Mapping[str, Any], counts: Mapping[str, int]) -> int:
        """A ``message_reaction_count`` update (anonymous reactions, e.g. in channels)."""
        payload = {
            "chat": dict(message["chat"]),
            "message_id": message["message_id"],
            "date": int(time.time()),
            "reactions": [
                {"type": _reaction_type(emoji), "total_count": total} for emoji, total in counts.items()
            ],
        }
        return self.push_update(message_reaction_count=payload)

    def push_callback(self, message: Mapping[str, Any], user: Mapping[str, Any], data: str) -> str:
        """A button press on `message` (one the bot sent); returns the callback query id."""
        query_id = f"cq{next(self._callback_ids)}"
        self.push_update(
            callback_query={
                "id": query_id,
                "from": dict(user),
                "message": dict(message),
                "chat_instance": f"ci{message['chat']['id']}",
                "data": data,
            }
        )
        return query_id

    def push_my_chat_member(
        self, chat: Mapping[str, Any], by: Mapping[str, Any], *, old: str = "left", new: str = "member"
    ) -> int:
        """The bot's own membership changed (added to a group, promoted, demoted)."""
        self.set_member_status(chat["id"], self.bot_id, new)
        payload = {
            "chat": dict(chat),
            "from": dict(by),
            "date": int(time.time()),
            "old_chat_member": self._chat_member(chat["id"], self.bot_user, old),
            "new_chat_member": self._chat_member(chat["id"], self.bot_user, new),
        }
        return self.push_update(my_chat_member=payload)

    def sent_in(self, chat: Mapping[str, Any]) -> list[JSON]:
        """The messages the bot sent to `chat`, oldest first."""
        return [m for m in self.sent_messages if m["chat"]["id"] == chat["id"]]

    def calls_of(self, method: str, predicate: Callable[[ApiCall], bool] | None = None) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method and (predicate is None or predicate(c))]

    # ------------------------------------------------------------------------ waiting
    async def wait_for(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = WAIT_TIMEOUT_S,
    ) -> ApiCall:
        """The first recorded call of `method` matching `predicate`, waiting for it if needed.

        Past calls count too, so pass a predicate that identifies the call you expect (e.g.
        ``lambda c: c.replies_to(message)``). Raises TimeoutError naming what was seen instead.
        """

        def found() -> ApiCall | None:
            for call in self.calls:
                if call.method == method and (predicate is None or predicate(call)):
                    return call
            return None

        call = found()
        if call is not None:
            return call
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(found), timeout)
            except TimeoutError:
                seen = [(c.method, c.status, c.params) for c in self.calls if c.method == method]
                raise TimeoutError(f"no matching {method} call within {timeout}s; saw {seen}") from None
        call = found()
        assert call is not None
        return call

    async def wait_fetched(self, update_id: int, timeout: float = WAIT_TIMEOUT_S) -> None:
        """Wait until the bot confirmed `update_id` (a later getUpdates offset passed it)."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self._fetched_past(update_id)), timeout)
            except TimeoutError:
                raise TimeoutError(f"update {update_id} not confirmed within {timeout}s") from None

    # ---------------------------------------------------------------------- fault injection
    def inject_error(
        self,
        method: str,
        status: int = 429,
        *,
        retry_after: int | None = 1,
        times: int = 1,
        description: str | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` with an error instead of the result.

        429 carries ``parameters.retry_after`` (PTB raises RetryAfter); 5xx and other codes carry
        only a description (PTB raises NetworkError / BadRequest ...).
        """
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}" if status == 429 else _reason(status)
            )
        self._errors.setdefault(method, []).append(
            _InjectedError(status, retry_after if status == 429 else None, description, times)
        )

    # ------------------------------------------------------------------------- internals
    def _fetched_past(self, update_id: int) -> bool:
        return any(
            c.method == "getUpdates" and int(c.params.get("offset") or 0) > update_id for c in self.calls
        )

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

    def _chat_member(self, chat_id: int, user: Mapping[str, Any], status: str) -> JSON:
        member: JSON = {"status": status, "user": dict(user)}
        if status in ("administrator", "creator"):
            member["is_anonymous"] = False
        if status == "administrator":
            member.update({right: right != "is_anonymous" for right in _ADMIN_RIGHTS})
            member["can_be_edited"] = False
        if status == "restricted":
            member.update(
                is_member=True,
                until_date=0,
                can_change_info=False,
                can_invite_users=False,
                can_pin_messages=False,
                can_send_messages=True,
                can_send_polls=False,
                can_send_other_messages=False,
                can_add_web_page_previews=False,
                can_manage_topics=False,
                can_send_audios=False,
                can_send_documents=False,
                can_send_photos=False,
                can_send_videos=False,
                can_send_video_notes=False,
                can_send_voice_notes=False,
                can_edit_tag=False,
                can_react_to_messages=True,
            )
        if status == "kicked":
            member["until_date"] = 0
        return member

    def _chat(self, chat_id: Any) -> JSON:
        chat_id = int(chat_id)
        if chat_id in self.chats:
            return self.chats[chat_id]
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "User"}
        return {"id": chat_id, "type": "supergroup", "title": f"Chat {chat_id}"}

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read_params(request)
        if request.match_info["token"] != self.token:
            self.calls.append(ApiCall(method, params, status=401))
            return _error(401, "Unauthorized")
        injected = self._take_error(method)
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
        except _BadRequest as exc:
            self.calls.append(ApiCall(method, params, status=400))
            await self._notify()
            return _error(400, f"Bad Request: {exc}")
        if method != "getUpdates":  # getUpdates records itself before it waits
            # A snapshot, as Telegram returned it: later edits of the stored message must not
            # change what a test sees in an earlier call's result.
            self.calls.append(ApiCall(method, params, result=json.loads(json.dumps(result))))
            await self._notify()
        return web.json_response({"ok": True, "result": result})

    def _take_error(self, method: str) -> _InjectedError | None:
        queue = self._errors.get(method)
        if not queue:
            return None
        injected = queue[0]
        injected.times -= 1
        if injected.times <= 0:
            queue.pop(0)
        return injected

    # ------------------------------------------------------------------------ the methods
    async def _api_getme(self, params: JSON) -> JSON:
        return dict(self.bot_user)

    async def _api_logout(self, params: JSON) -> bool:
        return True

    async def _api_close(self, params: JSON) -> bool:
        return True

    async def _api_deletewebhook(self, params: JSON) -> bool:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _api_getwebhookinfo(self, params: JSON) -> JSON:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)}

    async def _api_getupdates(self, params: JSON) -> list[JSON]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        if "allowed_updates" in params and params["allowed_updates"] is not None:
            self.allowed_updates = list(params["allowed_updates"])
        # Confirming: updates below offset are gone for good, as on the real server.
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        self.calls.append(ApiCall("getUpdates", params))
        await self._notify()

        def ready() -> list[JSON]:
            return [u for u in self._updates if self._wanted(u)][:limit]

        deadline = time.monotonic() + timeout
        async with self._changed:
            while not ready() and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    break
        # Updates the bot did not ask for are dropped, as Telegram does.
        self._updates = [u for u in self._updates if self._wanted(u)]
        return ready()

    def _wanted(self, update: Mapping[str, Any]) -> bool:
        kind = next(k for k in update if k != "update_id")
        if self.allowed_updates:
            return kind in self.allowed_updates
        return kind not in _OPT_IN_UPDATES

    async def _api_sendmessage(self, params: JSON) -> JSON:
        text = params.get("text")
        if not text or not str(text).strip():
            raise _BadRequest("message text is empty")
        if len(str(text)) > 4096:
            raise _BadRequest("message is too long")
        chat = self._chat(_required(params, "chat_id"))
        reply_to = None
        reply_id = ApiCall("sendMessage", params).reply_to_message_id
        if reply_id is not None:
            reply_to = self.messages.get((chat["id"], reply_id))
            allow = (params.get("reply_parameters") or {}).get("allow_sending_without_reply")
            if reply_to is None and not allow and not params.get("allow_sending_without_reply"):
                raise _BadRequest("message to be replied not found")
        markup = _inline_markup(params, inline_only=False)
        message = self._new_message(
            chat,
            self.bot_user,
            str(text),
            reply_to=reply_to,
            message_thread_id=params.get("message_thread_id"),
        )
        _set_markup(message, markup)
        self.sent_messages.append(message)
        return message

    async def _api_editmessagetext(self, params: JSON) -> JSON:
        message = self._own_message(params)
        text = str(_required(params, "text"))
        markup = _inline_markup(params)
        message["text"] = text
        message["edit_date"] = int(time.time())
        # As on Telegram: an edit without reply_markup takes the inline keyboard off.
        _set_markup(message, markup)
        return message

    async def _api_editmessagereplymarkup(self, params: JSON) -> JSON:
        message = self._own_message(params)
        _set_markup(message, _inline_markup(params))
        return message

    async def _api_deletemessage(self, params: JSON) -> bool:
        key = (int(_required(params, "chat_id")), int(_required(params, "message_id")))
        if key not in self.messages:
            raise _BadRequest("message to delete not found")
        del self.messages[key]
        return True

    async def _api_sendchataction(self, params: JSON) -> bool:
        _required(params, "chat_id")
        _required(params, "action")
        return True

    async def _api_setmessagereaction(self, params: JSON) -> bool:
        _required(params, "chat_id")
        _required(params, "message_id")
        return True

    async def _api_answercallbackquery(self, params: JSON) -> bool:
        _required(params, "callback_query_id")
        return True

    async def _api_setmycommands(self, params: JSON) -> bool:
        self.commands = list(_required(params, "commands"))
        return True

    async def _api_getmycommands(self, params: JSON) -> list[JSON]:
        return list(self.commands)

    async def _api_deletemycommands(self, params: JSON) -> bool:
        self.commands = []
        return True

    async def _api_getchat(self, params: JSON) -> JSON:
        chat = dict(self._chat(_required(params, "chat_id")))
        chat.setdefault("accent_color_id", 0)
        chat.setdefault("max_reaction_count", 11)
        chat.setdefault(
            "accepted_gift_types",
            {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        return chat

    async def _api_getchatmember(self, params: JSON) -> JSON:
        chat_id = int(_required(params, "chat_id"))
        user_id = int(_required(params, "user_id"))
        user = self.bot_user if user_id == self.bot_id else self.user(user_id)
        return self._chat_member(chat_id, user, self.member_status(chat_id, user_id))

    async def _api_getchatadministrators(self, params: JSON) -> list[JSON]:
        chat_id = int(_required(params, "chat_id"))
        admins = []
        for (chat, user_id), status in self._member_status.items():
            if chat == chat_id and status in ("administrator", "creator"):
                user = self.bot_user if user_id == self.bot_id else self.user(user_id)
                admins.append(self._chat_member(chat_id, user, status))
        return admins

    def _own_message(self, params: JSON) -> JSON:
        key = (int(_required(params, "chat_id")), int(_required(params, "message_id")))
        message = self.messages.get(key)
        if message is None or message.get("from", {}).get("id") != self.bot_id:
            raise _BadRequest("message to edit not found")
        return message


class _BadRequest(Exception):
    pass


def _inline_markup(params: JSON, *, inline_only: bool = True) -> JSON | None:
    """The inline keyboard `params` attach, as Telegram stores it; None for none.

    A Message's ``reply_markup`` is only ever an InlineKeyboardMarkup with at least one button
    (python-telegram-bot reads ``reply_markup["inline_keyboard"]`` unconditionally), so what the
    fake hands back must have that shape: no markup, ``{}`` or ``{"inline_keyboard": []}`` leave
    the message without a keyboard, and a reply keyboard (``keyboard``, ``remove_keyboard``,
    ``force_reply``) is accepted by sendMessage but never shows up in the Message. Markup that is
    not a JSON object, or a keyboard of the wrong shape, is refused with 400 like Telegram does.
    """
    raw = params.get("reply_markup")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, Mapping):
        raise _BadRequest("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in raw:
        if raw and inline_only:
            raise _BadRequest("inline keyboard expected")
        return None
    rows = raw["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _BadRequest('field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays')
    for row in rows:
        for button in row:
            if not isinstance(button, Mapping) or not button.get("text"):
                raise _BadRequest("can't parse inline keyboard button: text is required")
    if not any(rows):
        return None
    # A copy: the stored message must not share objects with the recorded call's params.
    return json.loads(json.dumps({"inline_keyboard": rows}))


def _set_markup(message: JSON, markup: JSON | None) -> None:
    if markup is None:
        message.pop("reply_markup", None)
    else:
        message["reply_markup"] = markup


def _required(params: JSON, name: str) -> Any:
    if params.get(name) in (None, ""):
        raise _BadRequest(f"parameter {name} is required")
    return params[name]


def _reaction_type(item: str | Mapping[str, Any]) -> JSON:
    if isinstance(item, str):
        return {"type": "emoji", "emoji": item}
    return dict(item)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _error(status: int, description: str, parameters: JSON | None = None) -> web.Response:
    body: JSON = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


async def _read_params(request: web.Request) -> JSON:
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
    return {name: _decode(name, value) if isinstance(value, str) else value for name, value in params.items()}


def _decode(name: str, value: str) -> Any:
    # PTB sends strings as they are and everything else JSON-encoded.
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
