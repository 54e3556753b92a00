"""The language check: English setups, however odd, are answered; setups clearly in another
language are refused with that language's code; the setting turns it off.

Most tests run py3langid's real model (it ships in its wheel; one load per module). The rule
itself is also pinned with a scripted identifier, and the Kaggle false-refusal rate is checked
on the real data where PUNCHLINE_SHARED_DATA is set. The foreign setups here are not the ones
bench/language.py tuned the thresholds on: they are a held-out check of the same rule.
"""

from __future__ import annotations

import csv
import logging
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from bot.core import texts
from bot.core.language import LanguageCheck, LanguageCheckError, LanguageVerdict
from config.settings import LanguageSettings
from model.text import clean_text

ROOT = Path(__file__).resolve().parents[2]

ENGLISH = [
    # Plain, short, shouted, lower-case, slang and text-speak.
    "Why did the chicken cross the road?",
    "WHY DID THE CHICKEN CROSS THE ROAD?",
    "why did the chicken cross the road",
    "You are?",
    "Knock knock",
    "Wanna hear a joke?",
    "Wanna hear a clean joke?",
    "Wanna dance?",
    "y u do dis lol",
    "wat do u call a fish w no eyes",
    "lmao wanna hear sth funny?",
    "Whats up dawg?",
    "Dad joke pls",
    "Howdy y'all, whatcha call a cow with no legs?",
    "Q: Why did the chicken cross the road?",
    # Accents, names and foreign words.
    "Why did the café owner quit?",
    "Did you hear about the piñata?",
    "What do you call a déjà vu?",
    "Why did the naïve fiancée cry?",
    "Why are Pokémon so cute?",
    "Why is Jürgen Klopp so happy?",
    "Jürgen Müller?",
    "What did Señor Frog say to Señora Frog?",
    "Why did José go to Señora González's casa?",
    "Why did Hernández, Pérez and González go to the bar?",
    "What did Bjørn Ørsted say to Søren?",
    "Why did Björk leave Reykjavík?",
    "Why do Łódź people smile?",
    "Why does Mr. Nakamura Takeshi smile?",
    "Why did Xi Jinping ban Winnie the Pooh?",
    "Why did Владимир Путин cross the road?",
    "What's the German word for 'Schadenfreude'?",
    "Why don't Germans say 'Gesundheit' to Americans?",
    "Why did Beyoncé say 'au revoir' to the baguette?",
    "Why did the hipster drink his café au lait before it was cool?",
    "What is the plural of 'ja'?",
    # Emoji and numbers.
    "Why did the chicken 🐔 cross the road 🛣️?",
    "What do you call a fish with no eyes? 🐟🐟🐟",
    "Whats ur fav emoji 😂",
    "Why is 6 afraid of 7?",
]

# (the identifier's code, a setup): held out from bench/language.py's list.
FOREIGN = [
    ("es", "¿Por qué el pollo cruzó la carretera?"),
    ("es", "¿Qué le dice un jardinero a otro?"),
    ("es", "¿Cuál es el animal más antiguo del mundo?"),
    ("fr", "Quelle est la différence entre un pigeon et un avocat ?"),
    ("fr", "Pourquoi les poissons vivent-ils dans l'eau salée ?"),
    ("de", "Kennst du den Witz mit dem Elefanten im Kühlschrank?"),
    ("de", "Warum trinken Mäuse keinen Alkohol?"),
    ("it", "Sai qual è il colmo per un giardiniere?"),
    ("it", "Perché la mucca guarda il treno?"),
    ("pt", "Você sabe por que o elefante não usa computador?"),
    ("pt", "Qual é o animal mais preguiçoso do mundo?"),
    ("nl", "Waarom gaan koeien nooit naar de bioscoop?"),
    ("pl", "Dlaczego słoń nie korzysta z komputera?"),
    ("tr", "Balıklar neden okula gitmez?"),
    ("sv", "Varför har elefanter stora öron?"),
    ("da", "Hvorfor gik hønen over vejen?"),
    ("ro", "De ce a traversat găina drumul?"),
    ("cs", "Proč slepice přešla silnici?"),
    ("hu", "Miért ment át a tyúk az úton?"),
    ("vi", "Tại sao con gà lại băng qua đường?"),
    ("ru", "Что будет, если скрестить ежа и ужа?"),
    ("uk", "Чому слон не користується комп'ютером?"),
    ("bg", "Защо кокошката пресече пътя?"),
    ("el", "Τι κάνει μια αγελάδα στο φεγγάρι;"),
    ("zh", "你知道为什么海水是咸的吗？"),
    ("zh", "哪种动物最会说谎？"),
    ("ja", "どうしてパンダは白黒なの？"),
    ("ko", "바나나가 웃으면 뭐게?"),
    ("ar", "لماذا لا يلعب السمك كرة القدم؟"),
    ("he", "למה התרנגולת חצתה את הכביש?"),
    ("fa", "چرا مرغ از جاده رد شد؟"),
    ("hi", "हाथी कंप्यूटर का इस्तेमाल क्यों नहीं करता?"),
    ("th", "ทำไมไก่ถึงข้ามถนน"),
]

