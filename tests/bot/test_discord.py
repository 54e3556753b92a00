"""The Discord front-end: the real discord.py client under simcord, a real SQLite `Storage`, the
real `BotCore` and a scripted generator.

Each test drives the bot the way people do (DMs, mentions, replies, slash commands, reactions,
buttons) and checks both what they see in Discord and what ended up in the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import discord
import pytest

from bot.clock import ManualClock
from bot.core import texts as core_module
from bot.core.service import BotCore
from bot.discord.buttons import FORGED_TEXT
from bot.discord.client import PunchlineDiscord, build_client
from bot.discord.convert import chat_ref
from bot.discord.handlers import CANNOT_READ_TEXT, NOT_ALLOWED_TEXT, RESTARTING_TEXT, SORRY_TEXT
from bot.storage import Storage
from bot.types import MessageRef, Platform, Rating, UserRef
from config.settings import Settings, load_settings
from model.types import WorkerBusy
from tests.fakes.discord_sim import DiscordWorld, simulated_discord
from tests.fakes.generator import FakeGenerator
from tests.helpers import db

PUNCHLINE = "Because the road was there."
SETUP = "Why did the chicken cross the road?"
GUILD_ID = 1_234_567_890_123_456_789


class Bot:
    """Everything one test needs: settings, storage, core, generator, and a client factory."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        self.generator = FakeGenerator([PUNCHLINE])
        self.core = BotCore(settings, storage, self.generator, ManualClock())

    def client(self) -> PunchlineDiscord:
        """A fresh client over the same core and database (as after a process restart)."""
        return build_client(self.settings, self.core)


def make_settings(tmp_path: Path, **discord_settings: object) -> Settings:
    return load_settings(
        discord=discord_settings,
        storage={"path": str(tmp_path / "bot.db")},
        limits={"burst": 20},
    )


@pytest.fixture
def make_bot(tmp_path: Path, storage: Storage) -> Callable[..., Bot]:
    def make(**discord_settings: object) -> Bot:
        return Bot(make_settings(tmp_path, **discord_settings), storage)

    return make


@pytest.fixture
async def bot(make_bot: Callable[..., Bot]) -> Bot:
    return make_bot()


@pytest.fixture
async def world(bot: Bot) -> AsyncIterator[DiscordWorld]:
    async with simulated_discord(bot.client()) as running:
        yield running


def user_of(actor: object) -> UserRef:
    return UserRef(Platform.DISCORD, str(getattr(actor, "id")))


async def reply_for(bot: Bot, message: discord.Message) -> int:
    """The stored reply id behind a bot message; fails if the message was never linked."""
    guild_id = message.guild.id if message.guild is not None else None
    ref = MessageRef(chat_ref(message.channel.id, guild_id), str(message.id))
    record = await bot.storage.requests.find_reply(ref)
    assert record is not None, "the punchline was not linked to its Discord message"
    return record.id


async def count(bot: Bot, table: str) -> int:
    async with bot.storage.db.execute(f"SELECT COUNT(*) FROM {table}") as cur:  # noqa: S608 (fixed names)
        row = await cur.fetchone()
    return int(row[0])


def custom_ids(message: discord.Message) -> list[str]:
    return [child.custom_id for row in message.components for child in row.children]  # type: ignore[union-attr]


# -- messages ---------------------------------------------------------------------------------


async def test_dm_setup_gets_a_punchline_with_rating_buttons(bot: Bot, world: DiscordWorld) -> None:
    bob = world.user("bob")
    asked = await bob.send_dm(SETUP)

    [answer] = world.dm_bot_messages(bob)
    assert answer.content == PUNCHLINE
    assert answer.reference is not None and answer.reference.message_id == asked.id
    await reply_for(bot, answer)  # linked to its stored reply
    assert custom_ids(answer) == [f"1:rate:{r.value}" for r in Rating] + ["1:again"]
    assert [call.setup for call in bot.generator.calls] == [SETUP]
    assert world.requests("POST", f"/channels/{bob.dm_channel.id}/typing"), "no typing indicator"
    # Punchlines echo user text: the bot never lets them ping anyone.
    assert world.requests("POST", "/channels/*/messages")[-1].json["allowed_mentions"]["parse"] == []


