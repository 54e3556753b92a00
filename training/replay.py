"""Replay: corpus Q/A jokes mixed into every preference run, so the adapter keeps answering.

Preference data says which of the bot's own punchlines landed; on its own it can pull the model
away from answering at all (a shorter, safer reply wins a KTO row as easily as a funny one).
A share of original jokes from the corpus's TRAIN split (never validation or test: the gate
scores the test split) anchors it:
- for KTO they are desirable rows (`source="replay"`): the human punchline is a good answer;
- for DPO they are supervised rows: the trainer adds their token-mean negative log-likelihood
  to the pair loss (`training.align`), the same anchor without inventing a rejected punchline.

`count = round(ratio * preference examples)`; jokes are drawn with a seeded shuffle, so a run
is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime

from training.preferences import KtoRow
from training.readers import Joke

REPLAY = "replay"
CORPUS = "corpus"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # replay rows have no time; they never reach a time split


def replay_count(examples: int, ratio: float) -> int:
    """How many corpus jokes go with `examples` preference examples."""
    if ratio < 0:
        raise ValueError(f"the replay ratio must be >= 0, got {ratio}")
    return round(ratio * examples)


def replay_jokes(train: Sequence[Joke], count: int, seed: int) -> list[Joke]:
    """`count` jokes from the corpus's training split (all of them when it has fewer)."""
    jokes = list(train)
    random.Random(seed).shuffle(jokes)
    return jokes[: max(0, count)]


def kto_replay_rows(jokes: Sequence[Joke]) -> list[KtoRow]:
    """Corpus jokes as desirable KTO rows of weight 1."""
    return [
        KtoRow(
            setup=j.question,
            punchline=j.answer,
            desirable=True,
            weight=1.0,
            chat="",
            raters=(),
            created_at=EPOCH,
            source=REPLAY,
            reason=CORPUS,
        )
        for j in jokes
    ]
