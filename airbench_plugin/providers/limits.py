"""What a provider's answer says about its rate limits: `x-ratelimit-*` headers and Retry-After."""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from airbench_plugin.providers import numbers
from airbench_plugin.providers.numbers import Suspect

# The window each header family counts in: OpenAI's limits are per minute, Together's per second.
OPENAI_WINDOW = 60.0
TOGETHER_WINDOW = 1.0

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: str | None) -> float | None:
    """Seconds in a reset header: OpenAI's `20ms`, `1s`, `6m0s`, `1h2m3.5s`, or a plain number of seconds."""
    if text is None:
        return None
    value = text.strip().lower()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and math.isfinite(seconds) else None
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    total, position = 0.0, 0
    for match in _DURATION_PART.finditer(value):
        if match.start() != position:
            return None
        total += float(match[1]) * units[match[2]]
        position = match.end()
    return total if position == len(value) and position > 0 and math.isfinite(total) else None


def _number(headers: Mapping[str, str], name: str, notes: list[Suspect]) -> float | None:
    """A non-negative finite header value; a present but bad one is noted and missing."""
    raw = headers.get(name)
    if raw is None:
        return None
    reason = numbers.why_not(raw, 0, numbers.LIMIT_CEILING)
    if reason is not None:
        notes.append(Suspect(name, reason))
        return None
    return float(raw)


@dataclass(frozen=True)
class Quota:
    """One limit the provider reported: how much per `window` seconds, how much is left, when it refills."""

    limit: float
    remaining: float
    window: float
    reset: float | None = None

    @property
    def rate(self) -> float:
        """Units per second."""
        return self.limit / self.window


@dataclass(frozen=True)
class RateLimits:
    """What one answer's headers say about the endpoint's limits."""

    requests: Quota | None = None
    tokens: Quota | None = None
    retry_after: float | None = None
    suspect: tuple[Suspect, ...] = field(default=(), compare=False)  # header values treated as missing

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | None) -> RateLimits | None:
        """Read OpenAI's (`x-ratelimit-*-requests`, `*-tokens`) or Together's (`x-ratelimit-*`,
        `x-tokenlimit-*`) headers and `retry-after(-ms)`; None when there are none."""
        if not headers:
            return None
        notes: list[Suspect] = []
        requests = _quota(headers, "x-ratelimit-{}-requests", OPENAI_WINDOW, notes) or _quota(
            headers, "x-ratelimit-{}", TOGETHER_WINDOW, notes
        )
        tokens = _quota(headers, "x-ratelimit-{}-tokens", OPENAI_WINDOW, notes) or _quota(
            headers, "x-tokenlimit-{}", TOGETHER_WINDOW, notes
        )
        retry_after = parse_retry_after(headers, notes)
        if requests is None and tokens is None and retry_after is None and not notes:
            return None
        return cls(requests, tokens, retry_after, tuple(notes))


def _quota(headers: Mapping[str, str], pattern: str, window: float, notes: list[Suspect]) -> Quota | None:
    """One limit, when its limit and remaining headers are both readable: at least one unit per window
    (a smaller limit would pace one request per years: its rate underflows), and no more left than the limit."""
    if pattern.format("limit") not in headers:
        return None
    limit = _number(headers, pattern.format("limit"), notes)
    if limit is not None:
        limit = numbers.limit(limit, pattern.format("limit"), notes)
    remaining = _number(headers, pattern.format("remaining"), notes)
    if limit is None or remaining is None:
        return None
    return Quota(limit, min(remaining, limit), window, parse_duration(headers.get(pattern.format("reset"))))


def parse_retry_after(headers: Mapping[str, str] | None, notes: list[Suspect] | None = None) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, or `retry-after` as seconds or a date.

    None when there is none, or when it is not a positive wait of at most a week (0, -5, NaN, a
    date in the past or in the year 99999): the caller's back-off decides then, and the bad value
    is noted in `notes`.
    """
    if not headers:
        return None
    notes = [] if notes is None else notes
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            value = float(millis) / 1000
        except ValueError:
            notes.append(Suspect("retry-after-ms", "not a number"))
        else:
            return numbers.seconds(value, "retry-after-ms", notes)
    text = headers.get("retry-after")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        parsed = email.utils.parsedate_tz(text)
        if parsed is None:
            notes.append(Suspect("retry-after", "neither seconds nor a date"))
            return None
        try:
            value = email.utils.mktime_tz(parsed) - time.time()
        except (ValueError, OverflowError):  # a year datetime cannot hold
            notes.append(Suspect("retry-after", "a date out of range"))
            return None
        if value <= 0:  # a date already past (the clocks differ): no wait asked, the back-off decides
            return None
    return numbers.seconds(value, "retry-after", notes)
