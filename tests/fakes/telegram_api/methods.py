"""The Bot API methods the fake answers, each with a realistic result. Mixed into `FakeBotAPI`.

getMe, getUpdates (long polling, ``offset``/``timeout``/``limit``/``allowed_updates``, and the
real server's habit of remembering ``allowed_updates``: reactions and chat_member updates are
not delivered unless asked for), deleteWebhook, getWebhookInfo, sendMessage, editMessageText,
editMessageReplyMarkup, deleteMessage, sendChatAction, setMessageReaction, answerCallbackQuery,
setMyCommands, getMyCommands, deleteMyCommands, getChat, getChatMember, getChatAdministrators,
close, logOut. `FakeBotAPI` answers any other method 404 ``{"ok": false}`` like Telegram does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from tests.fakes.telegram_api.calls import ApiCall
from tests.fakes.telegram_api.objects import (
    JSON,
    OPT_IN_UPDATES,
    BadRequest,
    chat_member,
    inline_markup,
    required,
    set_markup,
)


class BotApiMethods:
    """`_api_<method>` for each method; state lives on `FakeBotAPI`."""

    bot_id: int
    bot_user: JSON
    calls: list[ApiCall]
    sent_messages: list[JSON]
    messages: dict[tuple[int, int], JSON]
    commands: list[JSON]
    allowed_updates: list[str] | None
    _member_status: dict[tuple[int, int], str]
    _updates: list[JSON]
    _changed: asyncio.Condition
    _closing: bool
    open_polls: int
    max_open_polls: int

    async def _notify(self) -> None: ...
    def _chat(self, chat_id: Any) -> JSON: ...
    def user(
        self, user_id: int, first_name: str = "User", *, is_bot: bool = False, username: str | None = None
    ) -> JSON: ...
    def member_status(self, chat_id: int, user_id: int) -> str: ...
    def _new_message(
        self,
        chat: Mapping[str, Any],
        user: Mapping[str, Any] | None,
        text: str,
        *,
        reply_to: Mapping[str, Any] | None = None,
        message_thread_id: int | None = None,
    ) -> JSON: ...

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
        self.open_polls += 1
        self.max_open_polls = max(self.max_open_polls, self.open_polls)
        try:
            return await self._long_poll(params)
        finally:
            self.open_polls -= 1

    async def _long_poll(self, params: JSON) -> list[JSON]:
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
        return kind not in OPT_IN_UPDATES

    async def _api_sendmessage(self, params: JSON) -> JSON:
        text = params.get("text")
        if not text or not str(text).strip():
            raise BadRequest("message text is empty")
        if len(str(text)) > 4096:
            raise BadRequest("message is too long")
        chat = self._chat(required(params, "chat_id"))
        reply_to = None
        reply_id = ApiCall("sendMessage", params).reply_to_message_id
        if reply_id is not None:
            reply_to = self.messages.get((chat["id"], reply_id))
            allow = (params.get("reply_parameters") or {}).get("allow_sending_without_reply")
            if reply_to is None and not allow and not params.get("allow_sending_without_reply"):
                raise BadRequest("message to be replied not found")
        markup = inline_markup(params, inline_only=False)
        message = self._new_message(
            chat,
            self.bot_user,
            str(text),
            reply_to=reply_to,
            message_thread_id=params.get("message_thread_id"),
        )
        set_markup(message, markup)
        self.sent_messages.append(message)
        return message

    async def _api_editmessagetext(self, params: JSON) -> JSON:
        message = self._own_message(params)
        text = str(required(params, "text"))
        markup = inline_markup(params)
        message["text"] = text
        message["edit_date"] = int(time.time())
        # As on Telegram: an edit without reply_markup takes the inline keyboard off.
        set_markup(message, markup)
        return message

    async def _api_editmessagereplymarkup(self, params: JSON) -> JSON:
        message = self._own_message(params)
        set_markup(message, inline_markup(params))
        return message

    async def _api_deletemessage(self, params: JSON) -> bool:
        key = (int(required(params, "chat_id")), int(required(params, "message_id")))
        if key not in self.messages:
            raise BadRequest("message to delete not found")
        del self.messages[key]
        return True

    async def _api_sendchataction(self, params: JSON) -> bool:
        required(params, "chat_id")
        required(params, "action")
        return True

    async def _api_setmessagereaction(self, params: JSON) -> bool:
        required(params, "chat_id")
        required(params, "message_id")
        return True

    async def _api_answercallbackquery(self, params: JSON) -> bool:
        required(params, "callback_query_id")
        return True

    async def _api_answerinlinequery(self, params: JSON) -> bool:
        required(params, "inline_query_id")
        results = required(params, "results")
        if not isinstance(results, list) or len(results) > 50:
            raise BadRequest("RESULTS_TOO_MUCH")
        for result in results:
            if not 1 <= len(str(result.get("id", "")).encode()) <= 64:
                raise BadRequest("RESULT_ID_INVALID")
            if result.get("reply_markup") is not None:
                inline_markup({"reply_markup": result["reply_markup"]})
        return True

    async def _api_setmycommands(self, params: JSON) -> bool:
        self.commands = list(required(params, "commands"))
        return True

    async def _api_getmycommands(self, params: JSON) -> list[JSON]:
        return list(self.commands)

    async def _api_deletemycommands(self, params: JSON) -> bool:
        self.commands = []
        return True

    async def _api_getchat(self, params: JSON) -> JSON:
        chat = dict(self._chat(required(params, "chat_id")))
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
        chat_id = int(required(params, "chat_id"))
        user_id = int(required(params, "user_id"))
        user = self.bot_user if user_id == self.bot_id else self.user(user_id)
        return chat_member(chat_id, user, self.member_status(chat_id, user_id))

    async def _api_getchatadministrators(self, params: JSON) -> list[JSON]:
        chat_id = int(required(params, "chat_id"))
        admins = []
        for (chat, user_id), status in self._member_status.items():
            if chat == chat_id and status in ("administrator", "creator"):
                user = self.bot_user if user_id == self.bot_id else self.user(user_id)
                admins.append(chat_member(chat_id, user, status))
        return admins

    def _own_message(self, params: JSON) -> JSON:
        key = (int(required(params, "chat_id")), int(required(params, "message_id")))
        message = self.messages.get(key)
        if message is None or message.get("from", {}).get("id") != self.bot_id:
            raise BadRequest("message to edit not found")
        return message
