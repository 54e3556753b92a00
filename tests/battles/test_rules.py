"""The state machine, scoring and Elo as plain functions: injected times, no sleeping."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from bot.battles import state
from bot.battles.elo import DEFAULT_RATING, EloRating, apply_round, expected_score, format_elo_table
from bot.battles.models import (
    AuthorKind,
    Battle,
    BotOutcome,
    Entry,
    Phase,
    RefusalReason,
    SetupSource,
)
from bot.battles.scoring import ScoringRules, bot_outcome, identical_ids, score_round
from bot.types import ChatKind, ChatRef, Platform, UserRef

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHAT = ChatRef(Platform.TELEGRAM, "-100", ChatKind.GROUP, "Group")
ALICE = UserRef(Platform.TELEGRAM, "1", "Alice")
BOB = UserRef(Platform.TELEGRAM, "2", "Bob")
CAROL = UserRef(Platform.TELEGRAM, "3", "Carol")
RULES = ScoringRules(vote_points=1000, win_bonus=100, unanimous_bonus=200)


def battle(phase: Phase = Phase.ENTRY, **kw: object) -> Battle:
    base = dict(
        id=7,
        chat=CHAT,
        starter=ALICE,
        setup="Why did the chicken cross the road?",
        source=SetupSource.GIVEN,
        classic=None,
        phase=phase,
        created_at=T0,
        entry_deadline=T0 + timedelta(seconds=120),
        vote_deadline=T0 + timedelta(seconds=180) if phase is not Phase.ENTRY else None,
    )
    base.update(kw)
    return Battle(**base)  # type: ignore[arg-type]


def person(entry_id: int, user: UserRef, text: str, position: int | None = None) -> Entry:
    return Entry(entry_id, 7, AuthorKind.PERSON, text, T0, T0, author=user, position=position)


def bot(entry_id: int, text: str, version: str = "v1", position: int | None = None) -> Entry:
    return Entry(entry_id, 7, AuthorKind.BOT, text, T0, T0, version=version, reply_id=99, position=position)


def classic(entry_id: int, text: str, position: int | None = None) -> Entry:
    return Entry(entry_id, 7, AuthorKind.CLASSIC, text, T0, T0, position=position)


# -- entries ---------------------------------------------------------------------------------


def test_entries_are_taken_until_the_deadline_and_not_at_it() -> None:
    b = battle()
    assert state.check_entry(b, BOB, T0 + timedelta(seconds=119.9)) is None
    late = state.check_entry(b, BOB, T0 + timedelta(seconds=120))
    assert late is not None and late.reason is RefusalReason.ENTRIES_CLOSED
    assert "#7" in late.text


def test_no_entries_once_voting_and_none_from_bots() -> None:
    refusal = state.check_entry(battle(Phase.VOTING), BOB, T0)
    assert refusal is not None and refusal.reason is RefusalReason.ENTRIES_CLOSED
    robot = UserRef(Platform.TELEGRAM, "9", "Robo", is_bot=True)
    refusal = state.check_entry(battle(), robot, T0)
    assert refusal is not None and refusal.reason is RefusalReason.BOTS_CANNOT_PLAY


@pytest.mark.parametrize("text", ["", "   ", "\n\t", None, "\u200b"])
def test_empty_entries_are_refused(text: str | None) -> None:
    refusal = state.clean_entry(text, 50)
    assert isinstance(refusal, state.Refusal) and refusal.reason is RefusalReason.EMPTY_ENTRY


def test_long_entries_are_refused_with_the_limit_and_short_ones_cleaned() -> None:
    refusal = state.clean_entry("x" * 51, 50)
    assert isinstance(refusal, state.Refusal) and refusal.reason is RefusalReason.LONG_ENTRY
    assert "51" in refusal.text and "50" in refusal.text
    assert state.clean_entry("  To get to\n the   other side ", 50) == "To get to the other side"
    assert state.clean_entry("x" * 50, 50) == "x" * 50


def test_setups_given_with_the_command() -> None:
    assert state.clean_setup(None, 100) is None
    assert state.clean_setup("   ", 100) is None
    assert state.clean_setup(" Why  so? ", 100) == "Why so?"
    long = state.clean_setup("y" * 101, 100)
    assert isinstance(long, state.Refusal) and long.reason is RefusalReason.BAD_SETUP


# -- closing the entry phase -------------------------------------------------------------------


def test_players_count_people_once_and_the_bot_once_but_not_the_classic() -> None:
    entries = [person(1, ALICE, "a"), bot(2, "b", "v1"), bot(3, "c", "v2"), classic(4, "d")]
    assert state.count_players(entries) == 2


def test_too_few_players_end_the_round() -> None:
    entries = [bot(1, "b"), classic(2, "c")]
    close = state.close_entry(battle(), entries, T0 + timedelta(seconds=120), 60, 2, random.Random(1))
    assert close.phase is Phase.TOO_FEW and close.players == 1 and close.positions == {}
    assert close.vote_deadline is None


def test_enough_players_open_voting_with_a_shuffled_complete_ballot() -> None:
    entries = [person(1, ALICE, "a"), person(2, BOB, "b"), bot(3, "c"), classic(4, "d")]
    now = T0 + timedelta(seconds=121)
    orders = set()
    for seed in range(20):
        close = state.close_entry(battle(), entries, now, 60, 2, random.Random(seed))
        assert close.phase is Phase.VOTING
        assert close.vote_deadline == now + timedelta(seconds=60)
        assert sorted(close.positions) == [1, 2, 3, 4]
        assert sorted(close.positions.values()) == [1, 2, 3, 4]
        orders.add(tuple(sorted(close.positions, key=close.positions.get)))  # type: ignore[arg-type]
    assert len(orders) > 5  # really shuffled, not submission order


def test_closing_twice_is_an_error() -> None:
    with pytest.raises(ValueError):
        state.close_entry(battle(Phase.VOTING), [], T0, 60, 2, random.Random(0))


def test_due_follows_the_current_phase() -> None:
    assert not state.is_due(battle(), T0 + timedelta(seconds=119))
    assert state.is_due(battle(), T0 + timedelta(seconds=120))
    assert not state.is_due(battle(Phase.VOTING), T0 + timedelta(seconds=150))
    assert state.is_due(battle(Phase.VOTING), T0 + timedelta(seconds=180))
    assert not state.is_due(battle(Phase.FINISHED), T0 + timedelta(days=1))


# -- votes -------------------------------------------------------------------------------------


def ballot() -> list[Entry]:
    return [person(1, ALICE, "a", 2), person(2, BOB, "b", 1), bot(3, "c", position=3)]


def test_a_vote_goes_to_the_entry_at_its_ballot_position() -> None:
    chosen = state.check_vote(battle(Phase.VOTING), CAROL, ballot(), 1, T0 + timedelta(seconds=150))
    assert isinstance(chosen, Entry) and chosen.id == 2


def test_no_vote_for_ones_own_entry() -> None:
    refusal = state.check_vote(battle(Phase.VOTING), ALICE, ballot(), 2, T0 + timedelta(seconds=150))
    assert isinstance(refusal, state.Refusal) and refusal.reason is RefusalReason.OWN_ENTRY
    # but for anyone else's, the bot's included
    assert isinstance(state.check_vote(battle(Phase.VOTING), ALICE, ballot(), 3, T0), Entry)


@pytest.mark.parametrize(
    ("phase", "at", "position", "reason"),
    [
        (Phase.ENTRY, 10, 1, RefusalReason.NOT_VOTING),
        (Phase.VOTING, 180, 1, RefusalReason.VOTING_OVER),
        (Phase.FINISHED, 150, 1, RefusalReason.VOTING_OVER),
        (Phase.CANCELLED, 150, 1, RefusalReason.VOTING_OVER),
        (Phase.VOTING, 150, 4, RefusalReason.BAD_CHOICE),
        (Phase.VOTING, 150, 0, RefusalReason.BAD_CHOICE),
    ],
)
def test_votes_that_do_not_count(phase: Phase, at: int, position: int, reason: RefusalReason) -> None:
    refusal = state.check_vote(battle(phase), CAROL, ballot(), position, T0 + timedelta(seconds=at))
    assert isinstance(refusal, state.Refusal) and refusal.reason is reason


def test_cancel_by_the_starter_or_an_admin_only() -> None:
    b = battle()
    assert state.check_cancel(b, ALICE, privileged=False) is None
    assert state.check_cancel(b, BOB, privileged=True) is None
    refusal = state.check_cancel(b, BOB, privileged=False)
    assert refusal is not None and refusal.reason is RefusalReason.NOT_ALLOWED and "Alice" in refusal.text
    nothing = state.check_cancel(battle(Phase.FINISHED), ALICE, privileged=True)
    assert nothing is not None and nothing.reason is RefusalReason.NOTHING_RUNNING
    assert state.check_cancel(None, ALICE, True) is not None


# -- scoring -----------------------------------------------------------------------------------


def test_points_follow_the_vote_share_plus_the_win_bonus() -> None:
    entries = [person(1, ALICE, "a"), person(2, BOB, "b"), bot(3, "c")]
    score = score_round(entries, {1: 3, 2: 1}, RULES)
    assert score.total_votes == 4 and score.winner_id == 1 and not score.unanimous
    assert score.of(1).points == 750 + 100 and score.of(1).won
    assert score.of(2).points == 250 and not score.of(2).won
    assert score.of(3).points == 0 and score.of(3).votes == 0


def test_a_unanimous_win_earns_the_bigger_bonus() -> None:
    entries = [person(1, ALICE, "a"), person(2, BOB, "b")]
    score = score_round(entries, {1: 3}, RULES)
    assert score.unanimous and score.of(1).points == 1000 + 200
    # a single vote is not unanimity worth a bonus of its own
    single = score_round(entries, {1: 1}, RULES)
    assert not single.unanimous and single.of(1).points == 1000 + 100


def test_a_tie_at_the_top_has_no_winner() -> None:
    entries = [person(1, ALICE, "a"), person(2, BOB, "b"), bot(3, "c")]
    score = score_round(entries, {1: 2, 2: 2, 3: 1}, RULES)
    assert score.winner_id is None
    assert [s.points for s in score.scores] == [400, 400, 200]
    assert not any(s.won for s in score.scores)


def test_identical_entries_score_nothing_and_cannot_win() -> None:
    entries = [
        person(1, ALICE, "To get to the other side!"),
        classic(2, "to get to the OTHER side"),
        person(3, BOB, "Chickens can't read road signs"),
    ]
    assert identical_ids(entries) == {1, 2}
    score = score_round(entries, {1: 3, 2: 1, 3: 1}, RULES)
    assert score.of(1).identical and score.of(1).points == 0 and not score.of(1).won
    assert score.of(2).points == 0
    # the only original entry wins though it had fewer votes
    assert score.winner_id == 3 and score.of(3).points == 200 + 100


def test_no_votes_no_points() -> None:
    entries = [person(1, ALICE, "a"), bot(2, "b")]
    score = score_round(entries, {}, RULES)
    assert score.total_votes == 0 and score.winner_id is None
    assert all(s.points == 0 for s in score.scores)
    assert bot_outcome(entries, score) is None


def test_people_against_the_bot() -> None:
    entries = [person(1, ALICE, "a"), person(2, BOB, "b"), bot(3, "c"), classic(4, "d")]
    assert bot_outcome(entries, score_round(entries, {1: 2, 3: 1}, RULES)) is BotOutcome.PEOPLE
    assert bot_outcome(entries, score_round(entries, {3: 2, 1: 1}, RULES)) is BotOutcome.BOT
    assert bot_outcome(entries, score_round(entries, {3: 1, 1: 1}, RULES)) is BotOutcome.TIE
    # the classic is not "people": it winning still leaves people and bot tied at zero
    assert bot_outcome(entries, score_round(entries, {4: 3}, RULES)) is BotOutcome.TIE
    no_bot = entries[:2]
    assert bot_outcome(no_bot, score_round(no_bot, {1: 1}, RULES)) is None


# -- Elo ---------------------------------------------------------------------------------------


def test_elo_moves_points_from_loser_to_winner_and_counts_games() -> None:
    out = apply_round({}, {"v1": 800, "v2": 200})
    assert out["v1"].rating == pytest.approx(DEFAULT_RATING + 16)
    assert out["v2"].rating == pytest.approx(DEFAULT_RATING - 16)
    assert (out["v1"].wins, out["v1"].games, out["v2"].losses) == (1, 1, 1)


def test_elo_draws_and_upsets() -> None:
    table = {"old": EloRating("old", 1200.0), "new": EloRating("new", 1000.0)}
    draw = apply_round(table, {"old": 100, "new": 100})
    assert draw["old"].rating < 1200 and draw["new"].rating > 1000 and draw["new"].draws == 1
    upset = apply_round(table, {"old": 0, "new": 500})
    gain = upset["new"].rating - 1000
    assert gain == pytest.approx(32 * (1 - expected_score(1000, 1200)))
    assert gain > 16  # beating a stronger version is worth more than an even match
    assert sum(r.rating for r in upset.values()) == pytest.approx(2200)


def test_elo_three_versions_are_rated_from_the_same_starting_table() -> None:
    forward = apply_round({}, {"a": 3, "b": 2, "c": 1})
    backward = apply_round({}, {"c": 1, "b": 2, "a": 3})
    assert forward == backward
    assert forward["a"].games == 2 and forward["a"].wins == 2 and forward["c"].losses == 2
    assert forward["b"].rating == pytest.approx(DEFAULT_RATING)


def test_elo_table_text() -> None:
    assert format_elo_table([]) == ""
    text = format_elo_table([EloRating("v1", 990.0, 1, 0, 0, 1), EloRating("v2", 1010.0, 1, 1, 0, 0)])
    assert text.index("v2: 1010") < text.index("v1: 990")
    assert "1W 0D 0L" in text
