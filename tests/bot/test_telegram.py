"""The Telegram front-end end to end: the real python-telegram-bot HTTP stack (httpx, AIORateLimiter,
long polling) against the fake Bot API server on loopback, a real BotCore over a real SQLite
file, and a scripted generator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest

from bot.clock import SystemClock
from bot.core.service import BotCore
from bot.core.suggestions import BUILT_IN
from bot.core.texts import (
    HELP_ADMIN,
    MSG_EMPTY,
    MSG_ERROR,
    MSG_IN_FLIGHT,
    MSG_NO_MORE,
    MSG_NO_WORDS,
    MSG_NOT_ENGLISH,
    MSG_RELOAD_REFUSED,
    MSG_SETUP_GONE,
)
from bot.storage import Storage
from bot.telegram.app import ALLOWED_UPDATES, TelegramStartError, build_application, run_telegram
from bot.telegram.handlers import (
    MSG_ANOTHER_COMING,
    MSG_HELLO,
    MSG_REACTION_HINT,
    MSG_STALE_BUTTON,
    MSG_UNKNOWN_COMMAND,
)
from bot.types import MessageRef, Rating
from model.types import AdapterError
from tests.fakes.broken_core import BrokenCore
from tests.fakes.generator import FakeGenerator
from tests.fakes.telegram_api import WAIT_TIMEOUT_S, ApiCall, FakeBotAPI
from tests.helpers import db
from tests.helpers.telegram_bot import (
    PUNCHLINE,
    SETUP,
    Bot,
    eventually,
    make_settings,
    running_bot,
    tg_chat,
    tg_user,
)


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotAPI, tmp_path: Path) -> AsyncIterator[Bot]:
    async with running_bot(api, tmp_path / "punchline.db") as running:
        yield running


@pytest.fixture
def alice(api: FakeBotAPI) -> dict[str, Any]:
    return api.user(1001, "Alice")


@pytest.fixture
def bob(api: FakeBotAPI) -> dict[str, Any]:
    return api.user(1002, "Bob")


# ------------------------------------------------------------------------------ start-up
async def test_start_up_publishes_commands_and_asks_for_reactions(bot: Bot) -> None:
    await bot.api.wait_for("setMyCommands")
    assert {c["command"] for c in bot.api.commands} == {
        "joke", "stats", "help", "privacy", "forget", "optout", "optin", "family",
    }  # fmt: skip
    # Telegram only sends reactions to bots that name them in allowed_updates.
    assert bot.api.allowed_updates == ALLOWED_UPDATES
    assert {"message_reaction", "message_reaction_count"} <= set(ALLOWED_UPDATES)


async def test_rejected_token_is_a_clear_start_error(api: FakeBotAPI, tmp_path: Path) -> None:
    settings = make_settings(api, tmp_path / "x.db", token="999:wrong")
    storage = await Storage.open(settings.storage.path)
    try:
        application = build_application(settings, BotCore(settings, storage, FakeGenerator(), SystemClock()))
        with pytest.raises(TelegramStartError, match="PUNCHLINE_TELEGRAM__TOKEN"):
            await run_telegram(application, asyncio.Event())
    finally:
        await storage.close()


async def test_missing_token_names_the_variable(api: FakeBotAPI, tmp_path: Path) -> None:
    settings = make_settings(api, tmp_path / "x.db", token=None)
    with pytest.raises(TelegramStartError, match="PUNCHLINE_TELEGRAM__TOKEN"):
        build_application(settings, None)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- private chats
async def test_private_setup_gets_a_punchline_with_rating_buttons(bot: Bot, alice: dict) -> None:
    chat = bot.api.private_chat(alice)
    asked = bot.api.push_message(chat, alice, SETUP)
    call = await bot.reply_to(asked)
    assert call.params["text"] == PUNCHLINE
    assert bot.generator.calls[0].setup == SETUP
    assert call.callback_data == ["1:rate:funny", "1:rate:meh", "1:rate:inappropriate", "1:again"]
    # The sent message id is linked to the stored reply, so reactions on it can be found.
    reply_id = await bot.linked(call)
    stored = await bot.storage.requests.find_reply(MessageRef(tg_chat(chat), str(call.result["message_id"])))
    assert stored is not None and stored.id == reply_id and stored.text == PUNCHLINE


async def test_typing_is_shown_and_renewed_while_the_model_works(bot: Bot, alice: dict) -> None:
    chat = bot.api.private_chat(alice)
    bot.generator.block()
    asked = bot.api.push_message(chat, alice, SETUP)

    def typing(call: ApiCall) -> bool:
        return call.chat_id == chat["id"] and call.params["action"] == "typing"

    first = await bot.api.wait_for("sendChatAction", typing)
    # Renewed (typing_interval is 0.2 s here) while the answer is still not there.
    second = await bot.api.wait_for("sendChatAction", lambda c: typing(c) and c is not first)
    assert second.at > first.at
    assert not bot.api.calls_of("sendMessage", lambda c: c.replies_to(asked))
    bot.generator.unblock()
    assert (await bot.reply_to(asked)).params["text"] == PUNCHLINE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x" * 10_000, "That's a bit long for a setup"),
        ("\x00\x07\x1b \x08", MSG_EMPTY),
        ("🤣🤣🤣", MSG_NO_WORDS.split("—")[0]),
        ("لماذا عبر الدجاج الطريق؟", MSG_NOT_ENGLISH),  # the model answers English only
        ("Why did the دجاج cross the road?", PUNCHLINE),  # right-to-left inside English is fine
        ("\u202eWhy did the chicken\u202c cross?", PUNCHLINE),
    ],
    ids=["10k-chars", "control-chars", "emoji-only", "arabic", "rtl-word", "bidi-override"],
)
async def test_bad_input_gets_a_clear_answer(bot: Bot, alice: dict, text: str, expected: str) -> None:
    asked = bot.api.push_message(bot.api.private_chat(alice), alice, text)
    answer = (await bot.reply_to(asked)).params["text"]
    assert answer.startswith(expected)
    assert "Traceback" not in answer


async def test_unknown_command_in_private_gets_a_help_line(bot: Bot, alice: dict) -> None:
    asked = bot.api.push_message(bot.api.private_chat(alice), alice, "/frobnicate now")
    assert (await bot.reply_to(asked)).params["text"] == MSG_UNKNOWN_COMMAND
    assert not bot.generator.calls


async def test_help_and_stats(bot: Bot, alice: dict) -> None:
    chat = bot.api.private_chat(alice)
    helped = bot.api.push_command(chat, alice, "help")
    assert "joke setup" in (await bot.reply_to(helped)).params["text"]
    started = bot.api.push_command(chat, alice, "start")
    assert "joke setup" in (await bot.reply_to(started)).params["text"]
    sent, reply_id = await bot.punchline_for(chat, alice)
    await bot.core.ratings.rate(MessageRef(tg_chat(chat), str(sent["message_id"])), tg_user(alice), None)
    stats = bot.api.push_command(chat, alice, "stats")
    text = (await bot.reply_to(stats)).params["text"]
    assert text == await bot.core.stats_text(tg_chat(chat))


async def test_reload_swaps_the_adapter_for_admins_only(
    api: FakeBotAPI, tmp_path: Path, alice: dict, bob: dict
) -> None:
    async with running_bot(api, tmp_path / "reload.db", admin_ids=[alice["id"]]) as bot:
        chat = api.private_chat(alice)
        helped = api.push_command(chat, alice, "help")
        assert HELP_ADMIN in (await bot.reply_to(helped)).params["text"]
        asked = api.push_command(chat, alice, "reload", "adapters/v2")
        assert (await bot.reply_to(asked)).params["text"] == "Now serving v2 (was base)."
        _, reply_id = await bot.punchline_for(chat, alice)
        assert (await db.get_reply(bot.storage, reply_id)).version == "v2"

        group = api.group_chat()
        refused = api.push_command(group, bob, "reload", "adapters/v3")
        assert (await bot.reply_to(refused)).params["text"] == MSG_RELOAD_REFUSED
        bob_help = api.push_command(group, bob, "help")
        assert "/reload" not in (await bot.reply_to(bob_help)).params["text"]
        assert bot.generator.reloads == [Path("adapters/v2")]


async def test_a_failed_reload_in_a_group_shows_no_server_path(
    api: FakeBotAPI, tmp_path: Path, alice: dict
) -> None:
    async with running_bot(api, tmp_path / "reload.db", admin_ids=[alice["id"]]) as bot:
        bot.generator.fail_reload(AdapterError("adapter directory /srv/punchline/adapters/v9 does not exist"))
        asked = api.push_command(api.group_chat(), alice, "reload", "/srv/punchline/adapters/v9")
        text = (await bot.reply_to(asked)).params["text"]
    assert text == "Could not load v9: adapter directory v9 does not exist; still serving base."
    assert "/srv" not in text


async def test_worker_raising_gets_a_kind_message(bot: Bot, alice: dict) -> None:
    bot.generator.fail_next(RuntimeError("CUDA exploded at 0xdeadbeef"))
    asked = bot.api.push_message(bot.api.private_chat(alice), alice, SETUP)
    answer = (await bot.reply_to(asked)).params["text"]
    assert answer == MSG_ERROR
    assert "CUDA" not in answer
    # ...and the next setup works again.
    again = bot.api.push_message(bot.api.private_chat(alice), alice, SETUP)
    assert (await bot.reply_to(again)).params["text"] == PUNCHLINE


async def test_messages_from_bots_and_edits_are_ignored(bot: Bot, alice: dict) -> None:
    other_bot = bot.api.user(2001, "Spam", is_bot=True, username="spam_bot")
    from_bot = bot.api.push_message(bot.api.private_chat(other_bot), other_bot, SETUP)
    group = bot.api.group_chat()
    from_bot_in_group = bot.api.push_command(group, other_bot, "joke", SETUP)
    chat = bot.api.private_chat(alice)
    first = bot.api.push_message(chat, alice, "Why is 6 afraid of 7?")
    await bot.reply_to(first)
    edited = dict(first, text="Why is 7 afraid of 8?")
    bot.api.push_update(edited_message=dict(edited, edit_date=edited["date"] + 5))
    later = bot.api.push_message(chat, alice, SETUP)
    await bot.reply_to(later)
    for ignored in (from_bot, from_bot_in_group):
        assert not bot.api.calls_of("sendMessage", lambda c, m=ignored: c.replies_to(m))
    assert len(bot.api.calls_of("sendMessage", lambda c: c.replies_to(first))) == 1
    assert [c.setup for c in bot.generator.calls] == ["Why is 6 afraid of 7?", SETUP]


# -------------------------------------------------------------------------------------- groups
async def test_group_answers_only_when_addressed(bot: Bot, alice: dict, bob: dict) -> None:
    group = bot.api.group_chat()
    chatter = [
        bot.api.push_message(group, alice, "lol what a day"),
        bot.api.push_message(group, bob, "Why did the chicken cross the road? no idea"),
        bot.api.push_message(group, alice, "@someone_else_bot why is the sky blue?"),
        bot.api.push_command(group, bob, "joke@someone_else_bot", SETUP),
        bot.api.push_command(group, bob, "frobnicate"),  # unknown, not addressed to us
    ]
    joke = bot.api.push_command(group, alice, "joke", SETUP)
    assert (await bot.reply_to(joke)).params["text"] == PUNCHLINE
    mention = bot.api.push_message(group, bob, "@punchline_test_bot, why is 6 afraid of 7?")
    mentioned = await bot.reply_to(mention)
    reply_to_bot = bot.api.push_message(
        group, alice, "What do you call a fish with no eyes?", reply_to=mentioned.result
    )
    await bot.reply_to(reply_to_bot)
    addressed_joke = bot.api.push_command(group, bob, "joke", "Knock knock?", addressed=True)
    await bot.reply_to(addressed_joke)
    # Chatter came first, so by now it was handled: nothing answered it, nothing stored it.
    for message in chatter:
        assert not bot.api.calls_of("sendMessage", lambda c, m=message: c.replies_to(m))
    assert [c.setup for c in bot.generator.calls] == [
        SETUP,
        "why is 6 afraid of 7?",
        "What do you call a fish with no eyes?",
        "Knock knock?",
    ]
    counts = await bot.storage.requests.counts(tg_chat(group))
    assert sum(counts.values()) == 4


async def test_group_joke_without_setup_answers_one_it_picks_and_unknown_commands(
    bot: Bot, alice: dict
) -> None:
    group = bot.api.group_chat()
    empty = bot.api.push_command(group, alice, "joke")
    answer = await bot.reply_to(empty)
    [asked] = bot.generator.calls
    assert asked.setup in BUILT_IN  # no pool configured: the built-in setups
    assert answer.params["text"] == f"{asked.setup}\n\n{PUNCHLINE}"  # the setup is shown
    assert "1:rate:funny" in answer.callback_data
    unknown = bot.api.push_command(group, alice, "frobnicate", addressed=True)
    assert (await bot.reply_to(unknown)).params["text"] == MSG_UNKNOWN_COMMAND
    assert len(bot.generator.calls) == 1


async def test_reaction_hint_is_said_once_per_group_when_not_admin(bot: Bot, alice: dict) -> None:
    group = bot.api.group_chat(-1001000000077, "No admin here")
    await bot.punchline_for(group, alice)
    await bot.api.wait_for(
        "sendMessage", lambda c: c.chat_id == group["id"] and c.params["text"] == MSG_REACTION_HINT
    )
    await bot.api.wait_for("getChatMember", lambda c: c.chat_id == group["id"])
    await bot.punchline_for(group, alice, "Knock knock?")
    admin_group = bot.api.group_chat(-1001000000088, "Admin here")
    bot.api.set_bot_admin(admin_group["id"])
    await bot.punchline_for(admin_group, alice)
    await bot.api.wait_for("getChatMember", lambda c: c.chat_id == admin_group["id"])
    # An ordering fence: a later answer in each group, after the hint would have gone out.
    await bot.punchline_for(admin_group, alice, "Knock knock?")
    hints = bot.api.calls_of("sendMessage", lambda c: c.params["text"] == MSG_REACTION_HINT)
    assert [c.chat_id for c in hints] == [group["id"]]


async def test_added_to_a_group_says_hello_and_how_to_enable_reactions(bot: Bot, alice: dict) -> None:
    group = bot.api.group_chat(-1001000000099, "New friends")
    bot.api.push_my_chat_member(group, alice, old="left", new="member")
    hello = await bot.api.wait_for("sendMessage", lambda c: c.chat_id == group["id"])
    assert hello.params["text"] == f"{MSG_HELLO}\n\n{MSG_REACTION_HINT}"
    # Promoted: reactions are visible now, and the hint is never repeated in this chat.
    bot.api.push_my_chat_member(group, alice, old="member", new="administrator")
    bot.api.push_my_chat_member(group, alice, old="administrator", new="member")
    await bot.punchline_for(group, alice)
    assert len(bot.api.calls_of("sendMessage", lambda c: MSG_REACTION_HINT in c.params["text"])) == 1


# ----------------------------------------------------------------------------------- ratings
async def test_reaction_is_recorded_changed_and_removed(bot: Bot, alice: dict) -> None:
    group = bot.api.group_chat()
    bot.api.set_bot_admin(group["id"])
    sent, reply_id = await bot.punchline_for(group, alice)

    async def state() -> tuple[str, ...] | None:
        record = await bot.storage.ratings.get_reaction(reply_id, tg_user(alice), "reaction")
        return None if record is None else record.emojis

    async def tally() -> tuple[int, int, int]:
        (t,) = await bot.storage.ratings.tallies(reply_id=reply_id)
        return t.funny, t.not_funny, t.flagged

    bot.api.push_reaction(sent, alice, new=["🤣"])
    await eventually(lambda: _eq(state(), ("🤣",)))
    assert await tally() == (1, 0, 0)
    bot.api.push_reaction(sent, alice, old=["🤣"], new=["🤣", "🤮"])
    await eventually(lambda: _eq(state(), ("🤣", "🤮")))
    assert await tally() == (1, 0, 1)
    bot.api.push_reaction(sent, alice, old=["🤣", "🤮"], new=[])
    await eventually(lambda: _eq(state(), None))
    assert await tally() == (0, 0, 0)
    assert await db.count_events(bot.storage, reply_id) == 3


async def _eq(value: Awaitable[Any], expected: Any) -> bool:
    return (await value) == expected


async def test_custom_emoji_and_reactions_on_other_messages_rate_nothing(
    bot: Bot, alice: dict, bob: dict
) -> None:
    group = bot.api.group_chat()
    sent, reply_id = await bot.punchline_for(group, alice)
    someone_elses = bot.api.push_message(group, bob, "just chatting")
    bot.api.push_reaction(someone_elses, alice, new=["🤣"])
    bot.api.push_reaction(sent, alice, new=[{"type": "custom_emoji", "custom_emoji_id": "5368"}])
    bot.api.push_reaction({"chat": group, "message_id": 999_999}, alice, new=["🤣"])  # deleted
    fence = bot.api.push_reaction(sent, bob, new=["👎"])
    await eventually(lambda: _eq(db.count_events(bot.storage, reply_id), 1))
    await bot.api.wait_fetched(fence)
    assert await bot.storage.ratings.get_reaction(reply_id, tg_user(alice), "reaction") is None
    (t,) = await bot.storage.ratings.tallies(reply_id=reply_id)
    assert (t.funny, t.not_funny) == (0, 1)


async def test_anonymous_reaction_counts_are_stored(bot: Bot, alice: dict) -> None:
    group = bot.api.group_chat()
    sent, reply_id = await bot.punchline_for(group, alice)
    bot.api.push_reaction_count(sent, {"🤣": 3, "🤮": 1})
    await eventually(lambda: _eq(db.reaction_counts(bot.storage, reply_id), {"🤣": 3, "🤮": 1}))
    bot.api.push_reaction_count(sent, {"🤣": 4})
    await eventually(lambda: _eq(db.reaction_counts(bot.storage, reply_id), {"🤣": 4}))
    (t,) = await bot.storage.ratings.tallies(reply_id=reply_id)
    assert (t.anon_funny, t.anon_inappropriate) == (4, 0)


async def test_rating_buttons_and_forged_presses(bot: Bot, alice: dict) -> None:
    chat = bot.api.private_chat(alice)
    sent, reply_id = await bot.punchline_for(chat, alice)

    async def press(data: str) -> str:
        query_id = bot.api.push_callback(sent, alice, data)
        call = await bot.api.wait_for(
            "answerCallbackQuery", lambda c: c.params["callback_query_id"] == query_id
        )
        return call.params.get("text", "")

    assert await press("1:rate:funny") == "Noted: funny 🤣"
    record = await bot.storage.ratings.get_reaction(reply_id, tg_user(alice), "button")
    assert record is not None and record.rating == "funny" and record.funniness == 1
    assert await press("1:rate:meh") == "Noted: meh 😐"
    assert await press("rate:987654:funny") == MSG_STALE_BUTTON  # an older bot's format
    assert await press("1:rate:hilarious") == MSG_STALE_BUTTON
    assert await press("1:vote:1") == MSG_STALE_BUTTON  # no battles here: nobody handles it
    record = await bot.storage.ratings.get_reaction(reply_id, tg_user(alice), "button")
    assert record is not None and record.rating == "meh"


# ------------------------------------------------------------------------------------ faults
async def test_flood_limit_delays_the_reply_instead_of_losing_it(bot: Bot, alice: dict) -> None:
    bot.api.inject_error("sendMessage", 429, retry_after=1)
    asked = bot.api.push_message(bot.api.private_chat(alice), alice, SETUP)
    started = time.monotonic()
    assert (await bot.reply_to(asked)).params["text"] == PUNCHLINE
    assert time.monotonic() - started >= 1.0  # it waited retry_after
    statuses = [c.status for c in bot.api.calls_of("sendMessage")]
    assert statuses == [429, 200]


async def test_server_errors_are_retried(bot: Bot, alice: dict) -> None:
    bot.api.inject_error("sendMessage", 502)
    bot.api.inject_error("getUpdates", 500)
    asked = bot.api.push_message(bot.api.private_chat(alice), alice, SETUP)
    assert (await bot.reply_to(asked)).params["text"] == PUNCHLINE
    call = await bot.reply_to(asked)
    assert [c.status for c in bot.api.calls_of("sendMessage")] == [502, 200]
    # The reply is linked to the message that did arrive.
    await bot.linked(call)
    # Polling survives its own 500 and goes on delivering.
    await bot.api.wait_for("getUpdates", lambda c: c.status == 500)
    later = bot.api.push_message(asked["chat"], alice, "Knock knock?")
    assert (await bot.reply_to(later)).params["text"] == PUNCHLINE


async def test_failing_handlers_answer_kindly_without_details(
    api: FakeBotAPI, tmp_path: Path, alice: dict
) -> None:
    async with running_bot(api, tmp_path / "broken.db", BrokenCore) as broken:
        chat = api.private_chat(alice)
        helped = api.push_command(chat, alice, "help")
        asked = api.push_message(chat, alice, SETUP)
        for message in (helped, asked):
            answer = (await broken.reply_to(message)).params["text"]
            assert answer == MSG_ERROR and "secret" not in answer


async def test_a_slow_generation_holds_up_nobody_else(bot: Bot, alice: dict, bob: dict) -> None:
    bot.generator.block()
    chat = bot.api.private_chat(alice)
    slow = bot.api.push_message(chat, alice, SETUP)
    await bot.api.wait_for("sendChatAction", lambda c: c.chat_id == chat["id"])
    # While Alice's punchline is being made: Bob gets help, Alice hears she must wait.
    helped = bot.api.push_command(bot.api.private_chat(bob), bob, "help")
    await bot.reply_to(helped)
    impatient = bot.api.push_message(chat, alice, "Knock knock?")
    assert (await bot.reply_to(impatient)).params["text"] == MSG_IN_FLIGHT
    bot.generator.unblock()
    assert (await bot.reply_to(slow)).params["text"] == PUNCHLINE


async def test_stopping_finishes_the_reply_in_progress(bot: Bot, alice: dict) -> None:
    bot.generator.block()
    chat = bot.api.private_chat(alice)
    asked = bot.api.push_message(chat, alice, SETUP)
    await bot.api.wait_for("sendChatAction", lambda c: c.chat_id == chat["id"])
    bot.stop.set()
    # Polling has stopped (its last, non-waiting getUpdates confirms what was fetched)...
    await bot.api.wait_for("getUpdates", lambda c: c.params.get("timeout") == 0)
    assert not bot.task.done()  # ...but the bot waits for the reply in progress.
    bot.generator.unblock()
    await asyncio.wait_for(bot.task, WAIT_TIMEOUT_S)
    assert (await bot.reply_to(asked, timeout=0)).params["text"] == PUNCHLINE


async def test_fake_api_answers_like_telegram(api: FakeBotAPI, alice: dict) -> None:
    """The fake's own contract, which every Telegram test leans on."""
    from telegram import Bot as PTBBot
    from telegram.error import EndPointNotFound

    async with PTBBot(api.token, base_url=api.base_url) as client:
        with pytest.raises(EndPointNotFound):
            await client.do_api_request("sendTelepathy")
        chat = api.private_chat(alice)
        said = api.push_message(chat, alice, "hi")
        api.push_reaction(said, alice, new=["🤣"])
        # Reactions are withheld from a bot that did not ask for them, as Telegram does.
        updates = await client.get_updates(timeout=0)
        assert [u.message.text for u in updates if u.message] == ["hi"] and len(updates) == 1
        api.push_reaction(said, alice, new=["🤣"])
        updates = await client.get_updates(
            offset=updates[-1].update_id + 1, timeout=1, allowed_updates=["message_reaction"]
        )
        assert [u.message_reaction.new_reaction[0].emoji for u in updates] == ["🤣"]


