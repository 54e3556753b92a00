"""The setup pool: questions (and their original punchlines) from PUNCHLINE_BATTLES__SETUPS.

The file is read once, on first use, with the training readers (`training.readers.read_jokes`,
any supported format). Setups too long to play are dropped; an original punchline too long to
be an entry does not play as the classic.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from config.errors import PunchlineError
from model.text import clean_text, same_text_key

log = logging.getLogger(__name__)


class SetupPoolError(PunchlineError):
    """The setup file cannot be used."""


@dataclass(frozen=True, slots=True)
class PoolSetup:
    setup: str
    punchline: str | None  # the corpus answer, None when it cannot play as the classic

    @property
    def key(self) -> str:
        return same_text_key(self.setup)


class SetupPool:
    """Setups to pick from when `/battle` comes without one."""

    def __init__(
        self,
        path: Path | None,
        max_setup_chars: int = 300,
        max_entry_chars: int = 200,
        setups: Sequence[PoolSetup] | None = None,
    ):
        """`path` is the data file (None: no pool); `setups` gives the pool directly (tests)."""
        self.path = path
        self.max_setup_chars = max_setup_chars
        self.max_entry_chars = max_entry_chars
        self._setups: list[PoolSetup] | None = list(setups) if setups is not None else None
        self._by_key: dict[str, PoolSetup] | None = None

    @property
    def configured(self) -> bool:
        return self.path is not None or bool(self._setups)

    def load(self) -> list[PoolSetup]:
        """The setups, read from the file the first time. Raises SetupPoolError."""
        if self._setups is None:
            self._setups = self._read() if self.path is not None else []
        return self._setups

    def _read(self) -> list[PoolSetup]:
        assert self.path is not None
        from training.errors import DataError  # the training readers: every supported format
        from training.readers import read_jokes

        try:
            result = read_jokes(self.path)
        except DataError as exc:
            raise SetupPoolError(f"PUNCHLINE_BATTLES__SETUPS: {exc}") from None
        setups: list[PoolSetup] = []
        seen: set[str] = set()
        for joke in result.jokes:
            setup = clean_text(joke.question)
            if not setup or len(setup) > self.max_setup_chars:
                continue
            key = same_text_key(setup)
            if not key or key in seen:
                continue  # a question that repeats with other answers: its first answer plays
            seen.add(key)
            answer = clean_text(joke.answer)
            playable = answer if answer and len(answer) <= self.max_entry_chars else None
            setups.append(PoolSetup(setup, playable))
        log.info("battle setup pool: %d setups from %s", len(setups), self.path)
        return setups

    def pick(self, recent: Collection[str], rng: random.Random) -> PoolSetup | None:
        """A random setup whose key is not in `recent`; when every one was used recently, any
        may come again, so a small pool never stops the game. None: empty pool."""
        setups = self.load()
        if not setups:
            return None
        fresh = [s for s in setups if s.key not in recent]
        return rng.choice(fresh or setups)

    def lookup(self, setup: str) -> PoolSetup | None:
        """The pool entry for a setup someone typed, so its classic can play too."""
        if not self.configured:
            return None
        if self._by_key is None:
            self._by_key = {s.key: s for s in self.load()}
        return self._by_key.get(same_text_key(setup))