NOT_WORDS = [
    "",
    "   ",
    "🤣",
    "🤣🤣🤣",
    "🐔🐔🐔🐔 why?",
    "12345678",
    "1234 5678?",
    "!!!???",
    "lol",
    "Ok",
    "Что?",
]


@pytest.fixture(scope="module")
def language() -> LanguageCheck:
    """The real check with default settings, its model loaded once for the module."""
    check = LanguageCheck(LanguageSettings())
    check.load()
    return check


class Scripted:
    """An identifier that answers what it is told and records what it was asked."""

    def __init__(self, scores: Mapping[str, float]):
        self.scores = dict(scores)
        self.asked: list[str] = []

    def __call__(self, text: str) -> dict[str, float]:
        self.asked.append(text)
        return self.scores


@pytest.mark.parametrize("setup", ENGLISH)
def test_english_setups_are_never_refused(language: LanguageCheck, setup: str) -> None:
    assert not language.check(setup).refused
    assert not language.check(clean_text(setup)).refused


@pytest.mark.parametrize(
    ("code", "setup"), FOREIGN, ids=[f"{code}-{i}" for i, (code, _) in enumerate(FOREIGN)]
)
def test_setups_clearly_in_another_language_are_refused_with_its_code(
    language: LanguageCheck, code: str, setup: str
) -> None:
    verdict = language.check(setup)
    assert verdict.refused
    assert verdict.language == code
    assert 0 < verdict.confidence <= 1


@pytest.mark.parametrize("text", NOT_WORDS)
def test_text_with_too_few_letters_is_not_refused_nor_identified(text: str) -> None:
    identify = Scripted({"es": 1.0})
    verdict = LanguageCheck(LanguageSettings(), identify).check(text)
    assert verdict == LanguageVerdict(language="", confidence=0.0, refused=False)
    assert identify.asked == []


def test_mostly_emoji_or_digits_is_left_to_the_other_checks() -> None:
    identify = Scripted({"es": 1.0})
    check = LanguageCheck(LanguageSettings(), identify)
    assert not check.check("hola amigo 🤣🤣🤣🤣🤣🤣🤣🤣🤣🤣").refused
    assert not check.check("perros 1234567890").refused
    assert identify.asked == []
    assert check.check("hola amigo 🤣").refused


def test_the_setting_off_refuses_nothing_and_loads_nothing() -> None:
    identify = Scripted({"es": 1.0})
    check = LanguageCheck(LanguageSettings(check=False), identify)
    check.load()
    for _, setup in FOREIGN:
        assert check.check(setup) == LanguageVerdict(language="", confidence=0.0, refused=False)
    assert identify.asked == []


def test_latin_script_needs_a_sure_identifier_that_leaves_english_no_chance() -> None:
    settings = LanguageSettings(min_confidence=0.5, max_allowed_probability=0.01)
    setup = "Por que a galinha atravessou a rua?"

    def verdict(scores: dict[str, float]) -> LanguageVerdict:
        return LanguageCheck(settings, Scripted(scores)).check(setup)

    assert verdict({"pt": 0.9, "en": 0.001}) == LanguageVerdict("pt", 0.9, True)
    assert verdict({"pt": 0.5, "en": 0.01}).refused  # both limits are inclusive
    assert not verdict({"pt": 0.49, "es": 0.4, "en": 0.0}).refused  # not sure of one language
    assert not verdict({"pt": 0.9, "en": 0.05}).refused  # English still has a chance
    assert not verdict({"en": 0.6, "pt": 0.4}).refused


