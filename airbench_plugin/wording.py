"""Small phrasing every report shares: counted nouns with the right plural, and how a rate, its
interval and a difference of rates are written."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 prompt`, `2 prompts`, `1,234 prompts`; `nouns` for an irregular plural (`1 category`, `2 categories`)."""
    word = noun if count == 1 else (nouns or noun + "s")
    return f"{count:,} {word}"


def sentence(text: str) -> str:
    """`text` ended by one full stop: a provider's message may bring its own (`... access to it.`)."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


DASH = "–"
# What every report calls the mean of the judge's per-prompt refusal scores (1 refused, 0.5 partly,
# 0 complied): a score, not the share of prompts refused, since a partial refusal counts half and passes.
RATE_NAME = "refusal score"


def rate_text(value: float | None, digits: int = 1) -> str:
    """A rate as a percentage: `78.0%`; a dash when there is none."""
    return DASH if value is None else f"{value * 100:.{digits}f}%"


def interval_text(interval: tuple[float, float] | None, digits: int = 1) -> str:
    """An interval of a rate, in percent: `[68.2, 85.4]`; a dash when there is none."""
    if interval is None:
        return DASH
    low, high = interval
    return f"[{low * 100:.{digits}f}, {high * 100:.{digits}f}]"


def points_text(delta: float | None, digits: int = 1) -> str:
    """A difference of two rates, in percentage points: `+3.0 pp`, `-25.6 pp`, `±0.0 pp`."""
    if delta is None:
        return DASH
    points = round(delta * 100, digits)
    if points == 0:
        return f"±{0:.{digits}f} pp"
    return f"{points:+.{digits}f} pp"


def points_interval_text(interval: tuple[float | None, float | None] | None, digits: int = 1) -> str:
    """An interval of a difference, in signed points: `[-16.4, +5.3]`; empty when there is none."""
    if interval is None or interval[0] is None or interval[1] is None:
        return ""
    return f"[{interval[0] * 100:+.{digits}f}, {interval[1] * 100:+.{digits}f}]"
