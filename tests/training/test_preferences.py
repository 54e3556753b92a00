"""Preference data from hand-written export rows: every rule and guard of `training.preferences`,
the time split, the share caps and replay. Pure Python, no model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.fakes.export_rows import T0, Row, battle_entry, rated_reply, rating, reply, write_export
from training import preferences as p
from training.errors import DataError
from training.feedback import FeedbackRow, parse_row, read_feedback
from training.preferences import PreferenceData, PreferenceOptions, build_preferences, time_split
from training.readers import MALFORMED, Joke, read_jokes
from training.replay import kto_replay_rows, replay_count, replay_jokes
from training.shares import cap_shares, largest_share

SETUP = "Why did the chicken cross the road?"
NO_HOLDOUT = PreferenceOptions(eval_fraction=0.0, max_chat_share=1.0, max_rater_share=1.0)


def parsed(rows: list[Row]) -> list[FeedbackRow]:
    out = [parse_row(r) for r in rows]
    assert all(isinstance(r, FeedbackRow) for r in out), out
    return [r for r in out if isinstance(r, FeedbackRow)]


def build(rows: list[Row], options: PreferenceOptions = NO_HOLDOUT) -> PreferenceData:
    return build_preferences(parsed(rows), options)


def verdicts(data: PreferenceData) -> dict[str, tuple[bool, str]]:
    return {r.punchline: (r.desirable, r.reason) for r in data.kto.train + data.kto.eval}


# --- reading --------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_export_files_read_the_same_in_both_formats(tmp_path: Path, suffix: str) -> None:
    rows = [
        *rated_reply(1, SETUP, "To get to the other side.", {"ann": 1, "bob": 1}),
        battle_entry(7, 70, SETUP, "Chickens!", 2, 3, won=True, author_kind="person", rater="cat"),
    ]
    result = read_feedback(write_export(rows, tmp_path / f"export{suffix}"))
    assert result.seen == 4 and not result.skipped
    kinds = [r.kind for r in result.rows]
    assert kinds == ["reply", "rating", "rating", "battle"]
    entry = result.rows[-1]
    assert entry.won is True and entry.battle_id == "7" and entry.rater == "cat" and entry.funny == 2
    assert result.rows[0].created_at == T0 and result.rows[1].rater == "ann"
    assert result.rows[0].funniness == 1.0 and result.rows[0].appropriateness == 1.0
    assert entry.appropriateness is None and not entry.flagged


def test_unusable_rows_are_counted_by_reason(tmp_path: Path) -> None:
    good = reply(1, SETUP, "Ha.", funny=2)
    path = tmp_path / "export.jsonl"
    write_export([good, {**good, "kind": "poll"}, {**good, "created_at": "yesterday"}], path)
    with path.open("a", encoding="utf-8") as f:
        f.write("not json\n")
    result = read_feedback(path)
    assert len(result.rows) == 1
    assert result.skipped == {"unknown kind": 1, "no created_at": 1, MALFORMED: 1}


def test_a_file_without_the_export_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jokes.csv"
    path.write_text("ID,Question,Answer\n1,Why?,Because.\n", encoding="utf-8")
    with pytest.raises(DataError, match="expected the export's"):
        read_feedback(path)
    with pytest.raises(DataError, match="does not exist"):
        read_feedback(tmp_path / "missing.csv")


def test_train_reader_skips_per_rater_rows_of_the_new_export(tmp_path: Path) -> None:
    """`punchline train --data export.csv` counts a reply once, not once per rater."""
    rows = rated_reply(1, SETUP, "To get to the other side.", {"ann": 1, "bob": 1, "cat": 1})
    result = read_jokes(write_export(rows, tmp_path / "export.csv"))
    assert [j.answer for j in result.jokes] == ["To get to the other side."]
    assert sum(result.skipped.values()) == 3


# --- rated replies -> KTO rows --------------------------------------------------------------------


def test_kto_verdicts_follow_the_thresholds() -> None:
    rows = [
        *rated_reply(1, "Q1?", "two funny", {"a": 1, "b": 1}),
        *rated_reply(2, "Q2?", "one funny", {"a": 1}),
        *rated_reply(3, "Q3?", "three to one", {"a": 1, "b": 1, "c": 1, "d": -1}),
        *rated_reply(4, "Q4?", "two to one", {"a": 1, "b": 1, "c": -1}),
        *rated_reply(5, "Q5?", "two not funny", {"a": -1, "b": -1}),
        *rated_reply(6, "Q6?", "funny but flagged", {"a": 1, "b": 1, "c": 1}, flagged_by=["d"]),
        *rated_reply(7, "Q7?", "flagged once", {}, flagged_by=["a"]),
    ]
    data = build(rows)
    assert verdicts(data) == {
        "two funny": (True, p.DESIRABLE),
        "three to one": (True, p.DESIRABLE),
        "two not funny": (False, p.UNDESIRABLE_NOT_FUNNY),
        "funny but flagged": (False, p.UNDESIRABLE_FLAGGED),
        "flagged once": (False, p.UNDESIRABLE_FLAGGED),
    }
    assert data.summary.kto[p.TOO_FEW_RATERS] == 1 and data.summary.kto[p.NOT_CLEAR] == 1
    assert all(r.weight == 1.0 and r.source == "reply" for r in data.kto.train)
    assert next(r for r in data.kto.train if r.punchline == "two funny").raters == ("a", "b")


def test_thresholds_are_options() -> None:
    rows = [
        *rated_reply(1, "Q1?", "one funny", {"a": 1}),
        *rated_reply(2, "Q2?", "two to one", {"a": 1, "b": 1, "c": -1}),
        *rated_reply(3, "Q3?", "flagged once", {"a": 1, "b": 1}, flagged_by=["c"]),
    ]
    options = PreferenceOptions(
        min_raters=1,
        desirable_funniness=0.3,
        min_flags=2,
        eval_fraction=0,
        max_chat_share=1,
        max_rater_share=1,
    )
    assert {k for k, (good, _) in verdicts(build(rows, options)).items() if good} == {
        "one funny",
        "two to one",
        "flagged once",
    }
    with pytest.raises(ValueError, match="desirable_funniness"):
        build([], PreferenceOptions(desirable_funniness=-0.6))


def test_older_exports_fall_back_to_the_aggregate_reply_row() -> None:
    rows = [
        reply(1, "Q1?", "liked by three", funny=3),
        reply(2, "Q2?", "liked but flagged", funny=3, inappropriate=1),
        reply(3, "Q3?", "liked by one", funny=1),
    ]
    assert verdicts(build(rows)) == {
        "liked by three": (True, p.DESIRABLE),
        "liked but flagged": (False, p.UNDESIRABLE_FLAGGED),
    }


def test_an_anonymous_flag_in_the_aggregate_row_counts_too() -> None:
    rows = rated_reply(1, "Q1?", "ok?", {"a": 1, "b": 1})
    rows[0] = {**rows[0], "inappropriate": 1, "appropriateness": 0.6667}  # an anonymous 🤮 count
    assert verdicts(build(rows)) == {"ok?": (False, p.UNDESIRABLE_FLAGGED)}


def test_a_person_counts_once_with_their_latest_vote() -> None:
    rows = [
        rating(1, "Q?", "changed mind", "a", -1, minutes=0),
        rating(1, "Q?", "changed mind", "a", 1, minutes=5),
        rating(1, "Q?", "changed mind", "b", 1, minutes=1),
        rating(2, "Q2?", "one keen rater", "a", 1, minutes=0),
        rating(2, "Q2?", "one keen rater", "a", 1, minutes=1),
    ]
    data = build(rows)
    assert verdicts(data) == {"changed mind": (True, p.DESIRABLE)}
    assert data.summary.kto[p.TOO_FEW_RATERS] == 1


def test_duplicate_punchlines_are_merged_with_everyones_votes() -> None:
    rows = [
        rating(1, "Why so serious?", "Because.", "a", 1, minutes=0),
        rating(2, "why so SERIOUS?", "because", "b", 1, minutes=10, chat="chat-b"),
        rating(2, "why so SERIOUS?", "because", "a", 1, minutes=10, chat="chat-b"),
    ]
    data = build(rows)
    assert len(data.kto.train) == 1
    row = data.kto.train[0]
    assert row.desirable and row.raters == ("a", "b")
    assert row.created_at > T0 and row.chat == "chat-b"  # the newest occurrence's
    assert data.summary.kto[p.DUPLICATE] == 1


def test_a_punchline_flagged_anywhere_is_never_desirable_or_chosen() -> None:
    rude = "Something rude."
    rows = [
        *rated_reply(1, "Q1?", rude, {}, flagged_by=["a"]),
        *rated_reply(2, "Q2?", "something RUDE", {"b": 1, "c": 1}),  # same words, other setup
        battle_entry(9, 90, "Q3?", rude, 3, 4, won=True),
        battle_entry(9, 91, "Q3?", "A clean one.", 1, 4),
    ]
    data = build(rows)
    assert verdicts(data) == {
        rude: (False, p.UNDESIRABLE_FLAGGED),
        "something RUDE": (False, p.UNDESIRABLE_FLAGGED),
    }
    assert data.dpo.train == [] and data.summary.dpo[p.WINNER_FLAGGED] == 1


def test_opted_out_people_are_never_used() -> None:
    options = PreferenceOptions(
        eval_fraction=0, max_chat_share=1, max_rater_share=1, exclude_raters=frozenset({"gone"})
    )
    rows = [
        *rated_reply(1, "Q1?", "needs gone", {"a": 1, "gone": 1}),
        *rated_reply(2, "Q2?", "only gone", {"gone": 1}, flagged_by=["gone"]),  # no fallback to the aggregate
        battle_entry(5, 50, "Q5?", "by gone", 3, 4, won=True, author_kind="person", rater="gone"),
        battle_entry(5, 51, "Q5?", "bot entry", 1, 4),
        battle_entry(6, 60, "Q6?", "bot wins", 3, 4, won=True),
        battle_entry(6, 61, "Q6?", "gone loses", 1, 4, author_kind="person", rater="gone"),
        battle_entry(6, 62, "Q6?", "classic loses", 0, 4, author_kind="classic"),
    ]
    data = build(rows, options)
    assert data.kto.train == [] and data.summary.kto[p.TOO_FEW_RATERS] == 2
    assert [(x.chosen, x.rejected) for x in data.dpo.train] == [("bot wins", "classic loses")]
    assert data.summary.dpo[p.WINNER_OPTED_OUT] == 1 and data.summary.dpo[p.OPTED_OUT] == 1
    assert data.summary.rows[p.OPTED_OUT] == 4
    assert data.counts()["feedback_rows"] == 10


# --- battles -> DPO pairs -------------------------------------------------------------------------


def test_the_winner_is_paired_with_every_entry_that_got_fewer_votes() -> None:
    rows = [
        battle_entry(1, 10, SETUP, "Winner.", 4, 7, won=True, author_kind="person", rater="ann"),
        battle_entry(1, 11, SETUP, "Bot entry.", 2, 7),
        battle_entry(1, 12, SETUP, "Classic.", 1, 7, author_kind="classic"),
        battle_entry(1, 13, SETUP, "Nobody liked it.", 0, 7, author_kind="person", rater="bob"),
        battle_entry(1, 14, SETUP, "WINNER", 0, 7),  # says the same as the winner
    ]
    data = build(rows)
    pairs = data.dpo.train
    assert {(x.chosen, x.rejected) for x in pairs} == {
        ("Winner.", "Bot entry."),
        ("Winner.", "Classic."),
        ("Winner.", "Nobody liked it."),
    }
    assert all(math.isclose(x.weight, 1 / 3) for x in pairs)
    assert all(x.author == "ann" and x.battle_id == "1" and x.setup == SETUP for x in pairs)
    assert data.summary.dpo[p.IDENTICAL] == 1 and data.summary.dpo[p.PAIRS] == 3


def test_rounds_without_enough_votes_or_a_winner_give_no_pairs() -> None:
    rows = [
        battle_entry(1, 10, "Q1?", "Two votes.", 2, 2, won=True),
        battle_entry(1, 11, "Q1?", "None.", 0, 2, author_kind="person", rater="a"),
        battle_entry(2, 20, "Q2?", "Tie one.", 2, 4),
        battle_entry(2, 21, "Q2?", "Tie two.", 2, 4, author_kind="person", rater="a"),
        battle_entry(3, 30, "Q3?", "Won.", 2, 3, won=True),
        battle_entry(3, 31, "Q3?", "Lost.", 1, 3, author_kind="person", rater="a"),
    ]
    data = build(rows)
    assert [(x.chosen, x.rejected, x.weight) for x in data.dpo.train] == [("Won.", "Lost.", 1.0)]
    assert data.summary.dpo[p.TOO_FEW_VOTES] == 1 and data.summary.dpo[p.NO_WINNER] == 1
    assert data.summary.dpo[p.ROUNDS] == 3


def test_the_same_pair_from_several_rounds_counts_once() -> None:
    rows = []
    for battle in range(3):
        rows += [
            battle_entry(
                battle, 10 * battle, SETUP, "Classic.", 3, 4, won=True, author_kind="classic", minutes=battle
            ),
            battle_entry(battle, 10 * battle + 1, SETUP, "Bot.", 1, 4, minutes=battle),
        ]
    data = build(rows)
    assert len(data.dpo.train) == 1 and data.summary.dpo[p.DUPLICATE_PAIR] == 2
    assert data.dpo.train[0].battle_id == "2"


# --- the time split -------------------------------------------------------------------------------


def test_held_out_rows_are_newer_than_training_rows() -> None:
    rows = []
    for i in range(20):
        rows += rated_reply(i, f"Q{i}?", f"punchline {i}", {"a": 1, "b": 1}, minutes=i)
    data = build(rows, PreferenceOptions(eval_fraction=0.1, max_chat_share=1, max_rater_share=1))
    assert [r.punchline for r in data.kto.eval] == ["punchline 18", "punchline 19"]
    assert max(r.created_at for r in data.kto.train) < min(r.created_at for r in data.kto.eval)


def test_rows_sharing_the_boundary_time_stay_in_training() -> None:
    rows = [
        *rated_reply(1, "Q1?", "old", {"a": 1, "b": 1}, minutes=0),
        *rated_reply(2, "Q2?", "same time one", {"a": 1, "b": 1}, minutes=5),
        *rated_reply(3, "Q3?", "same time two", {"a": 1, "b": 1}, minutes=5),
        *rated_reply(4, "Q4?", "newest", {"a": 1, "b": 1}, minutes=9),
    ]
    split = time_split(build(rows).kto.train, 0.5)
    assert [r.punchline for r in split.eval] == ["newest"]
    assert time_split(split.train[:1], 0.5).eval == []  # a single row is never held out


# --- share caps -----------------------------------------------------------------------------------


def test_no_chat_carries_more_than_its_share() -> None:
    rows = []
    for i in range(12):  # a lively chat
        rows += rated_reply(i, f"Q{i}?", f"lively {i}", {"a": 1, "b": 1}, chat="lively")
    for c in range(5):  # five quieter ones
        rows += rated_reply(100 + c, f"R{c}?", f"quiet {c}", {"a": 1, "b": 1}, chat=f"quiet-{c}")
    options = PreferenceOptions(eval_fraction=0, max_chat_share=0.25, max_rater_share=1)
    data = build(rows, options)
    kto = data.kto.train
    assert len(kto) == 17  # nothing dropped, only weighed
    assert largest_share([r.weight for r in kto], [r.chat for r in kto]) == pytest.approx(0.25)
    assert data.summary.kto[p.CHAT_CAPPED] == 12
    assert all(r.weight == 1.0 for r in kto if r.chat != "lively")


def test_a_troll_cannot_outvote_everyone() -> None:
    """A rater with hundreds of votes weighs a tenth of all votes; honest verdicts win."""
    rows = []
    for i in range(30):  # the troll loves every punchline; two honest people hate them
        rows += rated_reply(i, f"Q{i}?", f"p{i}", {"troll": 1, f"h{i}": -1, f"k{i}": -1})
    for i in range(30, 60):  # and the troll alone rates another thirty as funny with a friend
        rows += rated_reply(i, f"Q{i}?", f"p{i}", {"troll": 1, f"f{i}": 1})
    data = build(rows, PreferenceOptions(eval_fraction=0, max_chat_share=1, max_rater_share=0.1))
    rows_by = {r.punchline: r for r in data.kto.train}
    assert all(not rows_by[f"p{i}"].desirable for i in range(30))
    assert data.summary.kto[p.VOTES_CAPPED] == 60
    # Where the troll's vote made up half the verdict, the row weighs less than a full one.
    assert all(rows_by[f"p{i}"].weight < 0.6 for i in range(30, 60))


def test_battle_pairs_are_capped_by_chat_and_by_winning_author() -> None:
    rows = []
    for b in range(10):  # one person wins every round in one chat
        rows += [
            battle_entry(
                b,
                10 * b,
                f"Q{b}?",
                f"mine {b}",
                3,
                4,
                won=True,
                author_kind="person",
                rater="star",
                chat="c0",
            ),
            battle_entry(b, 10 * b + 1, f"Q{b}?", f"bot {b}", 1, 4, chat="c0"),
        ]
    for b in range(10, 20):  # the bot wins elsewhere
        rows += [
            battle_entry(b, 10 * b, f"Q{b}?", f"bot wins {b}", 3, 4, won=True, chat=f"c{b}"),
            battle_entry(b, 10 * b + 1, f"Q{b}?", f"classic {b}", 1, 4, author_kind="classic", chat=f"c{b}"),
        ]
    options = PreferenceOptions(eval_fraction=0, max_chat_share=0.25, max_rater_share=0.1)
    pairs = build(rows, options).dpo.train
    weights = [x.weight for x in pairs]
    assert largest_share(weights, [x.author for x in pairs]) <= 0.1 + 1e-6
    assert largest_share(weights, [x.chat for x in pairs]) <= 0.25 + 1e-6


def test_cap_shares_water_fills_and_loosens_when_it_cannot_hold() -> None:
    result = cap_shares([6.0, 1.0, 1.0, 1.0, 1.0], ["a", "b", "c", "d", None], 0.4)
    assert result.weights[0] == pytest.approx(8 / 3)  # c = 0.4 * (4 + c)
    assert result.capped == 1 and not result.loosened
    assert largest_share(result.weights, ["a", "b", "c", "d", None]) == pytest.approx(0.4)
    one_chat = cap_shares([3.0, 1.0], ["a", "a"], 0.25)
    assert one_chat.weights == [3.0, 1.0] and one_chat.loosened
    two = cap_shares([3.0, 1.0], ["a", "b"], 0.25)
    assert two.weights == [1.0, 1.0] and two.loosened and two.capped == 1
    assert cap_shares([5.0, 1.0], ["a", "b"], 1.0).weights == [5.0, 1.0]


def test_summary_describes_every_reason() -> None:
    rows = [*rated_reply(1, "Q1?", "ok", {"a": 1}), battle_entry(1, 10, "Q?", "x", 1, 1, won=True)]
    text = build(rows).summary.describe()
    assert "1 dropped: too few raters" in text and "1 dropped round: too few votes" in text
    assert "feedback rows: 1 battle, 1 rating, 1 reply" in text


# --- replay ---------------------------------------------------------------------------------------


def test_replay_draws_corpus_jokes_reproducibly() -> None:
    corpus = [Joke(str(i), f"Why {i}?", f"Because {i}.", None, "qa_csv") for i in range(50)]
    assert replay_count(40, 0.5) == 20 and replay_count(3, 0.0) == 0
    first, second = replay_jokes(corpus, 20, seed=3), replay_jokes(corpus, 20, seed=3)
    assert first == second and len(set(j.id for j in first)) == 20
    assert replay_jokes(corpus, 80, seed=3) != corpus and len(replay_jokes(corpus, 80, seed=3)) == 50
    rows = kto_replay_rows(first[:2])
    assert all(r.desirable and r.source == "replay" and r.weight == 1.0 for r in rows)
    assert (rows[0].setup, rows[0].punchline) == (first[0].question, first[0].answer)
    with pytest.raises(ValueError):
        replay_count(10, -1)
