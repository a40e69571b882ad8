"""Pacing per endpoint: the provider's rate-limit headers, 429 pauses and the user's --airbench-rpm/-tpm.

Each endpoint (the model under test, the judge) has one `EndpointPacer`. Before a request goes
out it takes its turn: it waits while the endpoint is paused by a 429, while the user's
requests-/tokens-per-minute would be exceeded, and while the provider's own bucket, mirrored from
the `x-ratelimit-*` headers of the latest answer, has nothing left. A 429 pauses the whole
endpoint, not only the call that got it.

The buckets are GCRA (a token bucket kept as one "theoretical arrival time"), so a turn costs a
few float operations and the waiting is one `asyncio.sleep` for the head of a FIFO queue.
Libraries looked at first: `aiolimiter` (a leaky bucket with a fixed rate; no way to set its
level from the provider's headers or pause it for a Retry-After without its private fields),
`limits` (counters for servers that enforce limits; no waiting) and `tenacity` (retry policies,
not a shared per-endpoint schedule). None fits the "mirror the server" part, which is most of this.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from airbench_plugin.providers.limits import Quota, RateLimits

USER_BURST_SECONDS = 1.0  # --airbench-rpm/-tpm allow at most one second's worth at once
CHARS_PER_TOKEN = 4
PAUSE_BASE = 0.5  # first pause after a 429 without Retry-After; doubles up to PAUSE_CAP
PAUSE_CAP = 30.0
RETRY_AFTER_CAP = 120.0
MIRROR_SKEW = 0.05  # seconds a request may take to reach the server: that much refill is not counted on
OTHERS_SAMPLE = 20.0  # units refilled between the readings that tell what other clients take: rounding is noise
MIN_SHARE = 0.05  # however busy the limit is, we count on this share of it


def estimate_tokens(messages: Sequence[Mapping[str, str]], max_tokens: int) -> int:
    """What a provider charges a request against its tokens-per-minute before it runs:
    the prompt at about four characters a token, plus `max_tokens`."""
    chars = sum(len(str(message.get("content", ""))) for message in messages)
    return math.ceil(chars / CHARS_PER_TOKEN) + max_tokens


class Bucket:
    """A token bucket of `capacity` refilled at `rate` per second, kept as GCRA's arrival time."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self.tat = -math.inf  # full

    def level(self, now: float) -> float:
        return self.capacity - max(0.0, self.tat - now) * self.rate

    def ready_at(self, amount: float, now: float) -> float:
        """When `amount` (at most a full bucket) is available."""
        need = min(amount, self.capacity)
        return max(now, self.tat - (self.capacity - need) / self.rate)

    def take(self, amount: float, now: float) -> None:
        self.tat = max(self.tat, now) + amount / self.rate

    def set_level(self, level: float, at: float) -> None:
        self.tat = at + (self.capacity - level) / self.rate


class Mirror:
    """The provider's own bucket for this endpoint, as its headers describe it.

    Each answer says how much was left when its request arrived. What we sent since is taken off,
    and the bucket refills from then at the provider's rate less what other clients of the same
    limit (other xdist workers, other programs with the key) take, which shows as the difference
    between what a reading predicted and what the next one, a few seconds later, says.
    """

    def __init__(self, quota: Quota) -> None:
        self.limit = quota.limit
        self.rate = quota.rate
        self.bucket = Bucket(quota.rate, quota.limit)
        self.others = 0.0  # units per second that other clients take
        # The most ever reported left: the bucket's real size when it is smaller than the limit
        # (a provider may hold one second's worth of a per-minute limit).
        self.fullest = 0.0
        self._reference: tuple[float, float, float] | None = None  # (sent at, remaining, ours sent)

    def matches(self, quota: Quota) -> bool:
        return (self.limit, self.rate) == (quota.limit, quota.rate)

    def read(self, quota: Quota, at: float, ours_then: float, ours_now: float) -> None:
        """A reading taken when our request sent `at` arrived; `ours_*` count what we had sent then and now."""
        reference = self._reference
        self.fullest = max(self.fullest, quota.remaining)
        if reference is None:
            self._reference = (at, quota.remaining, ours_then)
        elif at - reference[0] >= OTHERS_SAMPLE / self.rate:
            sent_at, remaining, ours = reference
            span = at - sent_at
            refilled = remaining + self.rate * span
            # Only a span in which the bucket cannot have filled up tells what others took.
            if refilled < min(self.limit, self.fullest):
                sample = (refilled - (ours_then - ours) - quota.remaining) / span
                self.others = min(self.rate * (1 - MIN_SHARE), max(0.0, (self.others + sample) / 2))
            self._reference = (at, quota.remaining, ours_then)
        self.bucket.rate = self.rate - self.others
        self.bucket.set_level(quota.remaining - (ours_now - ours_then) - self.rate * MIRROR_SKEW, at)


class Stalled(Exception):
    """The endpoint made no progress for the whole stall timeout: it answered only 429s
    (`rate_limited`), or its rate-limit headers allow no request before then."""

    def __init__(self, rate_limited: bool) -> None:
        super().__init__()
        self.rate_limited = rate_limited


@dataclass(frozen=True)
class Turn:
    """One request's place in the endpoint's schedule, to read its answer's headers against."""

    sent_at: float
    tokens: int
    requests: float  # requests of ours the provider has counted so far, this one included
    tokens_spent: float


