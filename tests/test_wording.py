"""Counted nouns in every report."""

from __future__ import annotations

from airbench_plugin.wording import plural


def test_plural() -> None:
    assert plural(1, "prompt") == "1 prompt"
    assert plural(0, "prompt") == "0 prompts"
    assert plural(5694, "prompt") == "5,694 prompts"
    assert plural(1, "category", "categories") == "1 category"
    assert plural(2, "category", "categories") == "2 categories"