async def test_right_to_left_and_emoji_setups_reach_the_model_intact(bot: Bot, world: DiscordWorld) -> None:
    bob = world.user("bob")
    setup = "Why did the תרנגולת cross the road? 🐔"  # English, with a Hebrew word in it
    await bob.send_dm(setup)
    assert [m.content for m in world.dm_bot_messages(bob)] == [PUNCHLINE]
    assert [call.setup for call in bot.generator.calls] == [setup]
    await bob.send_dm("למה התרנגולת חצתה את הכביש? 🐔")  # Hebrew: one friendly line, no model
    assert world.dm_bot_messages(bob)[-1].content == core_module.MSG_NOT_ENGLISH
    assert len(bot.generator.calls) == 1


@pytest.mark.parametrize("content_intent", [False, True])
async def test_unaddressed_channel_chatter_is_ignored(
    make_bot: Callable[..., Bot], content_intent: bool
) -> None:
    bot = make_bot(message_content_intent=content_intent)
    async with simulated_discord(bot.client()) as world:
        alice = world.member("alice")
        await alice.send(world.channel, SETUP)
        await alice.send(world.channel, "lol what a day")

        assert world.bot_messages() == []
    assert bot.generator.calls == []
    assert await count(bot, "requests") == 0


async def test_a_mention_is_answered_without_the_mention(bot: Bot, world: DiscordWorld) -> None:
    alice = world.member("alice")
    carol = world.member("carol")
    await alice.send(
        world.channel, f"{world.bot_mention} Why does {carol.mention} love {world.bot_mention} bread?"
    )

    answer = world.last_bot_message()
    assert answer.content == PUNCHLINE
    await reply_for(bot, answer)
    assert [call.setup for call in bot.generator.calls] == ["Why does @carol love bread?"]


async def test_a_reply_to_the_bot_is_answered(bot: Bot, world: DiscordWorld) -> None:
    alice = world.member("alice")
    await alice.send(world.channel, f"{world.bot_mention} {SETUP}")
    first = world.last_bot_message()
    bot.generator.answer_with("To get to the other side.")

    follow_up = await alice.send(world.channel, "And why did the duck?", reply_to=first)

    answer = world.last_bot_message()
    assert answer.id != first.id
    assert answer.content == "To get to the other side."
    assert answer.reference is not None and answer.reference.message_id == follow_up.id
    assert bot.generator.calls[-1].setup == "And why did the duck?"


async def test_replies_to_other_people_are_chatter(bot: Bot, world: DiscordWorld) -> None:
    alice, carol = world.member("alice"), world.member("carol")
    said = await alice.send(world.channel, "anyone here?")
    await carol.send(world.channel, "yes, why?", reply_to=said)
    assert world.bot_messages() == []


async def test_a_bare_mention_asks_for_a_setup(bot: Bot, world: DiscordWorld) -> None:
    alice = world.member("alice")
    await alice.send(world.channel, world.bot_mention)
    assert world.last_bot_message().content == core_module.MSG_EMPTY
    assert bot.generator.calls == []


@pytest.mark.parametrize("content_intent", [False, True])
async def test_a_reply_without_ping(make_bot: Callable[..., Bot], content_intent: bool) -> None:
    """Discord hides a ping-less reply's text unless the bot has the message-content intent:
    without it the bot explains how to reach it; with it the reply is a setup as usual."""
    bot = make_bot(message_content_intent=content_intent)
    async with simulated_discord(bot.client()) as world:
        alice = world.member("alice")
        await alice.send(world.channel, f"{world.bot_mention} {SETUP}")
        first = world.last_bot_message()

        await world.send_reply_without_ping(alice, world.channel, "And the duck?", first)

        answer = world.last_bot_message()
        assert answer.id != first.id
        if content_intent:
            assert answer.content == PUNCHLINE
            assert bot.generator.calls[-1].setup == "And the duck?"
        else:
            assert answer.content == CANNOT_READ_TEXT
            assert len(bot.generator.calls) == 1


async def test_edited_messages_are_ignored(bot: Bot, world: DiscordWorld) -> None:
    alice = world.member("alice")
    said = await alice.send(world.channel, "just chatting")
    await alice.edit(said, f"{world.bot_mention} {SETUP}")
    assert world.bot_messages() == []

    asked = await alice.send(world.channel, f"{world.bot_mention} {SETUP}")
    await alice.edit(asked, f"{world.bot_mention} Why not?")
    assert len(world.bot_messages()) == 1
    assert len(bot.generator.calls) == 1


