"""`punchline compare`: the write-up's table, Setup | Original | base model | tuned."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model.text import clean_text
from training.cleaning import strip_edit_note
from training.errors import DataError
from training.split import question_key

# The eight setups of the original write-up, with their IDs in the Kaggle Q/A CSV
# (../shared/data/qa_jokes/qa_jokes_kaggle_original.csv); the questions are kept here so the
# table can be made without that file.
DEFAULT_SETUPS: tuple[tuple[str, str], ...] = (
    ("3285", "What do The Sixth Sense and Titanic have in common?"),
    ("13616", "Why do Yoda's jokes always suck?"),
    ("27711", "How many developers does it take to change a light bulb?"),
    ("24411", "What animal has more lives than a cat?"),
    ("11044", "If Hillary Clinton and Donald Drumpf are in a boat and it capsizes. Who survives?"),
    ("17767", "What do you call a little Mexican?"),
    ("20230", "Do you know what Twitter is?"),
    ("32376", "What's the speed limit of sex?"),
)
MISSING = "—"


@dataclass(frozen=True, slots=True)
class SetupRow:
    """A setup to compare, with the original punchline when the data has it."""

    setup: str
    original: str | None


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    setup: str
    original: str | None
    base: str
    tuned: str


def _originals(data: Path | None, wanted: dict[str, str | None]) -> dict[str, str]:
    """question key -> original punchline, preferring the row with the expected ID."""
    from training.readers import read_jokes

    if data is None:
        return {}
    found: dict[str, tuple[bool, str]] = {}
    for joke in read_jokes(data).jokes:
        key = question_key(joke.question)
        if key not in wanted:
            continue
        exact = wanted[key] is not None and joke.id == wanted[key]
        if key not in found or (exact and not found[key][0]):
            found[key] = (exact, clean_text(strip_edit_note(clean_text(joke.answer))))
    return {k: answer for k, (_, answer) in found.items()}


def load_setups(setups_file: Path | None, data: Path | None) -> list[SetupRow]:
    """The setups to compare: `--setups FILE` (one per line) or the write-up's eight."""
    if setups_file is not None:
        try:
            lines = setups_file.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise DataError(f"setups file {setups_file} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read setups file {setups_file}: {exc}") from None
        questions = [clean_text(line) for line in lines if clean_text(line)]
        if not questions:
            raise DataError(f"setups file {setups_file} has no setups (one per line)")
        wanted: dict[str, str | None] = {question_key(q): None for q in questions}
    else:
        questions = [q for _, q in DEFAULT_SETUPS]
        wanted = {question_key(q): i for i, q in DEFAULT_SETUPS}
    originals = _originals(data, wanted)
    return [SetupRow(q, originals.get(question_key(q))) for q in questions]


def _cell(text: str | None) -> str:
    if text is None:
        return MISSING
    text = clean_text(text).replace("|", "\\|")
    return text or "(empty)"


def markdown_table(rows: list[ComparisonRow]) -> str:
    """The comparison as a Markdown table."""
    lines = ["| Setup | Original | base model | tuned |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {_cell(r.setup)} | {_cell(r.original)} | {_cell(r.base)} | {_cell(r.tuned)} |" for r in rows
    ]
    return "\n".join(lines)


def compare(base_model: str, adapter_dir: Path, setups: list[SetupRow], batch_size: int = 16) -> str:
    """Greedy punchlines of the base model and the tuned one for each setup, as Markdown."""
    from training.generation import generate_greedy, load_tuned

    tuned = load_tuned(base_model, adapter_dir)
    template = tuned.metadata.prompt_template
    questions = [s.setup for s in setups]
    replies: dict[bool, list[str]] = {}
    for adapter_on in (False, True):
        with tuned.variant(adapter_on):
            replies[adapter_on] = generate_greedy(
                tuned.model, tuned.tokenizer, questions, template, batch_size=batch_size
            )
    rows = [
        ComparisonRow(s.setup, s.original, base, tune)
        for s, base, tune in zip(setups, replies[False], replies[True], strict=True)
    ]
    return markdown_table(rows)
