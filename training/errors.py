"""Errors of the training pipeline that people can act on (printed as one line by the CLI)."""

from __future__ import annotations

from config.errors import PunchlineError


class DataError(PunchlineError):
    """A data file is missing, unreadable, in an unknown format, or empty after cleaning."""


class OutputExistsError(PunchlineError):
    """The output directory already holds something and neither --force nor --resume was given."""


class TrainingError(PunchlineError):
    """The training run cannot start or continue (bad option, nothing to resume, ...)."""


class NotEnoughFeedback(TrainingError):
    """`punchline align` (and `punchline refresh`) refuses: too few usable preference examples.

    `method`, `have` and `need` say what was short; `summary` is the full account by reason.
    """

    def __init__(self, message: str, *, method: str, have: int, need: int, summary: str) -> None:
        super().__init__(message)
        self.method = method
        self.have = have
        self.need = need
        self.summary = summary