def test_other_scripts_are_refused_whatever_the_confidence() -> None:
    for setup in ("Почему курица перешла дорогу?", "为什么鸡要过马路？", "لماذا عبرت الدجاجة الطريق؟"):
        verdict = LanguageCheck(LanguageSettings(), Scripted({"xx": 0.2, "en": 0.15})).check(setup)
        assert verdict.refused and verdict.language == "xx"


def test_a_mostly_latin_setup_with_a_foreign_name_goes_by_the_confidence() -> None:
    setup = "Why did Владимир Путин cross the road?"  # 18 Latin letters of 31
    assert not LanguageCheck(LanguageSettings(), Scripted({"ru": 0.4, "en": 0.3})).check(setup).refused


def test_allowed_languages_and_no_language_are_never_refused() -> None:
    settings = LanguageSettings(allowed=("en", "es"))
    assert not LanguageCheck(settings, Scripted({"es": 1.0})).check("¿Por qué el pollo cruzó?").refused
    assert not LanguageCheck(LanguageSettings(), Scripted({"": 1.0})).check("<b>markup only</b>").refused
    assert not LanguageCheck(LanguageSettings(), Scripted({})).check("nothing known here").refused


def test_other_allowed_languages_count_toward_the_chance_left(language: LanguageCheck) -> None:
    both = LanguageCheck(LanguageSettings(allowed=("en", "es")))
    assert not both.check("¿Por qué el pollo cruzó la carretera?").refused
    assert both.check("Pourquoi le poulet a-t-il traversé la route ?").refused


def test_a_failing_identifier_lets_the_setup_through(caplog: pytest.LogCaptureFixture) -> None:
    def broken(text: str) -> dict[str, float]:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="bot.core.language"):
        verdict = LanguageCheck(LanguageSettings(), broken).check("¿Por qué el pollo cruzó la carretera?")
    assert not verdict.refused
    assert "answering the setup anyway" in caplog.text


def test_a_model_that_cannot_be_loaded_fails_load_once_and_never_a_check(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "py3langid.langid", None)  # importing it raises ImportError
    check = LanguageCheck(LanguageSettings())
    with pytest.raises(LanguageCheckError, match="PUNCHLINE_LANGUAGE__CHECK=false"):
        check.load()
    with pytest.raises(LanguageCheckError):
        check.load()
    caplog.clear()
    assert not check.check("¿Por qué el pollo cruzó la carretera?").refused
    assert caplog.text == ""  # logged once, where load() raised


def test_the_first_check_loads_the_model_once_across_threads() -> None:
    check = LanguageCheck(LanguageSettings())
    start = threading.Barrier(4)
    verdicts: list[LanguageVerdict] = []

    def ask() -> None:
        start.wait()
        verdicts.append(check.check("Pourquoi le poulet a-t-il traversé la route ?"))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(verdicts) == 4 and len(set(verdicts)) == 1 and verdicts[0].refused


def test_importing_the_check_loads_no_model() -> None:
    code = "import sys, bot.core.language; print('py3langid' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_refusal_is_one_friendly_english_line() -> None:
    assert "\n" not in texts.MSG_NOT_ENGLISH and "English" in texts.MSG_NOT_ENGLISH


@pytest.mark.shared_data
def test_false_refusals_on_the_kaggle_setups_stay_under_one_percent(
    language: LanguageCheck, kaggle_csv: Path
) -> None:
    with kaggle_csv.open(encoding="utf-8", newline="") as f:
        setups = [clean_text(row["Question"]) for row in csv.DictReader(f)]
    refused = [s for s in setups if language.check(s).refused]
    assert len(setups) > 38_000
    # The requirement is under 1%; bench/language.py measures 7 of 38,269 (0.018%), each in fact
    # German, Spanish or French. Holding it under 0.1% shows a regression long before 1% would.
    assert len(refused) / len(setups) < 0.001, refused[:20]
