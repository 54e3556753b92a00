"""`punchline chat`: a local chat with the same core, storage and model as the chat bots.

Input and output are injected text streams, so tests drive the REPL with `io.StringIO`. After
each punchline the user may rate it from the keyboard; ratings are stored like button presses.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
from typing import TextIO

from bot.clock import Clock
from bot.core import texts
from bot.core.rating_desk import BUTTON_SOURCE
from bot.core.service import BotCore
from bot.runtime import open_runtime
from bot.types import (
    ChatKind,
    ChatRef,
    IncomingSetup,
    MessageRef,
    OutgoingReply,
    Platform,
    Rating,
    UserRef,
)
from config.settings import Settings
from model.types import Generator

log = logging.getLogger(__name__)

CONSOLE_CHAT = ChatRef(Platform.CONSOLE, "console", ChatKind.PRIVATE, "console")
RATE_PROMPT = "   rate: [f]unny [m]eh [i]nappropriate, Enter to skip > "
PROMPT = "you> "
RATING_KEYS: dict[str, Rating] = {
    "f": Rating.FUNNY,
    "funny": Rating.FUNNY,
    "m": Rating.MEH,
    "meh": Rating.MEH,
    "i": Rating.INAPPROPRIATE,
    "inappropriate": Rating.INAPPROPRIATE,
}
CONSOLE_HELP = (
    "Commands: /help, /stats, /privacy, /forget, /optout, /optin, /reload [adapter_dir], /quit (or Ctrl-D)."
)
FORGET_PROMPT = "   type yes to erase it all > "


def local_user_name() -> str:
    """The login name, or "local" where there is none (containers)."""
    try:
        return getpass.getuser() or "local"
    except (KeyError, OSError):
        return "local"


class ConsoleChat:
    """The read-eval-print loop over a `BotCore`."""

    def __init__(self, core: BotCore, stdin: TextIO, stdout: TextIO, user_name: str = "local"):
        self.core = core
        self.stdin = stdin
        self.stdout = stdout
        # A console user is the bot's owner: `Access.is_admin` grants Platform.CONSOLE admin
        # rights (e.g. /reload), since whoever runs `punchline chat` owns the model anyway.
        self.user = UserRef(Platform.CONSOLE, user_name, user_name)
        self.pending: str | None = None  # a line typed at the rating prompt that was not a rating

    def _say(self, text: str, end: str = "\n") -> None:
        self.stdout.write(text + end)
        self.stdout.flush()

    async def _read(self, prompt: str) -> str | None:
        """One line, None at end of input. Reading blocks, so it runs in a thread."""
        self._say(prompt, end="")
        line = await asyncio.to_thread(self.stdin.readline)
        if line == "":
            self._say("")
            return None
        return line.rstrip("\r\n")

    async def run(self) -> int:
        """Chat until /quit or end of input; returns the exit status (0)."""
        self._say("🎤 Punchline — type a joke setup, get a punchline. " + CONSOLE_HELP)
        while True:
            line: str | None
            if self.pending is not None:
                line, self.pending = self.pending, None
            else:
                line = await self._read(PROMPT)
            if line is None:
                return 0
            if not await self.handle_line(line):
                return 0

    async def handle_line(self, line: str) -> bool:
        """Handle one typed line; False means quit."""
        command = line.strip().lower()
        if command in ("/quit", "/exit", "/q"):
            self._say("Bye!")
            return False
        if command in ("/help", "/start"):
            self._say(await self.core.help_for(CONSOLE_CHAT, self.user) + "\n" + CONSOLE_HELP)
            return True
        name, _, argument = line.strip().partition(" ")
        if name.lower() == "/reload":
            await self._reload(argument.strip())  # the path keeps its case
            return True
        if command == "/stats":
            self._say(await self.core.stats_text(CONSOLE_CHAT))
            return True
        if command in ("/privacy", "/forget", "/optout", "/optin"):
            await self._privacy(command)
            return True
        if command.startswith("/"):
            self._say(f"Unknown command {command.split()[0]} — {CONSOLE_HELP}")
            return True
        if not command:
            return True  # an empty line at the prompt: nothing to do
        reply = await self.core.handle_setup(IncomingSetup(CONSOLE_CHAT, self.user, line, addressed=True))
        if reply is not None:
            await self._show(reply)
        return True

    async def _privacy(self, command: str) -> None:
        """/privacy, /forget (after typing yes), /optout, /optin."""
        desk = self.core.privacy
        if command == "/privacy":
            self._say(await desk.privacy_text(self.user))
        elif command == "/forget":
            self._say(texts.MSG_FORGET_WHAT)
            answer = await self._read(FORGET_PROMPT)
            if answer is not None and answer.strip().lower() == "yes":
                self._say(await desk.forget(self.user))
            else:
                self._say("Nothing erased.")
        else:
            self._say(await desk.set_training(self.user, opted_in=command == "/optin"))

    async def _reload(self, adapter_dir: str) -> None:
        """`/reload [adapter_dir]`: load a new adapter into the running model."""
        self._say(f"Loading {adapter_dir or 'the configured adapter'}…")
        self._say(await self.core.admin.reload_adapter(self.user, adapter_dir or None))

    async def _show(self, reply: OutgoingReply) -> None:
        self._say(f"bot> {reply.text}")
        if not reply.rateable or reply.reply_id is None:
            return
        # The console has no message ids: the reply's own id names its "message".
        ref = MessageRef(CONSOLE_CHAT, str(reply.reply_id))
        await self.core.reply_sent(reply.reply_id, ref)
        answer = await self._read(RATE_PROMPT)
        if answer is None:
            return
        key = answer.strip().lower()
        if not key:
            return
        rating = RATING_KEYS.get(key)
        if rating is None:
            # Not a rating: the user moved on, treat the line as their next input.
            self.pending = answer
            return
        self._say("   " + await self.core.ratings.rate(ref, self.user, rating, BUTTON_SOURCE))


async def run_chat(
    settings: Settings,
    stdin: TextIO,
    stdout: TextIO,
    *,
    generator: Generator | None = None,
    clock: Clock | None = None,
    user_name: str | None = None,
) -> int:
    """Open the runtime (storage and the model, no battles), chat on the streams, close it.

    Without `generator` the in-process worker loads here; a `PunchlineError` says why it cannot.
    """
    if generator is None:
        adapter = settings.model.adapter
        stdout.write(
            f"Loading {settings.model.base}" + (f" with adapter {adapter}" if adapter else "") + "…\n"
        )
        stdout.flush()
    async with open_runtime(settings, generator=generator, clock=clock, battles=False) as runtime:
        chat = ConsoleChat(runtime.core, stdin, stdout, user_name or local_user_name())
        return await chat.run()