async def test_other_bots_are_ignored(bot: Bot, world: DiscordWorld) -> None:
    robot = world.member("robot", bot=True)
    await robot.send(world.channel, f"{world.bot_mention} {SETUP}")
    dm_robot = world.user("dmrobot", bot=True)
    await dm_robot.send_dm(SETUP)

    assert world.bot_messages() == []
    assert world.dm_bot_messages(dm_robot) == []
    assert bot.generator.calls == []


async def test_a_failing_worker_gets_a_kind_message(bot: Bot, world: DiscordWorld) -> None:
    alice = world.member("alice")
    bot.generator.fail_next(RuntimeError("CUDA exploded at 0xdeadbeef"), WorkerBusy("queue full"))

    await alice.send(world.channel, f"{world.bot_mention} {SETUP}")
    failed = world.last_bot_message().content
    await alice.send(world.channel, f"{world.bot_mention} {SETUP}")
    busy = world.last_bot_message().content

    assert failed == core_module.MSG_ERROR
    assert busy == core_module.MSG_BUSY
    for text in (failed, busy):
        assert "Traceback" not in text and "CUDA" not in text
    await alice.send(world.channel, f"{world.bot_mention} {SETUP}")
    assert world.last_bot_message().content == PUNCHLINE  # and it keeps serving


async def test_a_refused_typing_indicator_does_not_stop_the_answer(bot: Bot, world: DiscordWorld) -> None:
    world.env.inject_error(
        "POST", "/channels/*/typing", status=403, code=50013, message="Missing Permissions"
    )
    bob = world.user("bob")
    await bob.send_dm(SETUP)
    assert [m.content for m in world.dm_bot_messages(bob)] == [PUNCHLINE]


# -- slash commands ---------------------------------------------------------------------------


async def test_slash_joke_answers_with_rating_buttons(bot: Bot, world: DiscordWorld) -> None:
    alice = world.member("alice")
    result = await alice.slash(world.channel, "joke", setup=SETUP)

    # Deferred first (Discord shows "thinking…" while the model works), then completed.
    callbacks = world.requests("POST", "/interactions/*/callback")
    assert [c.json["type"] for c in callbacks] == [5]
    assert result.response is not None and not result.response.ephemeral
    assert result.response.content == PUNCHLINE
    answer = result.response.message
    await reply_for(bot, answer)  # linked to its stored reply
    assert custom_ids(answer) == [f"1:rate:{r.value}" for r in Rating] + ["1:again"]
    assert bot.generator.calls[-1].setup == SETUP


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("   ", core_module.MSG_EMPTY),
        ("\x00\x07\x1b\u200b\n", None),
        ("🤣🤣🤣", core_module.MSG_NO_WORDS.format(example=core_module.EXAMPLE_SETUP)),
        ("Why " * 2600, core_module.MSG_TOO_LONG.format(limit=300)),
    ],
    ids=["blank", "control-chars", "emoji-only", "huge"],
)
async def test_slash_joke_bad_input_gets_a_clear_answer(
    bot: Bot, world: DiscordWorld, setup: str, expected: str | None
) -> None:
    alice = world.member("alice")
    result = await alice.slash(world.channel, "joke", setup=setup)

    assert result.response is not None
    text = result.response.content
    if expected is None:  # control characters are blanked; what is left has no words
        assert text in {
            core_module.MSG_EMPTY,
            core_module.MSG_NO_WORDS.format(example=core_module.EXAMPLE_SETUP),
        }
    else:
        assert text == expected
    assert result.response.components == []  # nothing to rate
    assert bot.generator.calls == []
    assert await count(bot, "requests") == 1  # the refused request is on record


async def test_slash_help_and_stats(bot: Bot, world: DiscordWorld) -> None:
    alice = world.member("alice")
    helped = await alice.slash(world.channel, "help")
    assert helped.ephemeral and helped.response is not None
    assert "/joke" in helped.response.content

    empty = await alice.slash(world.channel, "stats")
    assert empty.response is not None and "No punchlines here yet" in empty.response.content

    await alice.send(world.channel, f"{world.bot_mention} {SETUP}")
    await alice.react(world.last_bot_message(), "🤣")
    stats = await alice.slash(world.channel, "stats")
    assert stats.response is not None
    assert "1 replies, 1 rated, 1 ratings" in stats.response.content
    assert PUNCHLINE in stats.response.content


