"""Family mode's content filter (`model.safety`): what the word list catches, what it leaves
alone, the list file's format, and the classifier option."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from config.errors import PunchlineError
from config.settings import SafetySettings
from model.safety import (
    BlocklistError,
    ClassifierFilter,
    ClassifierMissing,
    ContentFilter,
    Flag,
    WordListFilter,
    blocked_phrases,
    build_filter,
)
from model.safety.blocklist import load_blocklist, parse_blocklist
from model.safety.normalise import words

# Innocent words that contain a listed string (the Scunthorpe problem), and proper names.
INNOCENT = [
    "Scunthorpe",
    "assassin",
    "assassinate",
    "assess",
    "assume",
    "bass",
    "classic",
    "compass",
    "embarrassed",
    "passage",
    "cocktail",
    "cockpit",
    "peacock",
    "shuttlecock",
    "Hancock",
    "Sussex",
    "Essex",
    "Middlesex",
    "sextant",
    "therapist",
    "grape",
    "drape",
    "scrape",
    "rapped",
    "rapeseed",
    "shiitake",
    "shitake",
    "Dickens",
    "hickory dickory dock",
    "Penistone",
    "arsenal",
    "arsenic",
    "parse",
    "analysis",
    "canal",
    "cumulative",
    "document",
    "cucumber",
    "circumference",
    "spicy",
    "spice",
    "Titanic",
    "title",
    "butterfly",
    "button",
    "hello",
    "shell",
    "raccoon",
    "cocoon",
    "tycoon",
    "Pakistan",
    "snigger",
    "niggardly",
    "niggle",
    "retardant",
    "pussycat",
    "homework",
    "Matsushita",
    "class assignment",
    "a classic glass of bass ale",
    # names and birds the list's [allowed] phrases clear
    "Moby Dick's favourite dinner",
    "Cock-a-doodle-doo!",
    "blue tits at the feeder",
    "Dick Van Dyke",
]

CAUGHT = {
    "leetspeak": "What a sh1t day",
    "leetspeak symbols": "$h!t happens",
    "leetspeak money": "kiss my a$$",
    "elongation": "fuuuuck this",
    "elongated double": "what an asssshole",
    "spaced": "f u c k that",
    "dotted": "f.u.c.k that",
    "dashed": "s-h-i-t",
    "spaced after the word a": "you are a c-u-n-t",
    "spaced before the word I": "s h i t I forgot",
    "masked": "f*ck off",
    "masked twice": "what the f**k",
    "masked inside": "you a**hole",
    "accented": "ṡhit",
    "accents and case": "FÜCK",
    "cyrillic look-alike": "what a \u0441unt",  # Cyrillic es
    "zero-width space": "fu\u200bck",
    "full-width": "ｆｕｃｋ",
    "possessive": "that bitch's car",
    "hashtag": "#fuck",
    "emphasis": "*shit*",
    "shouted": "SHIT!!!",
    "compound": "you motherfucker",
    "stem": "fucking hell",
}


@pytest.fixture(scope="module")
def word_filter() -> WordListFilter:
    return WordListFilter(load_blocklist())


@pytest.mark.parametrize("text", CAUGHT.values(), ids=CAUGHT.keys())
def test_disguised_words_are_caught(word_filter: WordListFilter, text: str) -> None:
    assert word_filter.check(text).flagged, text


def test_the_examples_of_the_issue_are_caught(word_filter: WordListFilter) -> None:
    for text in ("sh1t", "fuuuck", "f u c k", "ṡhit"):
        assert word_filter.check(text).flagged, text


@pytest.mark.parametrize("text", INNOCENT)
def test_innocent_words_containing_a_listed_string_are_clean(word_filter: WordListFilter, text: str) -> None:
    assert word_filter.check(text) == Flag(False), text


def test_innocent_list_is_long_enough() -> None:
    assert len(INNOCENT) >= 30


def test_clean_jokes_are_clean(word_filter: WordListFilter) -> None:
    jokes = [
        "Why did the chicken cross the road? To get to the other side.",
        "What do you call a fish with no eyes? A fsh.",
        "Why don't skeletons fight each other? They don't have the guts.",
        "What did the grape say when it got stepped on? Nothing, it just let out a little wine.",
        "Why did the therapist bring a ladder? To reach her clients' higher selves.",
        "I'm reading a book about anti-gravity. It's impossible to put down!",
        "Hmmm... sooo... what's up, doc?",
        "My phone number ends in 1000 and my zip code is 90210.",
    ]
    for joke in jokes:
        assert not word_filter.check(joke).flagged, joke


def test_flag_names_the_terms_as_the_list_writes_them(word_filter: WordListFilter) -> None:
    flag = word_filter.check("Shit, you son of a b1tch!")
    assert flag.flagged and flag.score is None
    assert flag.terms == ("shit", "son of a bitch", "bitch*")


def test_allowed_phrases_clear_only_the_words_inside_them(word_filter: WordListFilter) -> None:
    assert not word_filter.check("What's Moby Dick's favourite dinner?").flagged
    assert word_filter.check("Moby Dick is a dick").terms == ("dick",)  # the second one
    assert word_filter.check("Dick Van Dyke met a dyke").terms == ("dyke",)
    assert word_filter.check("moby-dick shit").terms == ("shit",)
    assert word_filter.check("Dick is a moby").terms == ("dick",)  # the phrase, in order


def test_spaced_letters_beside_the_words_a_and_i_are_read_both_ways(word_filter: WordListFilter) -> None:
    assert [w.forms for w in words("a c u n t")] == [("acunt", "cunt")]
    assert [w.forms for w in words("a s s")] == [("ass",)]  # three letters must be left
    assert not word_filter.check("I C U, said the nurse").flagged
    assert not word_filter.check("as easy as a b c").flagged


def test_phrases_match_only_as_whole_phrases(word_filter: WordListFilter) -> None:
    assert word_filter.check("she gave him a blow job").terms == ("blow job",)
    assert word_filter.check("go kill yourself").terms == ("kill yourself",)
    for clean in (
        "a blow to the job market",
        "a job done by hand",
        "kill time by yourself",
        "sons of the beach",
    ):
        assert not word_filter.check(clean).flagged, clean


def test_doubles_are_not_shortened_into_words(word_filter: WordListFilter) -> None:
    # "rapped" must not read as "raped", nor "annals" as "anals"; three or more letters do.
    assert not word_filter.check("he rapped the annals of history").flagged
    assert word_filter.check("raaaaped").flagged


def test_a_masked_word_must_show_two_letters(word_filter: WordListFilter) -> None:
    assert not word_filter.check("f*** knows").flagged  # could be anything
    assert not word_filter.check("**** ****").flagged
    assert word_filter.check("sh*t").flagged


def test_numbers_are_not_read_as_leetspeak() -> None:
    assert [w.forms for w in words("call 5318008 now")] == [("call",), ("5318008",), ("now",)]


def test_word_filter_is_a_content_filter(word_filter: WordListFilter) -> None:
    assert isinstance(word_filter, ContentFilter) and word_filter.name == "wordlist"


def test_default_filter_is_the_word_list() -> None:
    built = build_filter(SafetySettings())
    assert isinstance(built, WordListFilter)
    assert built.check("shit").flagged


# -- the severe tier, blocked at decoding -----------------------------------------------------


def test_blocked_phrases_are_the_severe_tier_in_concrete_forms() -> None:
    phrases = blocked_phrases(SafetySettings())
    assert {"fuck", "fucking", "motherfucker", "kill yourself", "cunt", "cunts"} <= set(phrases)
    assert "shit" not in phrases and "son of a bitch" not in phrases  # offensive tier only
    assert all(p == p.lower() and "*" not in p for p in phrases)
    assert len(phrases) == len(set(phrases))


def test_innocent_words_do_not_contain_a_blocked_token_sequence(flan_dir: Path) -> None:
    """Decoding bans token sequences, so an innocent word whose tokens contain a banned
    sequence could never be written in a family chat (the Scunthorpe problem at decoding)."""
    from transformers import AutoTokenizer

    from model.backends.blocking import banned_ids

    tokenizer = AutoTokenizer.from_pretrained(flan_dir)
    banned = banned_ids(tokenizer, blocked_phrases(SafetySettings()))
    collisions = set()
    for text in INNOCENT:
        for variant in (text, text.lower(), text.capitalize()):
            ids = tokenizer(f"It was {variant} again.", add_special_tokens=False)["input_ids"]
            for seq in banned:
                n = len(seq)
                if any(ids[i : i + n] == seq for i in range(len(ids) - n + 1)):
                    collisions.add(variant)
    assert collisions == KNOWN_DECODING_COLLISIONS


# Rare words that T5 begins with the tokens of a severe word ("retardant" is "▁retard" + "ant",
# "rapeseed" is "▁", "rap", "e", "s", "eed"): a family chat's replies cannot hold them. The filter
# itself does not flag them.
KNOWN_DECODING_COLLISIONS = {"rapeseed", "Rapeseed", "retardant", "Retardant"}


# -- the list file ---------------------------------------------------------------------------


def test_every_phrase_blocked_at_decoding_is_flagged_by_the_filter() -> None:
    """Decoding and the filter read one list: whatever a safe request may not write, the
    filter would also catch in the text."""
    settings = SafetySettings()
    text_filter = build_filter(settings)
    unflagged = [p for p in blocked_phrases(settings) if not text_filter.check(p).flagged]
    assert unflagged == []


def test_a_wordlist_file_replaces_the_built_in_list(tmp_path: Path) -> None:
    path = tmp_path / "family.txt"
    path.write_text(
        "# ours\n[severe]\nkumquat*\n\n[offensive]\nbanana split  # a comment\n[allowed]\nbanana split pie\n",
        encoding="utf-8",
    )
    settings = SafetySettings(wordlist=path)
    built = build_filter(settings)
    assert built.check("Kumquats again!").terms == ("kumquat*",)
    assert built.check("a BANANA-split please").terms == ("banana split",)
    assert not built.check("a banana split pie please").flagged
    assert not built.check("shit").flagged  # the built-in list is gone
    assert blocked_phrases(settings)[:3] == ("kumquat", "kumquats", "kumquated")
    assert "banana split" not in blocked_phrases(settings)


@pytest.mark.parametrize(
    "content, message",
    [
        ("fuck\n[severe]\n", "line 1: 'fuck' comes before a [severe], [offensive] or [allowed] section"),
        (
            "[severe]\nok\n[mild]\ndarn\n",
            "line 3: unknown section [mild]; use [severe], [offensive] or [allowed]",
        ),
        ("[allowed]\nmoby dick\n", "the word list has no terms"),
        ("[offensive]\nf@ck\n", "line 2: 'f@ck' is not a word of a term"),
        ("[offensive]\n*\n", "line 2: '*' is not a word of a term"),
        ("[offensive]\nfu*ck\n", "line 2: 'fu*ck' is not a word of a term"),
        ("# nothing here\n\n", "the word list has no terms"),
    ],
    ids=["before-section", "unknown-section", "allowed-only", "symbol", "lone-star", "star-inside", "empty"],
)
def test_a_malformed_wordlist_is_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BlocklistError) as caught:
        build_filter(SafetySettings(wordlist=path))
    text = str(caught.value)
    assert isinstance(caught.value, PunchlineError)
    assert text.startswith(f"PUNCHLINE_SAFETY__WORDLIST={path}") and message in text
    assert "\n" not in text


def test_an_unreadable_wordlist_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    with pytest.raises(BlocklistError, match="cannot read the word list"):
        blocked_phrases(SafetySettings(wordlist=missing))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("[offensive]\nsch\xe9ma\n".encode("latin-1"))
    with pytest.raises(BlocklistError, match="not UTF-8"):
        build_filter(SafetySettings(wordlist=latin1))


def test_the_built_in_list_parses_with_both_tiers() -> None:
    blocklist = load_blocklist()
    assert blocklist.origin == "the built-in blocklist.txt"
    tiers = {t.tier.value for t in blocklist.terms}
    assert tiers == {"severe", "offensive"}
    assert any(len(t.words) > 1 for t in blocklist.terms)  # phrases too
    assert {t.tier.value for t in blocklist.allowed} == {"allowed"}


def test_a_repeated_term_keeps_its_first_tier() -> None:
    blocklist = parse_blocklist("[severe]\nfoo\n[offensive]\nFoo\nbar\n", "test")
    assert [(t.source, t.tier.value) for t in blocklist.terms] == [("foo", "severe"), ("bar", "offensive")]


# -- the classifier ----------------------------------------------------------------------------


def test_classifier_flags_what_either_flags_and_scores_with_the_probability() -> None:
    scores = {"a rude remark": 0.93, "shit happens": 0.2, "a kind remark": 0.1}
    combined = ClassifierFilter(
        WordListFilter(load_blocklist()), 0.8, lambda texts: [scores[t] for t in texts]
    )
    assert combined.name == "classifier" and isinstance(combined, ContentFilter)
    assert combined.check("a rude remark") == Flag(True, (), 0.93)
    assert combined.check("shit happens") == Flag(True, ("shit",), 0.2)
    assert combined.check("a kind remark") == Flag(False, (), 0.1)
    alone = ClassifierFilter(None, 0.8, lambda texts: [scores[t] for t in texts])
    assert alone.check("shit happens") == Flag(False, (), 0.2)  # no word list to catch it
    assert alone.check("a rude remark") == Flag(True, (), 0.93)


def test_choosing_the_classifier_without_its_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "profanity_check", None)  # import fails as if not installed
    with pytest.raises(ClassifierMissing) as caught:
        build_filter(SafetySettings(filter="classifier"))
    assert "pip install 'punchline[safety]'" in str(caught.value)
    assert "\n" not in str(caught.value) and isinstance(caught.value, PunchlineError)


def test_the_real_classifier_with_the_word_list() -> None:
    pytest.importorskip("profanity_check", reason="alt-profanity-check (punchline[safety]) is not installed")
    built = build_filter(SafetySettings(filter="classifier", threshold=0.8))
    assert isinstance(built, ClassifierFilter)
    rude = built.check("you are a worthless piece of garbage, shut up you idiot")
    clean = built.check("Why did the chicken cross the road? To get to the other side.")
    assert rude.score is not None and clean.score is not None
    assert clean.score < 0.5 and not clean.flagged
    assert built.check("sh1t").flagged  # the word list's part reads leetspeak
