"""The button payload codec: every button's data round-trips, and nothing else parses."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.battles.models import deep_link_argument, parse_deep_link
from bot.payloads import (
    MAX_BYTES,
    AgainPayload,
    EnterPayload,
    ForgetPayload,
    RatePayload,
    VotePayload,
    decode,
    encode,
)
from bot.types import Rating

ALL_PAYLOADS = [RatePayload(r) for r in Rating] + [
    VotePayload(1),
    VotePayload(999),
    EnterPayload(),
    ForgetPayload(),
    AgainPayload(),
]


def test_every_payload_round_trips_within_telegrams_limit() -> None:
    for payload in ALL_PAYLOADS:
        data = encode(payload)
        assert decode(data) == payload
        assert data.startswith("1:")  # the format's version
        assert len(data.encode()) <= MAX_BYTES


def test_payloads_carry_no_ids() -> None:
    # The pressed message names the reply or round, so a button cannot point at another one.
    assert encode(RatePayload(Rating.FUNNY)) == "1:rate:funny"
    assert encode(VotePayload(3)) == "1:vote:3"
    assert encode(EnterPayload()) == "1:enter"


def test_forged_stale_and_malformed_payloads_are_rejected() -> None:
    for forged in [
        None,
        "",
        "1",
        "1:",
        "1:rate",
        "1:rate:",
        "1:rate:hilarious",
        "1:rate:funny:extra",
        "1:rate:FUNNY",
        " 1:rate:funny",
        "2:rate:funny",
        "1:vote:",
        "1:vote:0",
        "1:vote:01",
        "1:vote:1000",
        "1:vote:-1",
        "1:vote:１",
        "1:enter ",
        "1:enter:5",
        "rate:1:funny",
        "battle:12:vote:1",
        "battle:12:enter",
        "1:rate:funny\n",
        "1:rate:" + "y" * 80,
    ]:
        assert decode(forged) is None, forged


def test_deep_links_round_trip() -> None:
    token = "Ab3_xY9-kLmN0pQr"
    assert parse_deep_link(deep_link_argument(token)) == token
    assert parse_deep_link("b_") is None and parse_deep_link("hello") is None
    assert parse_deep_link("battle_5") is None, "old links with a round number stay dead"
    assert parse_deep_link(deep_link_argument("short")) is None


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_and_never_parse_as_anything_unexpected(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    decoded = decode(text)
    assert decoded is None or encode(decoded) == text  # only the exact canonical forms parse
    assert decode(data) is None  # bytes are not a payload


@given(st.text(max_size=120))
def test_arbitrary_text_parses_only_in_canonical_form(text: str) -> None:
    decoded = decode(text)
    assert decoded is None or encode(decoded) == text