async def test_slash_reload_is_private_and_for_admins_only(bot: Bot, world: DiscordWorld) -> None:
    alice, bob = world.member("alice"), world.member("bob")
    # Settings are read on every event; this test's own settings object gains the admin.
    bot.settings.discord.admin_ids.append(alice.id)

    helped = await alice.slash(world.channel, "help")
    assert helped.response is not None and core_module.HELP_ADMIN in helped.response.content
    result = await alice.slash(world.channel, "reload", adapter_dir="adapters/v2")
    assert result.ephemeral and result.response is not None
    assert result.response.content == "Now serving v2 (was base)."
    # Deferred first (loading takes a while), privately (flag 64: ephemeral).
    deferred = world.requests("POST", "/interactions/*/callback")[-1].json
    assert deferred["type"] == 5 and deferred["data"]["flags"] == 64

    refused = await bob.slash(world.channel, "reload", adapter_dir="adapters/v3")
    assert refused.ephemeral and refused.response is not None
    assert refused.response.content == core_module.MSG_RELOAD_REFUSED
    again = await alice.slash(world.channel, "reload")  # no directory, none configured
    assert again.response is not None and again.response.content == core_module.MSG_RELOAD_NO_ADAPTER
    assert bot.generator.reloads == [Path("adapters/v2")]
    assert world.bot_messages() == []  # nothing of it shows in the channel

    await alice.send(world.channel, f"{world.bot_mention} {SETUP}")
    record = await db.get_reply(bot.storage, await reply_for(bot, world.last_bot_message()))
    assert record is not None and record.version == "v2"


