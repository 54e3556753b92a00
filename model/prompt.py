"""The one prompt template, shared by training and inference (DESIGN decision 1).

An adapter records the template it learned with in its `punchline.json`; the worker serves it
with that template, so changing the default here never breaks an existing adapter.
"""

from __future__ import annotations

import re
import unicodedata

DEFAULT_TEMPLATE = "Answer this joke with a funny punchline: {setup}"

_SPACE = re.compile(r"\s+")
# Control and format characters other than ordinary whitespace; they only confuse the model.
_CONTROL_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}


def normalise_text(text: str) -> str:
    """NFC-normalise, drop control characters and collapse whitespace.

    The fast T5 tokenizer adds a stray token before `</s>` on trailing whitespace, so every text
    that reaches the tokenizer, in training or inference, goes through here first.
    """
    text = unicodedata.normalize("NFC", text)
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in _CONTROL_CATEGORIES
    )
    return _SPACE.sub(" ", text).strip()


def build_prompt(setup: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The model input for a joke setup."""
    if "{setup}" not in template:
        raise ValueError("a prompt template must contain '{setup}'")
    return template.replace("{setup}", normalise_text(setup))
