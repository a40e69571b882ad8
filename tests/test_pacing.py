"""Pacing as plain functions: reading rate-limit headers, the buckets, pauses and the stall timeout.

A fake clock drives the pacer, so nothing here waits or depends on the machine's speed.
"""

from __future__ import annotations

import asyncio

import pytest

from airbench_plugin.pacing import Bucket, EndpointPacer, Mirror, Stalled, Turn, estimate_tokens
from airbench_plugin.providers.limits import Quota, RateLimits, parse_duration
from tests.chat_server import RateLimit, go_duration


class FakeClock:
    """A monotonic clock that moves only when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def pacer(clock: FakeClock, **kwargs: object) -> EndpointPacer:
    return EndpointPacer(clock=clock, sleep=clock.sleep, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("20ms", 0.02), ("1s", 1.0), ("1.5s", 1.5), ("6m0s", 360.0), ("1h2m3.5s", 3723.5), ("0.5", 0.5), ("7", 7.0)],
)
def test_reset_durations_as_providers_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "5x", "m1s", "-3"])
def test_unreadable_durations_are_none(text: str | None) -> None:
    assert parse_duration(text) is None


def test_the_test_server_writes_durations_as_openai_does() -> None:
    assert [go_duration(s) for s in (0.02, 1.0, 1.5, 360.0)] == ["20ms", "1s", "1.5s", "6m0s"]


def test_openai_headers() -> None:
    headers = {
        "x-ratelimit-limit-requests": "3000",
        "x-ratelimit-remaining-requests": "2999",
        "x-ratelimit-reset-requests": "20ms",
        "x-ratelimit-limit-tokens": "250000",
        "x-ratelimit-remaining-tokens": "249488",
        "x-ratelimit-reset-tokens": "122ms",
        "retry-after-ms": "250",
    }
    limits = RateLimits.from_headers(headers)
    assert limits == RateLimits(
        requests=Quota(3000, 2999, 60.0, 0.02), tokens=Quota(250000, 249488, 60.0, 0.122), retry_after=0.25
    )
    assert limits.requests is not None and limits.requests.rate == 50.0


def test_together_headers_count_per_second() -> None:
    headers = {
        "x-ratelimit-limit": "10",
        "x-ratelimit-remaining": "7",
        "x-ratelimit-reset": "1",
        "x-tokenlimit-limit": "3333",
        "x-tokenlimit-remaining": "3000",
    }
    limits = RateLimits.from_headers(headers)
    assert limits == RateLimits(requests=Quota(10, 7, 1.0, 1.0), tokens=Quota(3333, 3000, 1.0, None))


@pytest.mark.parametrize("style", ["openai", "together"])
def test_the_test_servers_headers_read_back(style: str) -> None:
    limit = RateLimit(rpm=600, burst=1.0, style=style)
    admitted, headers, _wait = limit.admit("m", 0.0)
    limits = RateLimits.from_headers(headers)
    assert admitted and limits is not None and limits.requests is not None
    assert (limits.requests.rate, limits.requests.remaining) == (10.0, 9)


def test_no_rate_headers_is_none() -> None:
    assert RateLimits.from_headers({"content-type": "application/json"}) is None
    unreadable = RateLimits.from_headers({"x-ratelimit-limit-requests": "x", "x-ratelimit-remaining-requests": "1"})
    # An unreadable limit is no limit, and is noted for the run's warning.
    assert unreadable is not None and (unreadable.requests, unreadable.tokens, unreadable.retry_after) == (None,) * 3
    assert [str(note) for note in unreadable.suspect] == ["x-ratelimit-limit-requests not a number"]


def test_token_estimate_counts_the_prompt_and_max_tokens() -> None:
    assert estimate_tokens([{"role": "user", "content": "x" * 401}], 512) == 101 + 512


def test_a_bucket_refills_at_its_rate() -> None:
    bucket = Bucket(rate=2.0, capacity=2.0)
    assert bucket.ready_at(1, 0.0) == 0.0
    bucket.take(1, 0.0)
    bucket.take(1, 0.0)
    assert bucket.ready_at(1, 0.0) == pytest.approx(0.5)
    assert bucket.ready_at(5, 0.0) == pytest.approx(1.0)  # at most a full bucket is waited for
    bucket.set_level(-1.0, 0.0)
    assert bucket.ready_at(1, 0.0) == pytest.approx(1.0)


def test_user_rpm_spaces_requests() -> None:
    async def scenario() -> list[float]:
        clock = FakeClock()
        pace = pacer(clock, rpm=120)  # 2 a second, one second's burst
        return [(await pace.turn(10)).sent_at - 1000.0 for _ in range(5)]

    assert asyncio.run(scenario()) == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5])


def test_user_tpm_spaces_requests_by_their_tokens() -> None:
    async def scenario() -> list[float]:
        clock = FakeClock()
        pace = pacer(clock, tpm=6000)  # 100 tokens a second
        return [(await pace.turn(50)).sent_at - 1000.0 for _ in range(4)]

    assert asyncio.run(scenario()) == pytest.approx([0.0, 0.0, 0.5, 1.0])


def test_headers_slow_the_whole_endpoint() -> None:
    async def scenario() -> tuple[float, float]:
        clock = FakeClock()
        pace = pacer(clock)
        first = await pace.turn(10)
        second = await pace.turn(10)  # sent before the first answer came back
        limits = RateLimits(requests=Quota(limit=60, remaining=1, window=60.0))  # one a second
        pace.answered(first, limits)
        # The server had one left after the first request; the second took it.
        third = await pace.turn(10)
        return second.sent_at, third.sent_at

    second, third = asyncio.run(scenario())
    assert second == 1000.0
    assert third > 1000.0 + 1.0


def test_older_answers_do_not_overwrite_newer_headers() -> None:
    clock = FakeClock()
    pace = pacer(clock)
    old, new = Turn(1.0, 1, 0, 0), Turn(2.0, 1, 0, 0)
    newest = RateLimits(requests=Quota(60, 0, 60.0))  # the newest answer: none left for a minute
    pace.answered(new, newest)
    pace.answered(old, RateLimits(requests=Quota(60, 59, 60.0)))  # an older answer arriving late
    only_newest = pacer(clock)
    only_newest.answered(new, newest)
    assert pace.delay(1, 2.0) == only_newest.delay(1, 2.0) > 0


def test_a_429_pauses_the_endpoint_for_retry_after() -> None:
    clock = FakeClock()
    pace = pacer(clock)
    pace.throttled(None, None, retry_after=0.75)
    assert pace.delay(1, clock()) == pytest.approx(0.75)


def test_a_429_without_retry_after_pauses_longer_each_time() -> None:
    clock = FakeClock()
    pace = pacer(clock)
    pauses = []
    for _ in range(4):
        pace.throttled(None, None, retry_after=None)
        pauses.append(pace.delay(1, clock()))
        clock.now += pauses[-1]
    assert pauses[0] <= 0.5 < pauses[3]
    pace.answered(None, None)
    assert pace.rate_limited == 0


def test_waiting_out_429s_without_progress_stalls_after_the_timeout() -> None:
    async def scenario() -> float:
        clock = FakeClock()
        pace = pacer(clock, stall_timeout=5.0)
        since = clock()
        pace.throttled(None, None, retry_after=60.0)
        with pytest.raises(Stalled):
            await pace.turn(1, stalled_since=since)
        return clock() - since

    assert asyncio.run(scenario()) == pytest.approx(5.0)


def test_progress_elsewhere_on_the_endpoint_keeps_a_waiting_request_alive() -> None:
    clock = FakeClock()
    pace = pacer(clock, stall_timeout=5.0)
    since = clock()
    clock.now += 4.0
    pace.answered(None, None)  # another request got through
    clock.now += 4.0
    assert not pace.stalled(since)
    clock.now += 1.0
    assert pace.stalled(since)


def test_what_other_clients_of_the_limit_take_is_left_to_them() -> None:
    # A 60-a-second limit; we send 20 a second, yet the bucket drains: someone else takes 50 a second.
    mirror = Mirror(Quota(limit=3600, remaining=100, window=60.0))
    ours, remaining = 0.0, 100.0
    for step in range(1, 80):
        ours += 2  # every 0.1 s
        remaining += 60 * 0.1 - 2 - 5
        mirror.read(Quota(3600, remaining, 60.0), at=step * 0.1, ours_then=ours, ours_now=ours)
    assert mirror.others == pytest.approx(50.0, rel=0.1)
    assert mirror.bucket.rate == pytest.approx(10.0, rel=0.3)


def test_alone_on_a_limit_nothing_is_held_back() -> None:
    mirror = Mirror(Quota(limit=3600, remaining=100, window=60.0))
    ours, remaining = 0.0, 100.0
    for step in range(1, 40):
        ours += 5
        remaining += 60 * 0.1 - 5
        mirror.read(Quota(3600, float(int(remaining)), 60.0), at=step * 0.1, ours_then=ours, ours_now=ours)
    assert mirror.others < 3.0