async def test_fake_api_keeps_reply_markup_in_telegrams_shape(api: FakeBotAPI, alice: dict) -> None:
    """A Message's reply_markup is an inline keyboard with buttons, or absent: python-telegram-bot
    reads ``inline_keyboard`` unconditionally, so any other shape from the fake breaks parsing."""
    from telegram import Bot as PTBBot
    from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup
    from telegram.error import BadRequest

    async with PTBBot(api.token, base_url=api.base_url) as client:
        chat_id = api.private_chat(alice)["id"]
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Vote 1", callback_data="v:1")]])
        sent = await client.send_message(chat_id, "Pick one", reply_markup=keyboard)
        assert sent.reply_markup == keyboard
        # Editing the text without a reply_markup takes the keyboard off, as on Telegram.
        edited = await client.edit_message_text("Closed", chat_id=chat_id, message_id=sent.message_id)
        assert edited.reply_markup is None
        assert "reply_markup" not in api.sent_messages[0]
        # An empty keyboard (sent as "{}") is no keyboard; a reply keyboard never shows in a Message.
        empty = await client.send_message(chat_id, "Nothing to press", reply_markup=InlineKeyboardMarkup([]))
        forced = await client.send_message(chat_id, "Answer me", reply_markup=ForceReply())
        assert empty.reply_markup is None and forced.reply_markup is None
        again = await client.edit_message_text(
            "Still nothing",
            chat_id=chat_id,
            message_id=empty.message_id,
            reply_markup=InlineKeyboardMarkup([]),
        )
        assert again.reply_markup is None
        # A press on the closed message still parses.
        api.push_callback(api.sent_messages[0], alice, "v:1")
        [update] = await client.get_updates(timeout=0)
        assert update.callback_query is not None and update.callback_query.data == "v:1"
        # Markup that is not a JSON object is refused, as Telegram does.
        with pytest.raises(BadRequest, match="parse"):
            await client.send_message(chat_id, "x", api_kwargs={"reply_markup": "not json"})


