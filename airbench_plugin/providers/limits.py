"""What a provider's answer says about its rate limits: `x-ratelimit-*` headers and Retry-After."""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

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
    return total if position == len(value) and position > 0 else None


def _number(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


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

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | None) -> RateLimits | None:
        """Read OpenAI's (`x-ratelimit-*-requests`, `*-tokens`) or Together's (`x-ratelimit-*`,
        `x-tokenlimit-*`) headers and `retry-after(-ms)`; None when there are none."""
        if not headers:
            return None
        requests = _quota(headers, "x-ratelimit-{}-requests", OPENAI_WINDOW) or _quota(
            headers, "x-ratelimit-{}", TOGETHER_WINDOW
        )
        tokens = _quota(headers, "x-ratelimit-{}-tokens", OPENAI_WINDOW) or _quota(
            headers, "x-tokenlimit-{}", TOGETHER_WINDOW
        )
        retry_after = parse_retry_after(headers)
        if requests is None and tokens is None and retry_after is None:
            return None
        return cls(requests, tokens, retry_after)


def _quota(headers: Mapping[str, str], pattern: str, window: float) -> Quota | None:
    limit = _number(headers, pattern.format("limit"))
    remaining = _number(headers, pattern.format("remaining"))
    if limit is None or remaining is None or limit <= 0:
        return None
    return Quota(limit, remaining, window, parse_duration(headers.get(pattern.format("reset"))))


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, or `retry-after` as seconds or a date."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return max(0.0, email.utils.mktime_tz(parsed) - time.time())
