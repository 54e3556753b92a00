"""The one prompt template, shared by training and inference (docs/DESIGN.md, decision 1).

An adapter records the template it learned with in its `punchline.json`; the worker serves it
with that template, so changing the default here never breaks an existing adapter.
"""

from __future__ import annotations

from model.text import clean_text

DEFAULT_TEMPLATE = "Answer this joke with a funny punchline: {setup}"


def build_prompt(setup: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The model input for a joke setup (cleaned with `model.text.clean_text`)."""
    if "{setup}" not in template:
        raise ValueError("a prompt template must contain '{setup}'")
    return template.replace("{setup}", clean_text(setup))
