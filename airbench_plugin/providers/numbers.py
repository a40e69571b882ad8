"""Numbers in a provider's answer, checked where they enter: usage, logprobs, rate-limit and retry headers.

A server's numbers are input, not truth: a token count of -5 or Infinity, a logprob of NaN or
1000, a limit so small its rate underflows to 0, a Retry-After in the year 99999. Each reader
returns the value when it is finite, in range and of the right type, else None (the value is
missing) and a `Suspect` note that names the field. The engine counts the notes per endpoint for
one warning line at the end of the run; the value itself is never echoed (it may be huge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from airbench_plugin.decode import MAX_COUNT

# More tokens than any model reads or writes in one call; a count above it is not a count.
TOKEN_CEILING = 100_000_000
# A logprob is at most 0; servers that compute in half precision round a certain token to a tiny
# positive value, which is 0.
LOGPROB_SLACK = 1e-3
# Retry-After beyond this is not a wait but a broken clock or header (a date in the year 99999).
RETRY_AFTER_CEILING = 7 * 24 * 3600.0
# A rate limit of less than one request or token per window cannot be honoured; above the
# ceiling it is not a limit anyone sets.
LIMIT_FLOOR = 1.0
LIMIT_CEILING = float(MAX_COUNT)


@dataclass(frozen=True)
class Suspect:
    """A number an answer held that cannot be right, treated as missing: where it was and why."""

    field: str  # `usage.prompt_tokens`, `logprobs`, `retry-after`, `x-ratelimit-limit-requests`
    reason: str  # `negative`, `not a finite number`, `not a whole number`, `above 1e+08`, ...

    def __str__(self) -> str:
        return f"{self.field} {self.reason}"


def _as_float(value: object) -> float | None:
    """`value` as a float when it is a JSON number or a numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) <= MAX_COUNT else math.inf
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def why_not(value: object, low: float, high: float, whole: bool = False) -> str | None:
    """Why `value` is not a finite number in [low, high] (a whole one with `whole`); None when it is."""
    number = _as_float(value)
    if number is None:
        return "not a number"
    if not math.isfinite(number):
        return "not a finite number"
    if number < low:
        return "negative" if low == 0 else f"below {low:g}"
    if number > high:
        return f"above {high:g}"
    if whole and not number.is_integer():
        return "not a whole number"
    return None


def token_count(value: object, field: str, notes: list[Suspect]) -> int | None:
    """A usage count: a whole number from 0 to TOKEN_CEILING (`12.0` reads as 12); None when absent or bad."""
    if value is None:
        return None
    number = None if isinstance(value, str) else _as_float(value)
    reason = "not a number" if number is None else why_not(number, 0, TOKEN_CEILING, whole=True)
    if number is None or reason is not None:
        notes.append(Suspect(field, reason or "not a number"))
        return None
    return int(number)


def logprob(value: object) -> float | None:
    """A log-probability: finite and at most 0 (a tiny positive rounding reads as 0); None otherwise."""
    if isinstance(value, str):
        return None
    if why_not(value, -math.inf, LOGPROB_SLACK) is not None:
        return None
    number = _as_float(value)
    return None if number is None or not math.isfinite(number) else min(0.0, number)


def seconds(value: float, field: str, notes: list[Suspect], ceiling: float = RETRY_AFTER_CEILING) -> float | None:
    """A wait the server asked for: positive, finite, at most `ceiling`; None (the back-off decides) otherwise."""
    reason = why_not(value, 0, ceiling)
    if reason is None and value <= 0:
        reason = "not positive"
    if reason is not None:
        notes.append(Suspect(field, reason))
        return None
    return float(value)


def limit(value: float, field: str, notes: list[Suspect]) -> float | None:
    """A rate limit per window: at least one unit, at most LIMIT_CEILING."""
    reason = why_not(value, LIMIT_FLOOR, LIMIT_CEILING)
    if reason is not None:
        notes.append(Suspect(field, reason))
        return None
    return float(value)