class EndpointPacer:
    """When the next request to one endpoint may go out."""

    def __init__(
        self,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        stall_timeout: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.stall_timeout = stall_timeout
        self.user_requests = Bucket(rpm / 60, rpm / 60 * USER_BURST_SECONDS) if rpm else None
        self.user_tokens = Bucket(tpm / 60, tpm / 60 * USER_BURST_SECONDS) if tpm else None
        self.server_requests: Mirror | None = None
        self.server_tokens: Mirror | None = None
        self.paused_until = -math.inf
        self.last_progress = clock()
        self.rate_limited = 0  # 429s in a row
        self.requests = 0.0  # ours, as the provider counts them: a 429 is given back
        self.tokens = 0.0
        self.newest_reading = -math.inf
        self._lock: asyncio.Lock | None = None

    def _buckets(self) -> list[tuple[Bucket, bool]]:
        """Each bucket with whether it counts tokens (else requests)."""
        pairs = [(self.user_requests, False), (self.user_tokens, True)]
        if self.server_requests is not None:
            pairs.append((self.server_requests.bucket, False))
        if self.server_tokens is not None:
            pairs.append((self.server_tokens.bucket, True))
        return [(bucket, tokens) for bucket, tokens in pairs if bucket is not None]

    def delay(self, tokens: int, now: float) -> float:
        """Seconds until a request of `tokens` may go out."""
        start = max(now, self.paused_until)
        for bucket, counts_tokens in self._buckets():
            start = max(start, bucket.ready_at(tokens if counts_tokens else 1, now))
        return start - now

    def server_delay(self, tokens: int, now: float) -> float:
        """The part of `delay` the server decides: a 429's pause and its rate-limit headers, not the user's caps."""
        start = max(now, self.paused_until)
        for mirror, counts_tokens in ((self.server_requests, False), (self.server_tokens, True)):
            if mirror is not None:
                start = max(start, mirror.bucket.ready_at(tokens if counts_tokens else 1, now))
        return start - now

    async def turn(self, tokens: int, stalled_since: float | None = None, waiting_since: float | None = None) -> Turn:
        """Wait for this request's turn; raises Stalled when it has waited out 429s without progress
        (`stalled_since`: its first 429), or when the server's numbers hold it past the stall timeout
        (`waiting_since`: when it began to wait). The user's own --airbench-rpm/-tpm waits are not bounded."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                now = self.clock()
                wait = self.delay(tokens, now)
                if wait <= 0:
                    break
                since = stalled_since
                if since is None and waiting_since is not None and self.server_delay(tokens, now) >= wait:
                    since = waiting_since
                if since is not None:
                    deadline = max(since, self.last_progress) + self.stall_timeout
                    if now >= deadline:
                        raise Stalled(rate_limited=stalled_since is not None or self.paused_until > now)
                    wait = min(wait, deadline - now)
                await self.sleep(wait)
            for bucket, counts_tokens in self._buckets():
                bucket.take(tokens if counts_tokens else 1, now)
            self.requests += 1
            self.tokens += tokens
            return Turn(now, tokens, self.requests, self.tokens)

    def stalled(self, since: float) -> bool:
        """Whether nothing succeeded at this endpoint for the stall timeout since `since`."""
        return self.clock() - max(since, self.last_progress) >= self.stall_timeout

    def answered(self, turn: Turn | None, limits: RateLimits | None) -> None:
        """A successful answer: the endpoint makes progress; mirror its headers."""
        self.last_progress = self.clock()
        self.rate_limited = 0
        self._read(turn, limits)

    def failed(self, turn: Turn | None, limits: RateLimits | None) -> None:
        """Any other answer that carried headers."""
        self._read(turn, limits)

    def throttled(self, turn: Turn | None, limits: RateLimits | None, retry_after: float | None) -> None:
        """A 429: pause the whole endpoint for the server's Retry-After, else a doubling pause."""
        if turn is not None:  # the provider did not count it
            self.requests -= 1
            self.tokens -= turn.tokens
        self._read(turn, limits)
        if retry_after is None and limits is not None:
            retry_after = limits.retry_after
        if retry_after is None:
            retry_after = min(PAUSE_CAP, PAUSE_BASE * 2.0**self.rate_limited) * random.uniform(0.5, 1.0)
        self.rate_limited += 1
        self.paused_until = max(self.paused_until, self.clock() + min(retry_after, RETRY_AFTER_CAP))

    def _read(self, turn: Turn | None, limits: RateLimits | None) -> None:
        """Mirror the provider's buckets from the headers of the newest request that has answered."""
        if limits is None or turn is None or turn.sent_at < self.newest_reading:
            return
        self.newest_reading = turn.sent_at
        if limits.requests is not None:
            self.server_requests = _mirror(self.server_requests, limits.requests)
            self.server_requests.read(limits.requests, turn.sent_at, turn.requests, self.requests)
        if limits.tokens is not None:
            self.server_tokens = _mirror(self.server_tokens, limits.tokens)
            self.server_tokens.read(limits.tokens, turn.sent_at, turn.tokens_spent, self.tokens)


def _mirror(mirror: Mirror | None, quota: Quota) -> Mirror:
    """`mirror`, or a new one when the provider's limit is new or changed."""
    return mirror if mirror is not None and mirror.matches(quota) else Mirror(quota)
