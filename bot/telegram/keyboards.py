"""The inline keyboards the Telegram bot shows, their payloads from `bot.payloads`."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.battles.models import ButtonKind, View, deep_link_argument
from bot.payloads import AgainPayload, RatePayload, encode
from bot.types import Rating

# The inline rating buttons under every punchline (docs/DESIGN.md, decision 3), in order.
RATING_BUTTONS: tuple[tuple[Rating, str], ...] = (
    (Rating.FUNNY, "🤣 funny"),
    (Rating.MEH, "😐 meh"),
    (Rating.INAPPROPRIATE, "🤮 inappropriate"),
)
AGAIN_BUTTON = "🔁 another one"
VOTES_PER_ROW = 4


def rating_keyboard(*, again: bool = True) -> InlineKeyboardMarkup:
    """The three rating buttons and, below them, 🔁 for another punchline to the same setup
    (`again=False`: where a new message cannot follow, e.g. under an inline result); the
    message they sit on names the punchline they belong to."""
    rows = [
        [
            InlineKeyboardButton(label, callback_data=encode(RatePayload(rating)))
            for rating, label in RATING_BUTTONS
        ]
    ]
    if again:
        rows.append([InlineKeyboardButton(AGAIN_BUTTON, callback_data=encode(AgainPayload()))])
    return InlineKeyboardMarkup(rows)


def battle_keyboard(view: View, bot_username: str) -> InlineKeyboardMarkup | None:
    """A battle view's buttons, None for none: editMessageText without a reply_markup removes the
    old keyboard (an empty markup would be sent as `{}`, which is no keyboard). The entry button
    is a deep link into the private chat with the bot."""
    if not view.buttons:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    votes: list[InlineKeyboardButton] = []
    for button in view.buttons:
        if button.kind is ButtonKind.ENTER:
            if not button.token:
                continue  # a round from before entry tokens: replies still work
            link = f"https://t.me/{bot_username}?start={deep_link_argument(button.token)}"
            rows.append([InlineKeyboardButton(button.label, url=link)])
        else:
            votes.append(InlineKeyboardButton(button.label, callback_data=button.payload))
    rows += [votes[i : i + VOTES_PER_ROW] for i in range(0, len(votes), VOTES_PER_ROW)]
    return InlineKeyboardMarkup(rows)
