"""What a test does with the fake: make chats and users, push updates, wait for the bot's calls,
inject faults. Mixed into `FakeBotAPI`."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tests.fakes.telegram_api.calls import ApiCall, InjectedError
from tests.fakes.telegram_api.objects import JSON, chat_member, reaction_type, reason, text_entities

# How long wait_for / wait_fetched wait by default. Generous on purpose: a loaded CI machine can
# be slow, and a wait ends as soon as its call arrives, so only a failing test ever waits this long.
WAIT_TIMEOUT_S = 30.0


class Scripting:
    """The test-facing half of the fake (state lives on `FakeBotAPI`)."""

    bot_id: int
    bot_user: JSON
    calls: list[ApiCall]
    sent_messages: list[JSON]
    chats: dict[int, JSON]
    _member_status: dict[tuple[int, int], str]
    _errors: dict[str, list[InjectedError]]
    _updates: list[JSON]
    _update_ids: itertools.count[int]
    _callback_ids: itertools.count[int]
    _changed: asyncio.Condition

    def _notify_soon(self) -> None: ...
    def _new_message(
        self,
        chat: Mapping[str, Any],
        user: Mapping[str, Any] | None,
        text: str,
        *,
        reply_to: Mapping[str, Any] | None = None,
        message_thread_id: int | None = None,
    ) -> JSON: ...

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
        self.last_update_id = update_id
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
            "old_reaction": [reaction_type(r) for r in old],
            "new_reaction": [reaction_type(r) for r in new],
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
                {"type": reaction_type(emoji), "total_count": total} for emoji, total in counts.items()
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

    def push_inline_query(self, user: Mapping[str, Any], query: str) -> str:
        """`@bot <query>` typed by `user` (one keystroke's worth); returns the query id."""
        query_id = f"iq{next(self._callback_ids)}"
        self.push_update(inline_query={"id": query_id, "from": dict(user), "query": query, "offset": ""})
        return query_id

    def push_chosen_inline_result(
        self, user: Mapping[str, Any], result_id: str, query: str, inline_message_id: str | None
    ) -> None:
        """`user` sent result `result_id` (Telegram reports it with inline feedback on; the
        message's id only when the result had buttons)."""
        chosen: JSON = {"result_id": result_id, "from": dict(user), "query": query}
        if inline_message_id is not None:
            chosen["inline_message_id"] = inline_message_id
        self.push_update(chosen_inline_result=chosen)

    def push_inline_callback(self, inline_message_id: str, user: Mapping[str, Any], data: str) -> str:
        """A button press on an inline message (it has no chat message); returns the query id."""
        query_id = f"cq{next(self._callback_ids)}"
        self.push_update(
            callback_query={
                "id": query_id,
                "from": dict(user),
                "inline_message_id": inline_message_id,
                "chat_instance": "ci-inline",
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
            "old_chat_member": chat_member(chat["id"], self.bot_user, old),
            "new_chat_member": chat_member(chat["id"], self.bot_user, new),
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
        chat_id: int | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` (for `chat_id` only, when given) with an
        error instead of the result.

        429 carries ``parameters.retry_after`` (PTB raises RetryAfter); 5xx and other codes carry
        only a description (PTB raises NetworkError / BadRequest ...).
        """
        if description is None:
            description = f"Too Many Requests: retry after {retry_after}" if status == 429 else reason(status)
        self._errors.setdefault(method, []).append(
            InjectedError(status, retry_after if status == 429 else None, description, times, chat_id)
        )

    def _fetched_past(self, update_id: int) -> bool:
        return any(
            c.method == "getUpdates" and int(c.params.get("offset") or 0) > update_id for c in self.calls
        )

    def clear_errors(self) -> None:
        """Forget every injected error not answered yet."""
        self._errors.clear()