async def test_battles_plug_in_ahead_of_the_core(api: FakeBotAPI, tmp_path: Path, alice: dict) -> None:
    async with running_bot(api, tmp_path / "battles.db", with_battles=True) as bot:
        await api.wait_for("setMyCommands")
        assert {"battle", "leaderboard", "cancel", "joke"} <= {c["command"] for c in api.commands}
        chat = api.private_chat(alice)
        # /leaderboard is the battles' command: answered by them, not as an unknown command.
        board = api.push_command(chat, alice, "leaderboard")
        from bot.telegram.battles import MSG_GROUPS_ONLY

        assert (await bot.reply_to(board)).params["text"] == MSG_GROUPS_ONLY
        # Private text with no battle entry pending still reaches the core as a setup.
        asked = api.push_message(chat, alice, SETUP)
        assert (await bot.reply_to(asked)).params["text"] == PUNCHLINE


async def test_another_one_gives_a_new_punchline_never_one_given_before_in_that_chat(
    bot: Bot, alice: dict
) -> None:
    chat = bot.api.private_chat(alice)
    bot.generator.answer_with("First.", "First.", "Second.", "Third.")
    first, first_id = await bot.punchline_for(chat, alice)
    await bot.core.ratings.rate(
        MessageRef(tg_chat(chat), str(first["message_id"])), tg_user(alice), Rating.FUNNY
    )

    async def press(message: dict[str, Any]) -> str:
        query_id = bot.api.push_callback(message, alice, "1:again")
        call = await bot.api.wait_for(
            "answerCallbackQuery", lambda c: c.params["callback_query_id"] == query_id
        )
        return call.params.get("text", "")

    assert await press(first) == MSG_ANOTHER_COMING
    second = await bot.reply_to(first)  # answers the punchline it was asked under
    assert second.params["text"] == "Second." and "1:again" in second.callback_data
    assert bot.generator.calls[-1].setup == SETUP and bot.generator.calls[-1].n > 1
    second_id = await bot.linked(second)
    assert await press(second.result) == MSG_ANOTHER_COMING
    third = await bot.reply_to(second.result)
    assert third.params["text"] == "Third."  # pressed at once: the press waits for the link
    # Every candidate now repeats a line given here: said in the toast, no message.
    assert await press(third.result) == MSG_NO_MORE
    assert len(bot.api.calls_of("sendMessage", lambda c: c.params["text"] == "Third.")) == 1
    # Each reply keeps its own ratings; all three answer the same stored setup.
    (t,) = await bot.storage.ratings.tallies(reply_id=first_id)
    assert t.funny == 1
    assert all(t.funny == 0 for t in await bot.storage.ratings.tallies(reply_id=second_id))
    assert await bot.storage.requests.given_for(tg_chat(chat), SETUP) == ["First.", "Second.", "Third."]


async def test_another_one_on_a_message_that_is_no_punchline_says_so(bot: Bot, alice: dict) -> None:
    chat = bot.api.private_chat(alice)
    sent, _ = await bot.punchline_for(chat, alice)
    stranger = {**sent, "message_id": sent["message_id"] + 1000}  # a message the bot never linked
    query_id = bot.api.push_callback(stranger, alice, "1:again")
    call = await bot.api.wait_for("answerCallbackQuery", lambda c: c.params["callback_query_id"] == query_id)
    assert call.params["text"] == MSG_SETUP_GONE
    assert len(bot.generator.calls) == 1
