"""The shared prompt template, text normalisation, echo filters and `punchline.json`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.adapter_meta import AdapterMetadata, new_version_id, same_base_model
from model.filters import dedupe_key, echo_ratio, is_echo, is_empty, keep_candidate
from model.prompt import DEFAULT_TEMPLATE, build_prompt
from model.text import clean_text
from model.types import AdapterError


def test_normalise_collapses_whitespace_and_drops_controls() -> None:
    assert clean_text("  Why\tdo\n\nYoda's\u200b jokes\x00 suck?  ") == "Why do Yoda's jokes suck?"
    # Composed and decomposed forms become one.
    assert clean_text("cafe\u0301") == "caf\u00e9"
    # Right-to-left text and emoji are kept as they are.
    assert clean_text("למה 🤣") == "למה 🤣"


def test_prompt_puts_the_normalised_setup_in_the_template() -> None:
    prompt = build_prompt("  Why do Yoda's jokes always suck? ")
    assert prompt == DEFAULT_TEMPLATE.replace("{setup}", "Why do Yoda's jokes always suck?")
    assert build_prompt("x", template="Q: {setup} A:") == "Q: x A:"
    with pytest.raises(ValueError):
        build_prompt("x", template="no placeholder")


def test_echo_filters_catch_the_untuned_failure_mode() -> None:
    setup = "Why was Jared from Subway caught up in a scandal?"
    assert is_echo(setup, "Jared from Subway was caught up in a scandal")
    assert not is_echo(setup, "He had a foot-long problem.")
    assert echo_ratio(setup, "") == 0.0
    assert is_empty(" ... !? ") and not is_empty("ok")


def test_keep_candidate_drops_repeats_ignoring_case_and_punctuation() -> None:
    seen: set[str] = set()
    setup = "Why do cows wear bells?"
    assert keep_candidate(setup, "Their horns don't work.", seen)
    assert not keep_candidate(setup, "their HORNS don't work!", seen)
    assert dedupe_key("Their horns don't work.") in seen


def test_metadata_round_trip(tmp_path: Path) -> None:
    meta = AdapterMetadata(
        version=new_version_id(),
        base_model="google/flan-t5-large",
        hyperparameters={"r": 16, "alpha": 32},
        metrics={"eval_loss": 2.5},
    )
    meta.save(tmp_path)
    loaded = AdapterMetadata.load(tmp_path)
    assert loaded == meta
    assert loaded.prompt_template == DEFAULT_TEMPLATE


def test_metadata_errors_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="does not exist"):
        AdapterMetadata.load(tmp_path / "missing")
    with pytest.raises(AdapterError, match="no punchline.json"):
        AdapterMetadata.load(tmp_path)
    (tmp_path / "punchline.json").write_text("{not json")
    with pytest.raises(AdapterError, match="corrupt"):
        AdapterMetadata.load(tmp_path)
    (tmp_path / "punchline.json").write_text(json.dumps({"version": "v1"}))
    with pytest.raises(AdapterError, match="corrupt"):
        AdapterMetadata.load(tmp_path)


def test_version_ids_are_unique_and_sortable() -> None:
    ids = {new_version_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("v") for i in ids)


def test_local_directory_matches_its_hub_id() -> None:
    assert same_base_model("../shared/data/flan-t5-large", "google/flan-t5-large")
    assert same_base_model("google/flan-t5-large", "google/flan-t5-large")
    assert not same_base_model("google/flan-t5-base", "google/flan-t5-large")


def test_a_version_that_is_no_plain_name_is_refused(tmp_path: Path) -> None:
    # The version names cache directories: "../" in it would write outside the cache.
    for bad in ["../../etc", "v1/../../x", "", "-v1", "v 1", "a" * 81]:
        (tmp_path / "punchline.json").write_text(
            json.dumps({"version": bad, "base_model": "b"}), encoding="utf-8"
        )
        with pytest.raises(AdapterError, match="corrupt"):
            AdapterMetadata.load(tmp_path)
    (tmp_path / "punchline.json").write_text(
        json.dumps({"version": "v20261201-0930-ab12", "base_model": "b"})
    )
    assert AdapterMetadata.load(tmp_path).version == "v20261201-0930-ab12"
