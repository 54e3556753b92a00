"""Helpers around simcord 3.2.1 for driving Punchline's real discord.py client in tests.

simcord runs the real, unmodified discord.py client against an in-memory Discord: users send
messages, react, run slash commands and click buttons as real gateway events and REST calls;
every actor verb waits until the bot has finished reacting, so assertions need no sleeps.

    async with simulated_discord(client, guild_ids=settings.discord.guilds) as world:
        alice = world.member("alice")
        await alice.send(world.channel, f"{world.bot_mention} Why did the chicken cross?")
        reply = world.last_bot_message()
        await alice.react(reply, "🤣")               # MESSAGE_REACTION_ADD -> on_raw_reaction_add
        result = await alice.slash(world.channel, "joke", setup="Why?")
        result = await alice.click(reply, custom_id="rate:1:funny")
        bob = world.user("bob"); await bob.send_dm("Why?")   # DMs

What simcord models that matters here (checked against its source):
- Intents are enforced server-side: events outside the declared intents are dropped, and
  without the message-content intent guild message text is blanked unless the message mentions
  the bot or is a pinging reply to it (DMs always carry text) — as on real Discord.
- Reactions emit MESSAGE_REACTION_ADD / _REMOVE gateway events, so discord.py dispatches
  `on_raw_reaction_add/remove` even for messages outside its cache (e.g. after
  `world.restart(new_client)`). Custom emoji are written "name:id".
- Slash commands must have been synced (`strict_sync`), to the guild they are invoked in or
  globally; `guild_ids` pre-creates guilds with those ids so guild-scoped syncs succeed.
- A button can only be clicked if it is on the message (as in the Discord client). A button
  with a forged or stale custom_id therefore has to be on a message first: `plant_bot_message`
  posts one through the bot's own client, as an older version of the bot would have.
- Errors the bot lets escape its handlers are collected and fail the test at exit
  (`check_errors=True`, the default) unless the test takes them with `world.take_errors()`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import discord
import simcord
from simcord import ChannelHandle, GuildHandle, MemberActor, UserHandle


@dataclass
class DiscordWorld:
    """A running simulated Discord around one bot: a guild with one text channel to start with."""

    env: simcord.Env
    guild: GuildHandle
    channel: ChannelHandle
    _members: dict[str, MemberActor] = field(default_factory=dict)
    _users: dict[str, UserHandle] = field(default_factory=dict)
    _errors_seen: int = 0

    @property
    def client(self) -> discord.Client:
        """The bot under test (the current one after `restart`)."""
        return self.env.bot

    @property
    def bot_id(self) -> int:
        user = self.env.bot.user
        assert user is not None, "the bot is not logged in"
        return user.id

    @property
    def bot_mention(self) -> str:
        return f"<@{self.bot_id}>"

    def member(self, name: str, *, bot: bool = False) -> MemberActor:
        """A guild member (created on first use); `bot=True` makes another bot account."""
        if name not in self._members:
            self._members[name] = self.guild.add_member(self.env.create_user(name, bot=bot))
        return self._members[name]

    def user(self, name: str, *, bot: bool = False) -> UserHandle:
        """A user outside the guild who talks to the bot in DMs (`await user.send_dm(text)`)."""
        if name not in self._users:
            self._users[name] = self.env.create_user(name, bot=bot)
        return self._users[name]

    def text_channel(self, name: str) -> ChannelHandle:
        """Another text channel in the guild (its id can go into an allow-list)."""
        return self.guild.create_text_channel(name)

    def messages(self, channel: ChannelHandle | None = None) -> list[discord.Message]:
        """Every message in a channel (default: the main one), oldest first."""
        return (channel or self.channel).history()

    def bot_messages(self, channel: ChannelHandle | None = None) -> list[discord.Message]:
        """The messages the bot posted in a channel, oldest first."""
        return [m for m in self.messages(channel) if m.author.id == self.bot_id]

    def last_bot_message(self, channel: ChannelHandle | None = None) -> discord.Message:
        sent = self.bot_messages(channel)
        assert sent, "the bot has not posted anything in this channel"
        return sent[-1]

    def dm_bot_messages(self, user: UserHandle) -> list[discord.Message]:
        """The bot's messages in its DM with `user`, oldest first."""
        return self.bot_messages(user.dm_channel)

    async def plant_bot_message(
        self,
        channel: ChannelHandle,
        content: str,
        custom_ids: Sequence[str],
    ) -> discord.Message:
        """Post a message *as the bot*, with one button per custom_id, through its real client.

        Stands in for a message an older version of the bot sent: its buttons can carry stale
        or malformed custom_ids that the current code must answer politely.
        """
        view = discord.ui.View(timeout=None)
        for custom_id in custom_ids:
            view.add_item(discord.ui.Button(label=custom_id[:80], custom_id=custom_id))
        target = self.client.get_channel(channel.id)
        assert isinstance(target, discord.abc.Messageable), "unknown channel"
        sent = await target.send(content, view=view)
        await self.env.settle()
        # The test planted it, not the running bot: forget the planted view so that a click
        # reaches the bot's own handlers, as after a restart.
        view.stop()
        return sent

    async def send_reply_without_ping(
        self, member: MemberActor, channel: ChannelHandle, content: str, reply_to: discord.Message
    ) -> None:
        """`member` replies to `reply_to` with the ping switched off (the client's "@ OFF").

        simcord's actors always ping on reply, so this goes through simcord's backend (not its
        public API; pinned to simcord 3.2.1). Without the message-content intent Discord then
        blanks the text, since the bot is not mentioned.
        """
        from simcord.backend.models.message import AllowedMentions

        backend = self.env.backend
        reference = backend.normalize_message_reference(
            channel.id, {"channel_id": str(reply_to.channel.id), "message_id": str(reply_to.id)}
        )
        backend.create_message(
            channel.id,
            member.id,
            content,
            reference=reference,
            allowed_mentions=AllowedMentions(replied_user=False),
        )
        await self.env.settle()

    def take_errors(self) -> list[BaseException]:
        """Errors the bot let escape since the last call; taking them keeps them from failing
        the test at exit (for tests that provoke a failure on purpose)."""
        taken = list(self.env.errors_since(self._errors_seen))
        self._errors_seen = self.env.error_cursor
        return taken

    def unexpected_errors(self) -> list[BaseException]:
        """Errors nobody took with `take_errors`."""
        return list(self.env.errors_since(self._errors_seen))

    async def restart(self, client: discord.Client) -> None:
        """Replace the bot with a fresh client (new process), keeping the simulated world."""
        await self.env.restart_bot(client)

    def requests(self, method: str, path_glob: str) -> list[Any]:
        """The REST calls the bot made that match, e.g. ("POST", "/channels/*/typing")."""
        from fnmatch import fnmatch

        return [r for r in self.env.http_requests if r.method == method and fnmatch(r.path, path_glob)]


