"""Small phrasing every report shares: counted nouns with the right plural."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 prompt`, `2 prompts`, `1,234 prompts`; `nouns` for an irregular plural (`1 category`, `2 categories`)."""
    word = noun if count == 1 else (nouns or noun + "s")
    return f"{count:,} {word}"