async def test_slash_commands_sync_to_the_configured_guilds(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(guilds=[GUILD_ID])
    async with simulated_discord(bot.client(), guild_ids=[GUILD_ID]) as world:
        assert world.guild.id == GUILD_ID
        alice = world.member("alice")
        assert set(alice.available_commands(world.channel)) == {
            "joke", "stats", "help", "reload", "privacy", "forget", "optout", "optin", "family",
        }  # fmt: skip
        result = await alice.slash(world.channel, "joke", setup=SETUP)
        assert result.response is not None and result.response.content == PUNCHLINE
        # Guild-only sync: DMs have no slash commands, but plain DM messages still work.
        assert world.user("bob").available_commands() == ()


async def test_slash_joke_in_a_dm_with_global_commands(bot: Bot, world: DiscordWorld) -> None:
    bob = world.user("bob")
    result = await bob.slash("joke", setup=SETUP)
    assert result.response is not None and result.response.content == PUNCHLINE
    await reply_for(bot, result.response.message)


async def test_allow_lists_keep_the_bot_quiet_elsewhere(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    async with simulated_discord(bot.client()) as world:
        allowed = world.text_channel("jokes")
        # Settings are read on every event; this test's own settings object gains the channel.
        bot.settings.discord.allowed_channels.append(allowed.id)
        alice = world.member("alice")

        await alice.send(world.channel, f"{world.bot_mention} {SETUP}")
        refused = await alice.slash(world.channel, "joke", setup=SETUP)
        await alice.send(allowed, f"{world.bot_mention} {SETUP}")

        assert world.bot_messages() == []
        assert refused.ephemeral and refused.response is not None
        assert refused.response.content == NOT_ALLOWED_TEXT
        assert [m.content for m in world.bot_messages(allowed)] == [PUNCHLINE]
        assert len(bot.generator.calls) == 1


# -- ratings: reactions -----------------------------------------------------------------------


async def test_a_reaction_and_its_removal_are_recorded(bot: Bot, world: DiscordWorld) -> None:
    alice = world.member("alice")
    await alice.send(world.channel, f"{world.bot_mention} {SETUP}")
    answer = world.last_bot_message()
    reply_id = await reply_for(bot, answer)

    await alice.react(answer, "🤣")
    state = await bot.storage.ratings.get_reaction(reply_id, user_of(alice), "reaction")
    assert state is not None and state.emojis == ("🤣",) and state.funniness == 1

    await alice.react(answer, "🤮")
    state = await bot.storage.ratings.get_reaction(reply_id, user_of(alice), "reaction")
    assert state is not None and set(state.emojis) == {"🤣", "🤮"}

    await alice.unreact(answer, "🤣")
    await alice.unreact(answer, "🤮")
    assert await bot.storage.ratings.get_reaction(reply_id, user_of(alice), "reaction") is None
    assert await db.count_events(bot.storage, reply_id) == 4  # every event is on record


async def test_a_reaction_on_an_uncached_message_counts(bot: Bot, world: DiscordWorld) -> None:
    """Raw reaction events: after a restart the new client has no cached messages at all."""
    bob = world.user("bob")
    await bob.send_dm(SETUP)
    [answer] = world.dm_bot_messages(bob)
    reply_id = await reply_for(bot, answer)

    await world.restart(bot.client())
    assert world.client.get_partial_messageable(answer.channel.id) is not None
    assert not any(m.id == answer.id for m in world.client.cached_messages)
    await bob.set_reaction(answer, "😐", reacted=True)

    state = await bot.storage.ratings.get_reaction(reply_id, user_of(bob), "reaction")
    assert state is not None and state.emojis == ("😐",) and state.funniness == -1


async def test_reactions_on_unknown_messages_and_custom_emoji_are_ignored(
    bot: Bot, world: DiscordWorld
) -> None:
    alice, carol = world.member("alice"), world.member("carol")
    chatter = await alice.send(world.channel, "my own joke, no bot involved")
    await carol.react(chatter, "🤣")

    await alice.send(world.channel, f"{world.bot_mention} {SETUP}")
    answer = world.last_bot_message()
    emoji = world.guild.create_emoji("kekw")
    await carol.react(answer, f"{emoji.name}:{emoji.id}")

    assert await count(bot, "reaction_events") == 0


# -- ratings: buttons -------------------------------------------------------------------------


async def test_a_button_press_is_recorded_and_answered_privately(bot: Bot, world: DiscordWorld) -> None:
    alice = world.member("alice")
    await alice.send(world.channel, f"{world.bot_mention} {SETUP}")
    answer = world.last_bot_message()
    reply_id = await reply_for(bot, answer)

    result = await alice.click(answer, custom_id="1:rate:funny")

    assert result.ephemeral and result.response is not None
    assert result.response.content == f"Noted: {core_module.RATING_LABELS[Rating.FUNNY]}"
    state = await bot.storage.ratings.get_reaction(reply_id, user_of(alice), "button")
    assert state is not None and state.rating == "funny" and state.funniness == 1


async def test_buttons_keep_working_after_a_restart(bot: Bot, world: DiscordWorld) -> None:
    bob = world.user("bob")
    await bob.send_dm(SETUP)
    [answer] = world.dm_bot_messages(bob)
    reply_id = await reply_for(bot, answer)

    await world.restart(bot.client())
    result = await bob.click(answer, custom_id="1:rate:inappropriate")

    assert result.response is not None and result.response.content.startswith("Noted: inappropriate")
    state = await bot.storage.ratings.get_reaction(reply_id, user_of(bob), "button")
    assert state is not None and state.rating == "inappropriate" and state.appropriateness == -1


async def test_forged_and_stale_buttons_get_a_polite_answer(bot: Bot, world: DiscordWorld) -> None:
    old = await world.plant_bot_message(
        world.channel, "from an older version", ["rate:abc:lol", "1:rate:funny"]
    )
    alice = world.member("alice")

    forged = await alice.click(old, custom_id="rate:abc:lol")
    stale = await alice.click(old, custom_id="1:rate:funny")  # on a message with no punchline

    assert forged.ephemeral and forged.response is not None
    assert forged.response.content == FORGED_TEXT
    assert stale.ephemeral and stale.response is not None
    assert stale.response.content == core_module.MSG_STALE
    assert await count(bot, "reaction_events") == 0


# -- shutdown ---------------------------------------------------------------------------------


async def test_stopping_answers_replies_in_progress_and_turns_new_setups_away(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    async with simulated_discord(bot.client()) as world:
        bob, carol = world.user("bob"), world.user("carol")
        bot.generator.block()
        # Only this step is meant to time out, so only it gets a short settle timeout; the
        # steps after it keep simcord's usual one (0.3 s is too tight for a loaded machine).
        usual, world.env.settle_timeout = world.env.settle_timeout, 0.3
        with pytest.raises(TimeoutError):  # the bot is still thinking about bob's setup
            await bob.send_dm(SETUP)
        world.env.settle_timeout = usual
        assert world.dm_bot_messages(bob) == []

        client = world.client
        assert isinstance(client, PunchlineDiscord)
        draining = asyncio.create_task(client.drain(timeout=30))
        await asyncio.sleep(0.01)
        assert not draining.done()
        bot.generator.unblock()
        assert await draining is True
        await world.env.settle()
        assert [m.content for m in world.dm_bot_messages(bob)] == [PUNCHLINE]

        await carol.send_dm(SETUP)
        assert [m.content for m in world.dm_bot_messages(carol)] == [RESTARTING_TEXT]
        assert len(bot.generator.calls) == 1


async def test_a_failing_slash_command_answers_kindly(bot: Bot, world: DiscordWorld) -> None:
    """Discord refuses the punchline once (a 500): the user is told, never shown a traceback."""
    alice = world.member("alice")
    world.env.inject_error("POST", "/webhooks/*", status=500, times=1)

    result = await alice.slash(world.channel, "joke", setup=SETUP)

    [error] = world.take_errors()
    assert isinstance(getattr(error, "original", error), discord.HTTPException)
    shown = [m.content for m in [result.response, *result.followups] if m is not None]
    assert SORRY_TEXT in shown
    assert not any("Traceback" in text or "500" in text for text in shown)


# -- punchlines on request ---------------------------------------------------------------------


async def test_punchline_this_answers_the_target_message_in_the_channel(
    bot: Bot, world: DiscordWorld
) -> None:
    alice, bob = world.member("alice"), world.member("bob")
    target = await alice.send(world.channel, "Why do Yoda's jokes always suck?")
    result = await bob.context_menu(world.channel, "Punchline this", target)

    assert result.ephemeral and result.response is not None
    assert result.response.content == "Answered in the channel."
    answer = world.last_bot_message(world.channel)
    assert answer.content == PUNCHLINE
    assert answer.reference is not None and answer.reference.message_id == target.id
    assert custom_ids(answer) == [f"1:rate:{r.value}" for r in Rating] + ["1:again"]
    reply_id = await reply_for(bot, answer)
    assert [c.setup for c in bot.generator.calls] == ["Why do Yoda's jokes always suck?"]
    # The stored setup is Alice's words (her /forget and opt-out follow it), not Bob's.
    asked = await bot.storage.requests.setup_of(reply_id)
    assert asked is not None and asked[1] == user_of(alice)


async def test_punchline_this_on_a_message_it_cannot_answer_says_so_privately(
    bot: Bot, world: DiscordWorld
) -> None:
    alice, bob = world.member("alice"), world.member("bob")
    spanish = await alice.send(world.channel, "¿Por qué el pollo cruzó la carretera?")
    result = await bob.context_menu(world.channel, "Punchline this", spanish)
    assert result.ephemeral and result.response is not None
    assert result.response.content == core_module.MSG_NOT_ENGLISH
    assert world.bot_messages(world.channel) == []  # nothing in the channel
    assert bot.generator.calls == []


async def test_slash_joke_count_three_sends_three_different_punchlines(bot: Bot, world: DiscordWorld) -> None:
    # A server channel is in family mode: 3 candidates for the first, 4 for each "another one".
    bot.generator.answer_with(*["One."] * 3, *["Two."] * 4, "Three.")
    result = await world.member("alice").slash(world.channel, "joke", setup=SETUP, count=3)
    assert result.response is not None and result.response.content == "One."
    sent = [m.content for m in world.bot_messages(world.channel)]
    assert sent == ["One.", "Two.", "Three."]
    for message in world.bot_messages(world.channel):
        await reply_for(bot, message)  # each rateable on its own
    assert {c.setup for c in bot.generator.calls} == {SETUP}


async def test_slash_joke_without_a_setup_answers_one_it_picks(bot: Bot, world: DiscordWorld) -> None:
    result = await world.member("alice").slash(world.channel, "joke")
    assert result.response is not None
    [asked] = bot.generator.calls
    assert result.response.content == f"{asked.setup}\n\n{PUNCHLINE}"


async def test_another_one_button_posts_a_new_punchline(bot: Bot, world: DiscordWorld) -> None:
    bot.generator.answer_with("First.", "First.", "Second.")
    alice = world.member("alice")
    first = (await alice.slash(world.channel, "joke", setup=SETUP)).response
    assert first is not None
    pressed = await alice.click(first.message, custom_id="1:again")
    assert pressed.ephemeral and pressed.response is not None
    assert pressed.response.content == "🔁 Another one, posted."
    latest = world.last_bot_message(world.channel)
    assert latest.content == "Second." and latest.reference is not None
    assert latest.reference.message_id == first.message.id
    await reply_for(bot, latest)
