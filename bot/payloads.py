"""Button payloads: what a button hands back when it is pressed (Telegram's callback_data,
Discord's custom_id). One codec for every button the bot shows.

    encode(RatePayload(Rating.FUNNY))  -> "1:rate:funny"    under a punchline
    encode(VotePayload(3))             -> "1:vote:3"        on a battle ballot
    encode(EnterPayload())             -> "1:enter"         on a battle announcement (Discord)
    encode(ForgetPayload())            -> "1:forget"        confirming /forget (it forgets whoever presses)
    encode(AgainPayload())             -> "1:again"         🔁 under a punchline: another one
    decode(data)                       -> one of those, or None

The leading number is the format's version, so a format change can tell old buttons from new
ones. Payloads carry no ids: the pressed message itself says which reply or round a button
belongs to (front-ends pass it along), so a client that sends made-up data can name no other
reply or round, and ids cannot be enumerated. Parsing is strict: exactly these shapes, ASCII
only, at most 64 bytes (Telegram's limit); anything else (forged, truncated, from an older
version of the bot) decodes to None and gets a polite "that button doesn't work any more".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.types import Rating

VERSION = "1"
MAX_BYTES = 64  # Telegram's callback_data limit; Discord allows 100
MAX_POSITION = 999

_RATE = re.compile(r"1:rate:(funny|meh|inappropriate)")
_VOTE = re.compile(r"1:vote:([1-9][0-9]{0,2})")
_ENTER = re.compile(r"1:enter")
_FORGET = re.compile(r"1:forget")
_AGAIN = re.compile(r"1:again")


@dataclass(frozen=True, slots=True)
class RatePayload:
    rating: Rating


@dataclass(frozen=True, slots=True)
class VotePayload:
    position: int  # 1-based place on the ballot


@dataclass(frozen=True, slots=True)
class EnterPayload:
    pass


@dataclass(frozen=True, slots=True)
class ForgetPayload:
    """The confirmation under /forget's answer: it erases whoever presses it, nobody else."""


@dataclass(frozen=True, slots=True)
class AgainPayload:
    """🔁 under a punchline: a different punchline to the same setup."""


Payload = RatePayload | VotePayload | EnterPayload | ForgetPayload | AgainPayload


def encode(payload: Payload) -> str:
    """The string a button carries for `payload`."""
    if isinstance(payload, RatePayload):
        return f"{VERSION}:rate:{payload.rating.value}"
    if isinstance(payload, VotePayload):
        if not 1 <= payload.position <= MAX_POSITION:
            raise ValueError(f"ballot position {payload.position} is out of range")
        return f"{VERSION}:vote:{payload.position}"
    if isinstance(payload, ForgetPayload):
        return f"{VERSION}:forget"
    if isinstance(payload, AgainPayload):
        return f"{VERSION}:again"
    return f"{VERSION}:enter"


def decode(data: str | bytes | None) -> Payload | None:
    """The payload in `data`, or None when it is not exactly one of the shapes above."""
    if not isinstance(data, str) or not data.isascii() or len(data) > MAX_BYTES:
        return None
    if match := _RATE.fullmatch(data):
        return RatePayload(Rating(match.group(1)))
    if match := _VOTE.fullmatch(data):
        return VotePayload(int(match.group(1)))
    if _ENTER.fullmatch(data):
        return EnterPayload()
    if _FORGET.fullmatch(data):
        return ForgetPayload()
    if _AGAIN.fullmatch(data):
        return AgainPayload()
    return None
