"""BotCore: setups in, replies out; validation, group manners, access, limits and faults."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.core.service import BotCore, has_words
from bot.core.texts import MSG_BUSY, MSG_IN_FLIGHT, MSG_NOTHING
from bot.storage import Storage
from bot.types import (
    ChatKind,
    ChatRef,
    IncomingSetup,
    MessageRef,
    Platform,
    ReplyKind,
    UserRef,
)
from config.settings import Settings
from model.text import clean_text
from model.types import DeadlineExceeded, GenerationError, InvalidSetup, WorkerBusy
from tests.helpers import db

PRIVATE = ChatRef(Platform.TELEGRAM, "42", ChatKind.PRIVATE)
GROUP = ChatRef(Platform.TELEGRAM, "-100", ChatKind.GROUP, "Jokers")
ANN = UserRef(Platform.TELEGRAM, "42", "Ann")
BOB = UserRef(Platform.TELEGRAM, "43", "Bob")


def setup_msg(
    text: str,
    chat: ChatRef = PRIVATE,
    user: UserRef = ANN,
    addressed: bool = True,
    message_id: str | None = "1",
) -> IncomingSetup:
    return IncomingSetup(chat, user, text, addressed, message_id)


def make_core(storage, generator, clock, **overrides) -> BotCore:
    return BotCore(Settings(**overrides), storage, generator, clock)


@pytest.fixture
def core(storage, generator, clock) -> BotCore:
    return make_core(storage, generator, clock)


async def count(storage: Storage, table: str) -> int:
    async with storage.db.execute(f"SELECT COUNT(*) FROM {table}") as cur:  # table names are ours
        return (await cur.fetchone())[0]


async def test_private_setup_gets_a_stored_punchline(core, storage, generator, clock) -> None:
    reply = await core.handle_setup(setup_msg("Why did the chicken cross the road?", message_id="5"))
    assert reply is not None and reply.kind is ReplyKind.PUNCHLINE and reply.rateable
    assert reply.text == "To get to the other side." and reply.version == "v7"
    record = await db.get_reply(storage, reply.reply_id)
    assert record is not None and record.version == "v7" and record.score == -1.0
    request = await db.get_request(storage, record.request_id)
    assert request.text == "Why did the chicken cross the road?" and request.message_id == "5"
    assert request.status == "answered"
    # The deadline handed to the worker is the configured timeout from now.
    assert generator.calls[-1].deadline == pytest.approx(clock.monotonic() + core.settings.worker.timeout_s)

    await core.reply_sent(reply.reply_id, MessageRef(PRIVATE, "6"))
    linked = await storage.requests.find_reply(MessageRef(PRIVATE, "6"))
    assert linked is not None and linked.id == reply.reply_id and linked.sent_at is not None


async def test_reply_sent_for_an_unknown_reply_does_not_raise(core, storage) -> None:
    await core.reply_sent(999, MessageRef(PRIVATE, "6"))
    assert await storage.requests.find_reply(MessageRef(PRIVATE, "6")) is None


async def test_text_is_trimmed_before_it_reaches_the_model(core, generator) -> None:
    reply = await core.handle_setup(setup_msg("  Why\x00 did\n\tthe   cow\x07 moo?  "))
    assert reply.kind is ReplyKind.PUNCHLINE
    assert generator.calls[-1].setup == "Why did the cow moo?"


async def test_group_chatter_is_ignored_and_not_stored(core, storage, generator) -> None:
    assert await core.handle_setup(setup_msg("lol what a day", chat=GROUP, addressed=False)) is None
    assert generator.calls == [] and await count(storage, "requests") == 0
    reply = await core.handle_setup(setup_msg("Why is six afraid of seven?", chat=GROUP, addressed=True))
    assert reply.kind is ReplyKind.PUNCHLINE


async def test_messages_from_bots_are_ignored(core, storage) -> None:
    robot = UserRef(Platform.TELEGRAM, "9", "other_bot", is_bot=True)
    assert await core.handle_setup(setup_msg("Why?", user=robot)) is None
    assert await count(storage, "requests") == 0


@pytest.mark.parametrize(
    "text",
    ["", "   \n\t ", "\x00\x01\x02", "🤣🤣🤣", "👍 🔥 💯", "?!…", "\u200f\u200e"],
)
async def test_what_cannot_be_a_setup_is_refused_kindly_and_recorded(core, storage, generator, text) -> None:
    reply = await core.handle_setup(setup_msg(text))
    assert reply.kind is ReplyKind.REFUSAL and reply.text and not reply.rateable
    assert generator.calls == []
    async with storage.db.execute("SELECT status FROM requests") as cur:
        assert [r[0] for r in await cur.fetchall()] == ["refused"]


async def test_too_long_setups_are_refused_with_the_limit(storage, generator, clock) -> None:
    core = make_core(storage, generator, clock, limits={"max_message_chars": 50})
    assert (await core.handle_setup(setup_msg("W" * 50))).kind is ReplyKind.PUNCHLINE
    reply = await core.handle_setup(setup_msg("Why " * 2500))  # 10,000 characters
    assert reply.kind is ReplyKind.REFUSAL and "50" in reply.text
    assert len(generator.calls) == 1


def test_words_in_any_script_count() -> None:
    assert has_words("لماذا عبر الدجاج الطريق؟")
    assert has_words("为什么")
    assert has_words("42")
    assert not has_words("🤣🔥")
    # One rule for all text (model.text.clean_text): controls and bidi marks are dropped.
    assert clean_text(" a\x00b \u200f ") == "ab"


async def test_allow_lists(storage, generator, clock) -> None:
    core = make_core(
        storage,
        generator,
        clock,
        telegram={"allowed_chats": [-100], "allowed_users": [42], "admin_ids": [7]},
        discord={"allowed_channels": [555]},
    )
    assert core.access.is_allowed(GROUP, ANN)
    assert not core.access.is_allowed(GROUP, BOB)  # user not listed
    assert not core.access.is_allowed(
        ChatRef(Platform.TELEGRAM, "-200", ChatKind.GROUP), ANN
    )  # chat not listed
    assert core.access.is_allowed(PRIVATE, ANN)  # a listed user may talk privately
    admin = UserRef(Platform.TELEGRAM, "7")
    assert core.access.is_admin(admin) and not core.access.is_admin(ANN)
    assert core.access.is_allowed(ChatRef(Platform.TELEGRAM, "-300", ChatKind.GROUP), admin)
    console = UserRef(Platform.CONSOLE, "me")
    assert core.access.is_allowed(ChatRef(Platform.CONSOLE, "console", ChatKind.PRIVATE), console)
    assert core.access.is_admin(console)
    anyone = UserRef(Platform.DISCORD, "1")
    assert core.access.is_allowed(ChatRef(Platform.DISCORD, "555", ChatKind.GROUP), anyone)
    assert not core.access.is_allowed(ChatRef(Platform.DISCORD, "556", ChatKind.GROUP), anyone)
    # Discord DMs are not on the channel list and there is no user list: not allowed.
    assert not core.access.is_allowed(ChatRef(Platform.DISCORD, "777", ChatKind.PRIVATE), anyone)

    assert await core.handle_setup(setup_msg("Why?", chat=GROUP, user=BOB)) is None
    assert await count(storage, "requests") == 0
    assert (await core.handle_setup(setup_msg("Why?", chat=GROUP, user=ANN))).kind is ReplyKind.PUNCHLINE


async def test_empty_allow_lists_allow_everyone(core) -> None:
    assert core.access.is_allowed(GROUP, BOB)
    assert core.access.is_allowed(
        ChatRef(Platform.DISCORD, "1", ChatKind.GROUP), UserRef(Platform.DISCORD, "2")
    )


async def test_token_bucket_limits_each_user(storage, generator, clock) -> None:
    core = make_core(storage, generator, clock, limits={"burst": 2, "per_minute": 6})
    for _ in range(2):
        assert (await core.handle_setup(setup_msg("Why?"))).kind is ReplyKind.PUNCHLINE
    limited = await core.handle_setup(setup_msg("Why?"))
    assert limited.kind is ReplyKind.RATE_LIMITED and "10 s" in limited.text
    # Someone else is not affected.
    assert (await core.handle_setup(setup_msg("Why?", user=BOB))).kind is ReplyKind.PUNCHLINE
    clock.advance(10)  # one token back at 6 a minute
    assert (await core.handle_setup(setup_msg("Why?"))).kind is ReplyKind.PUNCHLINE
    assert len(generator.calls) == 4
    counts = await storage.requests.counts()
    # A refused setup never went to the model, so it is not kept.
    assert counts["rate_limited"] == 0 and counts["answered"] == 4


async def test_a_flood_is_answered_once_then_the_bot_stays_quiet(storage, generator, clock) -> None:
    core = make_core(storage, generator, clock, limits={"burst": 1, "per_minute": 6})
    assert (await core.handle_setup(setup_msg("Why?"))).kind is ReplyKind.PUNCHLINE
    first = await core.handle_setup(setup_msg("Why? Why? Why?"))
    assert first is not None and first.kind is ReplyKind.RATE_LIMITED
    for _ in range(20):  # the spam that follows gets no answer at all
        assert await core.handle_setup(setup_msg("WHY?")) is None
    clock.advance(10)  # the allowance is back: answered again
    assert (await core.handle_setup(setup_msg("Why now?"))).kind is ReplyKind.PUNCHLINE
    assert len(generator.calls) == 2
    assert await db.count(storage, "requests") == 2


async def test_one_busy_chat_cannot_take_every_answer(storage, generator, clock) -> None:
    core = make_core(
        storage,
        generator,
        clock,
        limits={"burst": 100, "per_minute": 600, "chat_burst": 3, "chat_per_minute": 6},
    )
    group = ChatRef(Platform.TELEGRAM, "-500", ChatKind.GROUP)
    people = [UserRef(Platform.TELEGRAM, str(n), f"P{n}") for n in range(6)]
    kinds = [(await core.handle_setup(IncomingSetup(group, p, "Why?", True))) for p in people]
    assert [k.kind for k in kinds[:3] if k] == [ReplyKind.PUNCHLINE] * 3
    assert kinds[3] is not None and kinds[3].kind is ReplyKind.RATE_LIMITED and "This chat" in kinds[3].text
    assert kinds[4] is None and kinds[5] is None  # said once for the chat
    # Other chats are not held up by it.
    assert (await core.handle_setup(setup_msg("Why elsewhere?"))).kind is ReplyKind.PUNCHLINE


async def test_one_request_in_flight_per_user(core, generator) -> None:
    generator.block()
    first = asyncio.create_task(core.handle_setup(setup_msg("Why is the sky blue?")))
    while generator.waiting == 0:
        await asyncio.sleep(0)
    second = await core.handle_setup(setup_msg("And the sea?"))
    assert second.kind is ReplyKind.RATE_LIMITED and second.text == MSG_IN_FLIGHT
    other_user = asyncio.create_task(core.handle_setup(setup_msg("Why?", user=BOB)))
    while generator.waiting < 2:
        await asyncio.sleep(0)
    generator.unblock()
    assert (await first).kind is ReplyKind.PUNCHLINE
    assert (await other_user).kind is ReplyKind.PUNCHLINE
    assert (await core.handle_setup(setup_msg("Now?"))).kind is ReplyKind.PUNCHLINE


@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        (WorkerBusy("queue full"), ReplyKind.BUSY, "busy"),
        (DeadlineExceeded("too slow"), ReplyKind.BUSY, "busy"),
        (InvalidSetup("too long for the model"), ReplyKind.REFUSAL, "refused"),
        (GenerationError("batch failed"), ReplyKind.ERROR, "error"),
        (RuntimeError("CUDA fell over"), ReplyKind.ERROR, "error"),
    ],
)
async def test_worker_faults_become_friendly_replies(
    core, storage, generator, error, kind, status, caplog
) -> None:
    generator.fail_next(error)
    with caplog.at_level(logging.WARNING, logger="bot.core"):
        reply = await core.handle_setup(setup_msg("Why?"))
    assert reply.kind is kind and reply.text and "Traceback" not in reply.text
    if kind is ReplyKind.BUSY:
        assert reply.text == MSG_BUSY
    if isinstance(error, RuntimeError):
        assert "CUDA fell over" in caplog.text  # logged for the operator, not shown in chat
        assert "CUDA" not in reply.text
    async with storage.db.execute("SELECT status FROM requests") as cur:
        assert [r[0] for r in await cur.fetchall()] == [status]
    # The user is not stuck "in flight" after a failure.
    assert (await core.handle_setup(setup_msg("Why again?"))).kind is ReplyKind.PUNCHLINE


async def test_no_punchline_from_the_worker(core, generator) -> None:
    generator.answer_with()
    reply = await core.handle_setup(setup_msg("Why?"))
    assert reply.kind is ReplyKind.ERROR and reply.text == MSG_NOTHING


async def test_a_broken_database_gives_an_error_reply_not_an_exception(core, storage) -> None:
    await storage.close()
    reply = await core.handle_setup(setup_msg("Why?"))
    assert reply.kind is ReplyKind.ERROR
    assert await core.stats_text(PRIVATE)  # a line saying stats are unavailable
    assert await core.ratings.set_reactions(MessageRef(PRIVATE, "1"), ANN, ["🤣"]) is False


async def test_help_text_mentions_how_to_ask_rate_privacy_and_the_family_mode(core) -> None:
    group = await core.help_for(GROUP, ANN)
    assert "/joke" in group and "admin" in group and "🤣" in group and "/privacy" in group
    assert "Family mode is on here" in group  # on by default in groups
    private = await core.help_for(
        ChatRef(Platform.DISCORD, "9", ChatKind.PRIVATE), UserRef(Platform.DISCORD, "9")
    )
    assert "every message" in private and "/stats" in private and "Family mode is off here" in private


async def test_first_time_is_true_once_per_chat(core) -> None:
    assert await core.first_time(GROUP, "reaction_hint_sent") is True
    assert await core.first_time(GROUP, "reaction_hint_sent") is False
