"""The Telegram front-end: a python-telegram-bot Application over the bot core.

    application = build_application(settings, core, battles)
    await run_telegram(application, stop)        # polls until `stop` is set, then shuts down

`register_handlers` is the one place that lists everything the Telegram bot answers. The Bot
API base URL is a setting (``PUNCHLINE_TELEGRAM__BASE_URL``), for a self-hosted Bot API server or
the fake one the tests run on loopback. Flood limits (429 with retry_after) are absorbed by
PTB's AIORateLimiter, which waits and retries instead of dropping the message. What each update
does lives in `bot.telegram.handlers` and `bot.telegram.battles`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from telegram import BotCommand, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    ChosenInlineResultHandler,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    MessageReactionHandler,
    filters,
)

from bot.battles.service import BattleService
from bot.coordination.lease import Lease
from bot.core.service import BotCore
from bot.telegram.battles import TelegramAnnouncer, TelegramBattleUI
from bot.telegram.handlers import TelegramHandlers
from bot.telegram.inline import TelegramInline
from bot.telegram.outbox import ChatOutbox
from bot.telegram.privacy import TelegramPrivacyUI
from bot.telegram.sender import TelegramSender
from bot.types import Platform
from config.errors import PunchlineError
from config.settings import Settings

log = logging.getLogger(__name__)

# Telegram sends reactions only to bots that ask for them by name (docs/DESIGN.md, decision 4). Edited
# messages and channel posts are left out on purpose: the bot never answers them.
ALLOWED_UPDATES: list[str] = [
    Update.MESSAGE,
    Update.CALLBACK_QUERY,
    Update.MESSAGE_REACTION,
    Update.MESSAGE_REACTION_COUNT,
    Update.MY_CHAT_MEMBER,
    Update.INLINE_QUERY,
    Update.CHOSEN_INLINE_RESULT,  # sent only with BotFather's /setinlinefeedback
]

BOT_COMMANDS: tuple[BotCommand, ...] = (
    BotCommand("joke", "Answer a joke setup: /joke <setup>"),
    BotCommand("stats", "How my punchlines are rated here"),
    BotCommand("help", "How to ask and how to rate"),
    BotCommand("privacy", "What I keep about you, and why"),
    BotCommand("forget", "Erase everything I keep about you"),
    BotCommand("optout", "Keep what you write and rate out of training"),
    BotCommand("optin", "Let what you write and rate help training"),
    BotCommand("family", "Family mode here: /family on|off (admins)"),
)
BATTLE_COMMANDS: tuple[BotCommand, ...] = (  # handled by bot.telegram.battles
    BotCommand("battle", "Start a joke battle: /battle [setup]"),
    BotCommand("leaderboard", "This group's battle leaderboard"),
    BotCommand("cancel", "Cancel a battle (admins) or your secret entry"),
)

_RUNTIME_KEY = "punchline.telegram"  # application.bot_data entry read by run_telegram
BATTLE_GROUP = -1  # handler groups: battles first, then the core
CORE_GROUP = 0


class TelegramStartError(PunchlineError):
    """The Telegram front-end cannot start: no token, a rejected token, an unreachable API."""


@dataclass(frozen=True, slots=True)
class _Runtime:
    poll_timeout: float
    poll_interval: float
    base_url: str
    commands: tuple[BotCommand, ...]
    outbox: ChatOutbox
    stop_timeout_s: float


def build_application(settings: Settings, core: BotCore, battles: BattleService | None = None) -> Application:
    """A configured, not yet started Application: handlers, rate limiter, base URL, commands.

    With `battles`, the battle handlers are registered too. Raises `TelegramStartError`
    without a token.
    """
    tg = settings.telegram
    if tg.token is None or not tg.token.get_secret_value().strip():
        raise TelegramStartError("no Telegram bot token: set PUNCHLINE_TELEGRAM__TOKEN")
    # httpx logs every request URL at INFO, and Bot API URLs carry the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    application = (
        ApplicationBuilder()
        .token(tg.token.get_secret_value().strip())
        .base_url(tg.base_url)
        .base_file_url(tg.base_file_url)
        .rate_limiter(AIORateLimiter(max_retries=tg.max_retries))
        .connect_timeout(tg.connect_timeout)
        .read_timeout(tg.read_timeout)
        .write_timeout(tg.read_timeout)
        .get_updates_connect_timeout(tg.connect_timeout)
        .get_updates_read_timeout(tg.read_timeout)  # PTB adds the long-poll timeout to it
        # Updates run concurrently: one slow generation must not hold up everybody else.
        .concurrent_updates(tg.concurrent_updates)
        .post_init(_post_init)
        .build()
    )
    commands = BOT_COMMANDS + (BATTLE_COMMANDS if battles is not None else ())
    outbox = ChatOutbox()
    application.bot_data[_RUNTIME_KEY] = _Runtime(
        tg.poll_timeout, tg.poll_interval, tg.base_url, commands, outbox, tg.stop_timeout_s
    )
    sender = TelegramSender(application.bot, tg, outbox)
    battle_ui = None
    if battles is not None:
        battles.attach(Platform.TELEGRAM, TelegramAnnouncer(sender))
        battle_ui = TelegramBattleUI(battles, sender)
    register_handlers(
        application,
        TelegramHandlers(core, tg, sender, battle_ui),
        TelegramPrivacyUI(core, sender),
        battle_ui,
        TelegramInline(core, settings.inline),
    )
    return application


def register_handlers(
    application: Application,
    bot: TelegramHandlers,
    privacy: TelegramPrivacyUI,
    battles: TelegramBattleUI | None,
    inline: TelegramInline,
) -> None:
    """Every update the Telegram bot answers, in one list.

    Battle handlers sit in group -1, ahead of the core's (group 0): a battle handler that
    consumes an update (a reply entry, a secret entry) stops it there; one that does not lets
    it through to the core. Edited messages are ignored on purpose (the answer was given).
    """
    new = filters.UpdateType.MESSAGE
    text = filters.TEXT & ~filters.COMMAND & new
    add = application.add_handler
    if battles is not None:
        add(CommandHandler("battle", battles.on_battle, filters=new), BATTLE_GROUP)
        add(CommandHandler("cancel", battles.on_cancel, filters=new), BATTLE_GROUP)
        add(CommandHandler("leaderboard", battles.on_leaderboard, filters=new), BATTLE_GROUP)
        # Admin-only like /reload, so not in the menu.
        add(CommandHandler("promote", battles.on_promote, filters=new), BATTLE_GROUP)
        add(
            CommandHandler("start", battles.on_start_battle, filters=new & filters.ChatType.PRIVATE),
            BATTLE_GROUP,
        )
        add(
            MessageHandler(text & filters.ChatType.GROUPS & filters.REPLY, battles.on_group_reply),
            BATTLE_GROUP,
        )
        add(MessageHandler(text & filters.ChatType.PRIVATE, battles.on_private_text), BATTLE_GROUP)
    add(CommandHandler(("start", "help"), bot.on_help, filters=new), CORE_GROUP)
    add(CommandHandler("stats", bot.on_stats, filters=new), CORE_GROUP)
    add(CommandHandler("joke", bot.on_joke, filters=new), CORE_GROUP)
    # Admin-only, so not in the command menu everyone sees; the core checks who asks.
    add(CommandHandler("reload", bot.on_reload, filters=new), CORE_GROUP)
    add(CommandHandler("privacy", privacy.on_privacy, filters=new), CORE_GROUP)
    add(CommandHandler("forget", privacy.on_forget, filters=new), CORE_GROUP)
    add(CommandHandler("optout", privacy.on_optout, filters=new), CORE_GROUP)
    add(CommandHandler("optin", privacy.on_optin, filters=new), CORE_GROUP)
    add(CommandHandler("family", privacy.on_family, filters=new), CORE_GROUP)
    add(MessageHandler(filters.COMMAND & new, bot.on_unknown_command), CORE_GROUP)
    add(MessageHandler(text & filters.ChatType.PRIVATE, bot.on_private_text), CORE_GROUP)
    add(MessageHandler(text & filters.ChatType.GROUPS, bot.on_group_text), CORE_GROUP)
    add(CallbackQueryHandler(bot.on_button), CORE_GROUP)  # every button; battle ones are routed on
    updated = MessageReactionHandler.MESSAGE_REACTION_UPDATED
    counted = MessageReactionHandler.MESSAGE_REACTION_COUNT_UPDATED
    add(MessageReactionHandler(bot.on_reaction, message_reaction_types=updated), CORE_GROUP)
    add(MessageReactionHandler(bot.on_reaction_count, message_reaction_types=counted), CORE_GROUP)
    add(ChatMemberHandler(bot.on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER), CORE_GROUP)
    # `@bot <setup>` in any chat; non-blocking: a query waiting out the debounce holds no slot.
    add(InlineQueryHandler(inline.on_inline_query, block=False), CORE_GROUP)
    add(ChosenInlineResultHandler(inline.on_chosen), CORE_GROUP)
    application.add_error_handler(bot.on_error)


async def _post_init(application: Application) -> None:
    """Publish the command menu and say what the bot can see in groups."""
    runtime: _Runtime = application.bot_data[_RUNTIME_KEY]
    bot = application.bot
    try:
        await bot.set_my_commands(list(runtime.commands))
    except TelegramError as exc:  # the menu is a nicety; the bot works without it
        log.warning("could not set the bot's command menu: %r", exc)
    if not bot.can_read_all_group_messages:
        log.info(
            "@%s runs in privacy mode: in groups it sees commands and replies to it; mentions "
            "need it to be an admin or privacy mode off (BotFather /setprivacy)",
            bot.username,
        )


async def run_telegram(application: Application, stop: asyncio.Event, lease: Lease | None = None) -> None:
    """Run the bot on the current event loop until `stop` is set, then shut it down cleanly.

    With a `lease` (several `punchline serve` processes, one token), this process polls only
    while it holds the lease, and waits to take over otherwise. Raises `TelegramStartError`
    when the token is rejected or the Bot API cannot be reached.
    """
    runtime: _Runtime = application.bot_data[_RUNTIME_KEY]
    try:
        await application.initialize()  # getMe: checks the token and learns the bot's name
    except InvalidToken:
        raise TelegramStartError(
            "Telegram rejected the bot token (PUNCHLINE_TELEGRAM__TOKEN); get one from @BotFather"
        ) from None
    except TelegramError as exc:
        raise TelegramStartError(
            f"cannot reach the Telegram Bot API at {runtime.base_url} (PUNCHLINE_TELEGRAM__BASE_URL): {exc}"
        ) from None
    try:
        if application.post_init is not None:
            await application.post_init(application)  # run_polling would; we own the loop
        await application.start()
        while not stop.is_set():
            if lease is not None and not await lease.wait(stop):
                break
            await _poll(application, runtime, stop, lease)
    finally:
        if lease is not None:
            await lease.release()
        await _shut_down(application, runtime)


async def _poll(
    application: Application, runtime: _Runtime, stop: asyncio.Event, lease: Lease | None
) -> None:
    """Poll getUpdates until `stop` is set or the lease is lost."""
    assert application.updater is not None
    await application.updater.start_polling(
        poll_interval=runtime.poll_interval,
        timeout=int(runtime.poll_timeout),
        allowed_updates=ALLOWED_UPDATES,
        bootstrap_retries=3,
    )
    log.info("Telegram bot @%s is polling", application.bot.username)
    try:
        if lease is None:
            await stop.wait()
        else:
            await lease.keep(stop)
    finally:
        if application.updater.running:
            await application.updater.stop()


async def _shut_down(application: Application, runtime: _Runtime) -> None:
    """Stop polling, let running handlers finish and the outbox send their replies (each
    bounded by `stop_timeout_s`), close the HTTP clients."""
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        try:
            await asyncio.wait_for(application.stop(), runtime.stop_timeout_s)
        except TimeoutError:
            log.warning(
                "Telegram handlers still running after %.0f s; stopping anyway", runtime.stop_timeout_s
            )
    await runtime.outbox.close(runtime.stop_timeout_s)
    if application.post_stop is not None:
        await application.post_stop(application)
    await application.shutdown()
    if application.post_shutdown is not None:
        await application.post_shutdown(application)
