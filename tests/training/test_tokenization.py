"""Tokenisation with the real flan-t5 tokenizer and collation with -100 label padding."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.prompt import DEFAULT_TEMPLATE
from training.readers import Joke
from training.tokenization import (
    LABEL_PAD,
    MaxLengths,
    choose_max_lengths,
    encode_jokes,
    make_collator,
    percentile,
)

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def tokenizer(flan_dir: Path):
    from model.base_model import load_tokenizer

    return load_tokenizer(str(flan_dir))


def test_real_tokenizer_ids(tokenizer) -> None:
    ids = tokenizer("What do you get when you inject human DNA into a goat?")["input_ids"]
    assert ids == [363, 103, 25, 129, 116, 25, 15823, 936, 6642, 139, 3, 9, 18174, 58, 1]
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, len(tokenizer)) == (0, 1, 32_100)


def test_whitespace_is_normalised_before_tokenising(tokenizer) -> None:
    clean = [Joke("1", "Why?", "Because.", None, "t")]
    messy = [Joke("1", "  Why?\n", "Because.   ", None, "t")]
    lengths = MaxLengths(64, 64)
    assert encode_jokes(tokenizer, messy, DEFAULT_TEMPLATE, lengths) == encode_jokes(
        tokenizer, clean, DEFAULT_TEMPLATE, lengths
    )
    # No stray token 3 before </s>.
    assert encode_jokes(tokenizer, messy, DEFAULT_TEMPLATE, lengths)[0]["labels"][-2:] != [3, 1]


def test_collated_labels_are_minus_100_exactly_at_padding(tokenizer) -> None:
    jokes = [
        Joke("1", "What do you call a fish without eyes?", "A fsh.", None, "t"),
        Joke("2", "Why?", "Because the longest punchline of this batch is right here.", None, "t"),
        Joke("3", "Who?", "Me.", None, "t"),
    ]
    features = encode_jokes(tokenizer, jokes, DEFAULT_TEMPLATE, MaxLengths(64, 64))
    batch = make_collator(tokenizer)(features)
    labels, inputs, mask = batch["labels"], batch["input_ids"], batch["attention_mask"]
    width = max(len(f["labels"]) for f in features)
    assert labels.shape == (3, width)
    for row, feature in enumerate(features):
        n = len(feature["labels"])
        assert labels[row, :n].tolist() == feature["labels"]
        assert (labels[row, n:] == LABEL_PAD).all()
        assert LABEL_PAD not in feature["labels"]
        m = len(feature["input_ids"])
        assert inputs[row, :m].tolist() == feature["input_ids"]
        assert (inputs[row, m:] == tokenizer.pad_token_id).all()
        assert mask[row].tolist() == [1] * m + [0] * (inputs.shape[1] - m)
    assert int((labels == LABEL_PAD).sum()) == sum(width - len(f["labels"]) for f in features)


def test_max_lengths_come_from_percentiles_unless_given(tokenizer) -> None:
    jokes = [Joke(str(i), "Why?", "word " * (i % 10 + 1), None, "t") for i in range(100)]
    chosen = choose_max_lengths(tokenizer, jokes, DEFAULT_TEMPLATE)
    assert chosen.source % 8 == 0 and chosen.target % 8 == 0
    assert chosen.target >= 11  # ten words + </s> fit at the 99th percentile
    assert choose_max_lengths(tokenizer, jokes, DEFAULT_TEMPLATE, source=20, target=7) == MaxLengths(20, 7)
    truncated = encode_jokes(tokenizer, jokes, DEFAULT_TEMPLATE, MaxLengths(20, 7))
    assert max(len(f["labels"]) for f in truncated) == 7 and truncated[-1]["labels"][-1] == 1


def test_percentile_nearest_rank() -> None:
    assert percentile([], 99) == 0
    assert percentile(list(range(1, 101)), 50) == 50
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([5, 1, 3], 100) == 5
