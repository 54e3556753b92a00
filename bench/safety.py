"""Family mode's content filter benchmark: the word list, the classifier and both, side by side.

Measured in one run, on this machine, for each filter:

- quality on the hand-labelled set (tests/data/family_labelled.csv, or `--labelled`):
  precision, recall and false-positive rate, counted by `model.safety.evaluation` exactly as
  the quality test counts them (`--show-errors` prints the rows each filter gets wrong);
- speed: texts/s checking one text per call, as the bot does (every setup, candidate and
  battle entry), over the real sample below (or the labelled set, 20 times, without it), and
  the time to build the filter;
- false refusals on real setups: of `--real` setups drawn at random (seeded) from the Kaggle
  r/Jokes set in $PUNCHLINE_SHARED_DATA, the share each filter flags, and of their original
  punchlines too. r/Jokes is unfiltered, so many of these flags are deserved: the share is an
  upper bound on how often a family chat's clean setup is refused. The word list's most
  frequent terms among the flagged setups follow, to judge them by;
- the cost of decode-time blocking (with $PUNCHLINE_SHARED_DATA's flan-t5 tokenizer): how many
  token sequences the severe tier bans, and the time transformers' `NoBadWordsLogitsProcessor`
  (what the transformers and ONNX Runtime backends ban with) adds to one decoder step at 1 and
  32 rows (CTranslate2 bans inside its C++ decoder and is not measured here).

The classifier is alt-profanity-check (`pip install 'punchline[safety]'`); without it its
rows say "not installed". "wordlist + classifier" is `PUNCHLINE_SAFETY__FILTER=classifier`;
"classifier alone" is there for comparison only.

Usage:
    PUNCHLINE_SHARED_DATA=../shared/data python bench/safety.py     # ~50 s on 2 CPU cores
    python bench/safety.py                          # the labelled set only
    python bench/safety.py --threshold 0.6 --real 5000 --show-errors

The table goes to stdout; the LAST line is one JSON object
{filter: {precision, recall, false_positive_rate, texts_per_s, real_setups_flagged}}.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config.settings import SafetySettings  # noqa: E402
from model.safety import ClassifierFilter, ClassifierMissing, ContentFilter, WordListFilter  # noqa: E402
from model.safety.blocklist import load_blocklist  # noqa: E402
from model.safety.classifier import INSTALL_HINT, load_classifier  # noqa: E402
from model.safety.evaluation import Labelled, Scores, read_labelled, score_filter  # noqa: E402
from model.text import clean_text  # noqa: E402

LABELLED = ROOT / "tests" / "data" / "family_labelled.csv"
KAGGLE = Path("qa_jokes") / "qa_jokes_kaggle_original.csv"
REPEAT_LABELLED = 20  # rounds over the labelled set when timing without real setups
TOP_TERMS = 15
BAN_ROWS = (1, 32)  # decoder rows: one reply alone, a batch of 32 (8 setups x 4 candidates)
BAN_STEPS = 50


@dataclass
class Run:
    name: str
    built_s: float
    scores: Scores
    texts_per_s: float
    real_setups: tuple[int, int] | None = None  # (flagged, of)
    real_punchlines: tuple[int, int] | None = None


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--labelled", type=Path, default=LABELLED, help="text,label CSV (clean|offensive)")
    p.add_argument("--real", type=int, default=2000, help="real setups to sample (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threshold",
        type=float,
        default=SafetySettings().threshold,
        help="the classifier's probability that flags (PUNCHLINE_SAFETY__THRESHOLD)",
    )
    p.add_argument(
        "--wordlist", type=Path, default=None, help="a word list file (PUNCHLINE_SAFETY__WORDLIST)"
    )
    p.add_argument("--show-errors", action="store_true", help="print each filter's misses and false alarms")
    return p.parse_args()


def real_jokes(count: int, seed: int) -> list[tuple[str, str]]:
    """`count` distinct (setup, punchline) pairs from the Kaggle set, cleaned as the bot cleans
    setups, drawn at random; empty without $PUNCHLINE_SHARED_DATA."""
    base = os.environ.get("PUNCHLINE_SHARED_DATA")
    if not base or count <= 0:
        return []
    path = Path(base) / KAGGLE
    if not path.is_file():
        sys.exit(f"bench: {path} is missing (PUNCHLINE_SHARED_DATA={base})")
    pairs: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            setup = clean_text(row["Question"])
            if setup and setup not in pairs:
                pairs[setup] = clean_text(row["Answer"])
    drawn = random.Random(seed).sample(sorted(pairs), min(count, len(pairs)))
    return [(s, pairs[s]) for s in drawn]


def build_filters(args: argparse.Namespace) -> dict[str, tuple[float, ContentFilter | None]]:
    """Each filter with the seconds it took to build (None: the classifier is not installed)."""
    built: dict[str, tuple[float, ContentFilter | None]] = {}
    t0 = time.perf_counter()
    words = WordListFilter(load_blocklist(args.wordlist))
    built["wordlist"] = (time.perf_counter() - t0, words)
    try:
        t0 = time.perf_counter()
        probability = load_classifier()
        probability(["warm up"])  # the first call unpickles the model
        loaded = time.perf_counter() - t0
    except ClassifierMissing:
        built["classifier alone"] = built["wordlist + classifier"] = (0.0, None)
        return built
    built["classifier alone"] = (loaded, ClassifierFilter(None, args.threshold, probability))
    built["wordlist + classifier"] = (loaded, ClassifierFilter(words, args.threshold, probability))
    return built


def texts_per_s(check: Callable[[str], object], texts: list[str]) -> float:
    t0 = time.perf_counter()
    for text in texts:
        check(text)
    return len(texts) / (time.perf_counter() - t0)


def flagged(content_filter: ContentFilter, texts: list[str]) -> tuple[int, int]:
    return sum(content_filter.check(t).flagged for t in texts), len(texts)


def measure(
    name: str,
    built_s: float,
    content_filter: ContentFilter,
    rows: list[Labelled],
    jokes: list[tuple[str, str]],
) -> Run:
    scores = score_filter(content_filter, rows)
    setups, punchlines = [s for s, _ in jokes], [p for _, p in jokes]
    timed = setups + punchlines or [r.text for r in rows] * REPEAT_LABELLED
    run = Run(name, built_s, scores, texts_per_s(content_filter.check, timed))
    if jokes:
        run.real_setups = flagged(content_filter, setups)
        run.real_punchlines = flagged(content_filter, punchlines)
    return run


def share(counts: tuple[int, int] | None) -> str:
    if counts is None:
        return "-"
    n, of = counts
    return f"{n / of:.1%} ({n}/{of})"


def print_table(runs: list[Run], missing: list[str]) -> None:
    header = (
        f"{'filter':<22} {'precision':>9} {'recall':>7} {'FPR':>6} {'texts/s':>9} {'build s':>8}"
        f"  {'real setups flagged':>20}  {'real punchlines flagged':>23}"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        s = r.scores
        print(
            f"{r.name:<22} {s.precision:>9.3f} {s.recall:>7.3f} {s.false_positive_rate:>6.3f}"
            f" {r.texts_per_s:>9,.0f} {r.built_s:>8.2f}  {share(r.real_setups):>20}  {share(r.real_punchlines):>23}"
        )
    for name in missing:
        print(f"{name:<22} not installed ({INSTALL_HINT})")


def print_terms(words: ContentFilter, setups: list[str]) -> None:
    terms = Counter(t for s in setups for t in words.check(s).terms)
    top = ", ".join(f"{term} {n}" for term, n in terms.most_common(TOP_TERMS))
    print(f"the word list's most frequent terms in flagged real setups: {top}")


def print_errors(runs: list[Run]) -> None:
    for r in runs:
        print(f"\n{r.name}: {len(r.scores.misses)} missed, {len(r.scores.false_alarms)} false alarms")
        for text in r.scores.misses:
            print(f"  missed       {text}")
        for text in r.scores.false_alarms:
            print(f"  false alarm  {text}")


def ban_cost(wordlist: Path | None) -> str | None:
    """One line on decode-time blocking's size and per-step cost; None without the shared
    tokenizer or transformers."""
    base = os.environ.get("PUNCHLINE_SHARED_DATA")
    if not base or not (Path(base) / "flan-t5-large" / "tokenizer.json").is_file():
        return None
    try:
        import torch
        from transformers import AutoTokenizer, NoBadWordsLogitsProcessor
    except ImportError:
        return None
    from model.backends.blocking import banned_ids
    from model.safety import blocked_phrases

    tokenizer = AutoTokenizer.from_pretrained(Path(base) / "flan-t5-large")
    phrases = blocked_phrases(SafetySettings(wordlist=wordlist))
    sequences = banned_ids(tokenizer, phrases)
    ban = NoBadWordsLogitsProcessor(sequences, int(tokenizer.eos_token_id))
    torch.set_num_threads(1)
    costs = []
    for rows in BAN_ROWS:
        written = torch.randint(3, 32000, (rows, 10), generator=torch.Generator().manual_seed(0))
        scores = torch.randn(rows, len(tokenizer))
        ban(written, scores.clone())  # the first call builds its masks
        t0 = time.perf_counter()
        for _ in range(BAN_STEPS):
            ban(written, scores.clone())
        costs.append(
            f"{(time.perf_counter() - t0) / BAN_STEPS * 1000:.2f} ms at {rows} row{'s' * (rows > 1)}"
        )
    return (
        f"decode-time blocking: {len(phrases)} severe phrases, {len(sequences)} token sequences "
        f"banned; {', '.join(costs)} a decoder step (one thread; the score copy included)"
    )


def main() -> int:
    args = parse_args()
    rows = read_labelled(args.labelled)
    jokes = real_jokes(args.real, args.seed)
    offensive = sum(r.offensive for r in rows)
    print(
        f"labelled set: {args.labelled.name}, {len(rows)} texts ({offensive} offensive, "
        f"{len(rows) - offensive} clean); classifier threshold {args.threshold}"
    )
    if jokes:
        print(f"real sample: {len(jokes)} setups and their punchlines from {KAGGLE} (seed {args.seed})")
    else:
        print("real sample: none (set PUNCHLINE_SHARED_DATA to measure false refusals on real setups)")
    filters = build_filters(args)
    runs, missing = [], []
    for name, (built_s, content_filter) in filters.items():
        if content_filter is None:
            missing.append(name)
        else:
            runs.append(measure(name, built_s, content_filter, rows, jokes))
    print()
    print_table(runs, missing)
    print(
        "(texts/s: one check per call, setups and punchlines alike; FPR: clean labelled texts "
        "flagged; real flags include deserved ones: r/Jokes is unfiltered)"
    )
    words = filters["wordlist"][1]
    if jokes and words is not None:
        print_terms(words, [s for s, _ in jokes])
    cost = ban_cost(args.wordlist)
    if cost:
        print(cost)
    if args.show_errors:
        print_errors(runs)
    summary = {
        r.name: {
            "precision": round(r.scores.precision, 4),
            "recall": round(r.scores.recall, 4),
            "false_positive_rate": round(r.scores.false_positive_rate, 4),
            "texts_per_s": round(r.texts_per_s),
            "real_setups_flagged": round(r.real_setups[0] / r.real_setups[1], 4) if r.real_setups else None,
        }
        for r in runs
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