@asynccontextmanager
async def simulated_discord(
    client: discord.Client,
    *,
    guild_ids: Iterable[int] = (),
    channel_name: str = "general",
    **env_options: Any,
) -> AsyncIterator[DiscordWorld]:
    """Run `client` under simcord until the block ends; yields the `DiscordWorld`.

    `guild_ids`: guilds created with these ids before the bot logs in (so a bot that syncs its
    commands to configured guilds finds them); without it one guild with a fresh id is made.
    `env_options` go to `simcord.Env` (`strict_sync`, `check_errors`, `approved_intents`,
    `settle_timeout`). At exit, errors the bot let escape fail the test (unless
    `check_errors=False`).

    Keep simcord's `settle_timeout` (5 s) for whole worlds: besides bounding how long a verb
    waits, it decides which of the bot's sleeps count as parked (a timer due later than the
    settle deadline is left to `advance_time`), so a much longer one makes a verb wait out the
    bot's phase timers on the real clock.
    """
    env = simcord.Env(client, **env_options)
    guilds = [env.create_guild(f"Guild {gid}", id=gid) for gid in guild_ids]
    await env.start()
    # Unlike `simcord.run`, no `env.time_context()` here: a context variable set in an async
    # fixture's setup cannot be reset in its teardown. Test code needing simcord's virtual
    # clock (discord.utils.utcnow in the test body) can enter `world.env.time_context()` itself.
    try:
        if not guilds:
            guilds.append(env.create_guild("Test Guild"))
        channel = guilds[0].create_text_channel(channel_name)
        world = DiscordWorld(env=env, guild=guilds[0], channel=channel)
        yield world
    finally:
        await env.shutdown()
    if env.check_errors and (errors := world.unexpected_errors()):
        raise ExceptionGroup(f"the bot raised {len(errors)} error(s) during the test", errors)


class SimClock:
    """The service's clock, following simcord's virtual time once the world runs."""

    def __init__(self) -> None:
        self.env: simcord.Env | None = None

    def now(self) -> datetime:
        assert self.env is not None, "the simulated world is not running yet"
        return self.env.now()

    def monotonic(self) -> float:
        return time.monotonic()
