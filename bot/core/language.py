"""The language check: whether a setup is clearly in a language the bot does not answer.

The model was tuned on English r/Jokes setups only and answers a Spanish one with confused
English, so a setup clearly in another language gets `texts.MSG_NOT_ENGLISH` instead. "Clearly"
is drawn so that English setups are almost never refused (bench/language.py measures it on all
Kaggle setups): a setup is refused only when

1. the check is on (`LanguageSettings.check`);
2. it has at least `min_letters` letters, and more letters than digits and symbols: fewer say
   too little to tell ("lol", "ok"), and text of mostly emoji or numbers is left to the core's
   other checks;
3. the identifier's most likely language is outside `allowed`, and either
   - most letters are of a script other than Latin: English is not written in Cyrillic, Han,
     kana, Hangul, Arabic, Devanagari…; or
   - the identifier gives that language at least `min_confidence` and the allowed languages
     together at most `max_allowed_probability`: Latin letters are shared by many languages,
     and slang, names or a foreign word can tilt a short English setup toward one of them, but
     hardly ever leave English without a chance (bench/language.py has the numbers).

The identifier is py3langid's naive Bayes model, which ships inside its wheel: nothing is
downloaded, ever. It is loaded once per `LanguageCheck`, by `load()` or the first `check()`
(about half a second, so call `load()` off the event loop at start-up); after that a check
costs well under a millisecond and reads shared arrays only, so it runs in the event loop and
from several threads at once. Any `Identify` can stand in for it (tests, bench/language.py).

    language = LanguageCheck(settings.language)
    await asyncio.to_thread(language.load)        # at start-up
    if language.check(setup).refused:
        return texts.MSG_NOT_ENGLISH
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from config.errors import PunchlineError
from config.settings import LanguageSettings

log = logging.getLogger(__name__)

# A text's probability per language (codes as in LanguageSettings.allowed; "" for "no
# language"); languages left out have probability 0.
Identify = Callable[[str], Mapping[str, float]]

# The identifier reads this much of a setup at most: its cost grows with length and a few
# hundred characters decide (setups are 300 at most, LimitSettings.max_message_chars).
_MAX_CHARS = 1000


class LanguageCheckError(PunchlineError):
    """The language identifier's model cannot be loaded (a broken install)."""


@dataclass(frozen=True, slots=True)
class LanguageVerdict:
    """What the check made of one setup."""

    language: str  # the identifier's code ("en", "es", "zh"…); "" when it was not asked
    confidence: float  # its probability of that language, 0 to 1; 0 when not asked
    refused: bool  # clearly not in an allowed language: answer texts.MSG_NOT_ENGLISH


_NOT_ASKED = LanguageVerdict(language="", confidence=0.0, refused=False)


class Py3LangId:
    """py3langid's model (in its wheel; about 140 languages): the `Identify` used by default.

    Raises `LanguageCheckError` when the model cannot be loaded.
    """

    # English-lexified creoles the model takes plain English for ("Why do riot police get to
    # work early?" scores 0.52 Nigerian Pidgin): their probability counts as English's. Without
    # this, Nigerian Pidgin was 254 of the model's 412 non-English answers on the Kaggle setups.
    AS_ENGLISH = ("pcm",)
    NO_LANGUAGE = "zxx"  # the model's label for text without language (numbers, markup)

    def __init__(self) -> None:
        try:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            self._model = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        except Exception as exc:
            raise LanguageCheckError(
                f"the language check's model (py3langid) cannot be loaded: {exc}; reinstall "
                "Punchline, or set PUNCHLINE_LANGUAGE__CHECK=false to answer every language"
            ) from exc

    def __call__(self, text: str) -> dict[str, float]:
        scores = {("" if code == self.NO_LANGUAGE else code): float(p) for code, p in self._model.rank(text)}
        folded = sum(scores.pop(code, 0.0) for code in self.AS_ENGLISH)
        scores["en"] = scores.get("en", 0.0) + folded
        return scores


class LanguageCheck:
    """Says whether setups are clearly not in an allowed language (the rule is in the module
    docstring). `identify` replaces py3langid's model, which is otherwise loaded on first use."""

    def __init__(self, settings: LanguageSettings, identify: Identify | None = None):
        self.settings = settings
        self._identify = identify
        self._failed: LanguageCheckError | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the identifier's model now, once (about 0.5 s: call it off the event loop).

        Nothing is loaded while the check is off. Raises `LanguageCheckError` when the model
        cannot be loaded, so a broken install shows at start-up.
        """
        if self.settings.check:
            self._loaded()

    def _loaded(self) -> Identify:
        if self._identify is not None:  # loaded: no lock needed to read it
            return self._identify
        with self._lock:
            if self._failed is not None:
                raise self._failed
            if self._identify is None:
                try:
                    self._identify = Py3LangId()
                except LanguageCheckError as exc:
                    self._failed = exc  # loading again would fail again, half a second each time
                    raise
            return self._identify

    def check(self, text: str) -> LanguageVerdict:
        """The verdict on `text`, a setup as people wrote it (or as `model.text.clean_text` left it).

        Never raises: when the identifier fails (its model cannot be loaded, or an injected one
        raises) the error is logged and the setup is not refused, since a broken check must
        not stop the bot answering English. The first call loads the model unless `load()` did.
        """
        if not self.settings.check:
            return _NOT_ASKED
        text = text[:_MAX_CHARS]
        letters = [ch for ch in text if ch.isalpha()]
        if len(letters) < self.settings.min_letters or len(letters) <= _digits_and_symbols(text):
            return _NOT_ASKED
        if self._failed is not None:
            return _NOT_ASKED  # logged when loading failed
        try:
            scores = self._loaded()(text)
        except Exception:
            log.exception("the language check failed; answering the setup anyway")
            return _NOT_ASKED
        if not scores:
            return _NOT_ASKED
        language = max(scores, key=scores.__getitem__)
        confidence = scores[language]
        allowed = sum(scores.get(code, 0.0) for code in self.settings.allowed)
        sure = _mostly_other_script(letters) or (
            confidence >= self.settings.min_confidence and allowed <= self.settings.max_allowed_probability
        )
        refused = bool(language) and language not in self.settings.allowed and sure
        return LanguageVerdict(language=language, confidence=confidence, refused=refused)


def _digits_and_symbols(text: str) -> int:
    """Digits and symbols (emoji are symbols); punctuation, marks and spaces do not count."""
    return sum(1 for ch in text if unicodedata.category(ch)[0] in "NS")


def _mostly_other_script(letters: list[str]) -> bool:
    """Whether most of `letters` are not Latin (Cyrillic, Greek, Han, kana, Hangul, Arabic…)."""
    latin = sum(1 for ch in letters if unicodedata.name(ch, "").startswith("LATIN"))
    return latin * 2 < len(letters)
