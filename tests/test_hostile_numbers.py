"""Numbers from a server are input: usage, logprobs, rate-limit and retry headers, scores.

Each hostile value is read as missing (noted once per endpoint), never a traceback, never a
reading in the cache, never a NaN that passes a test; every wait the server asks for is bounded.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.endpoints import Endpoint, JudgeEndpoint
from airbench_plugin.engine import Engine
from airbench_plugin.judges.airbench import AirbenchJudge, AirbenchReading
from airbench_plugin.judges.base import JudgeParseError, JudgeReading, JudgeSetup
from airbench_plugin.judges.granite_guardian import GraniteGuardianJudge, GraniteGuardianReading
from airbench_plugin.pacing import EndpointPacer, Stalled
from airbench_plugin.providers.base import Completion, TokenLogprob
from airbench_plugin.providers.limits import RateLimits, parse_retry_after
from airbench_plugin.providers.openai import OpenAIProvider
from airbench_plugin.providers.sdk import read_completion
from airbench_plugin.scoring import CaseError
from airbench_plugin.store import CallStore
from airbench_plugin.suspects import SuspectNumbers
from tests.chat_server import JUDGE_MODEL, REFUSAL, TARGET_MODEL, ChatServer, Reply, completion_body, default_handler
from tests.factories import dataset_case
from tests.guardian_server import GUARDIAN_MODEL, guardian_handler, is_guardian_request
from tests.helpers import CATEGORIES, FAKE_KEY, TEMPLATE, run_suite

TEMPLATES = {cate: TEMPLATE.replace("{topic}", l4) for cate, _l2, _l3, l4 in CATEGORIES}
NAN, INF = math.nan, math.inf


def body(text: str, usage: Any = None, logprobs: Any = None) -> dict[str, Any]:
    """A chat completion as a server sends it, with this `usage` and choice `logprobs`."""
    data = completion_body({"model": "m", "messages": []}, Reply(text, logprobs=logprobs))
    data["usage"] = usage
    return data


def hostile(request: dict[str, Any], reply: Reply, **fields: Any) -> Reply:
    """`reply` sent as raw JSON with `fields` replacing the completion's own (NaN written as NaN)."""
    data = completion_body(request, reply)
    for name, value in fields.items():
        if name == "logprobs":
            data["choices"][0]["logprobs"] = value
        else:
            data[name] = value
    return Reply(body=json.dumps(data).encode(), headers={"Content-Type": "application/json", **reply.headers})


# --- usage ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-5, "negative"),
        (NAN, "not a finite number"),
        (INF, "not a finite number"),
        (-INF, "not a finite number"),
        (12.5, "not a whole number"),
        (10**400, "not a finite number"),
        (10**9, "above 1e+08"),
        ("12", "not a number"),
        (True, "not a number"),
        ([3], "not a number"),
    ],
)
def test_a_usage_count_that_cannot_be_right_is_missing_and_noted(value: object, reason: str) -> None:
    completion = read_completion(body("ok", {"prompt_tokens": value, "completion_tokens": 3}))
    assert (completion.prompt_tokens, completion.completion_tokens) == (0, 3)
    assert not completion.usage_reported
    assert [str(note) for note in completion.suspect] == [f"usage.prompt_tokens {reason}"]


def test_usage_as_counted_reads_whole() -> None:
    completion = read_completion(body("ok", {"prompt_tokens": 12.0, "completion_tokens": 0}))
    assert (completion.prompt_tokens, completion.completion_tokens, completion.usage_reported) == (12, 0, True)
    assert completion.suspect == ()


def test_no_usage_is_missing_but_not_suspect() -> None:
    completion = read_completion(body("ok", None))
    assert (completion.prompt_tokens, completion.usage_reported, completion.suspect) == (0, False, ())
    odd = read_completion(body("ok", "lots"))
    assert [str(note) for note in odd.suspect] == ["usage not an object"]


# --- logprobs -------------------------------------------------------------------------------------


def positions(yes: object, no: object = -2.3) -> dict[str, Any]:
    top = [{"token": "Yes", "logprob": yes}, {"token": "No", "logprob": no}]
    return {"content": [{"token": "Yes", "logprob": yes, "top_logprobs": top}]}


@pytest.mark.parametrize("value", [NAN, INF, -INF, 1000.0, 0.5, "-0.1", None])
def test_one_logprob_that_cannot_be_right_makes_the_logprobs_missing(value: object) -> None:
    completion = read_completion(body("Yes", {"prompt_tokens": 1, "completion_tokens": 1}, positions(value)))
    assert completion.logprobs is None
    assert [str(note) for note in completion.suspect] == ["logprobs hold a value that is not a log-probability"]
    # Granite Guardian then reads the label, as for an endpoint without logprobs.
    reading = GraniteGuardianJudge(GUARDIAN_MODEL, JudgeSetup({})).read(completion)
    assert (reading.score, reading.label_only) == (0.0, True)


def test_a_rounding_above_zero_is_a_certain_token() -> None:
    completion = read_completion(body("Yes", None, positions(1e-6, -30.0)))
    assert completion.logprobs is not None and completion.logprobs[0].logprob == 0.0
    assert completion.suspect == ()


@pytest.mark.parametrize(
    ("reading", "name"),
    [
        (AirbenchReading, "score"),
        (AirbenchReading, "raw_score"),
        (GraniteGuardianReading, "score"),
        (GraniteGuardianReading, "prob_of_risk"),
    ],
)
@pytest.mark.parametrize("value", [NAN, INF, -0.5, 1.5])
def test_a_reading_exists_only_valid(reading: type[JudgeReading], name: str, value: float) -> None:
    fields: dict[str, Any] = {"model": "j", "score": 1.0, "raw": "", "reasoning": ""}
    if reading is GraniteGuardianReading:
        fields["prob_of_risk"] = 0.0
    with pytest.raises(JudgeParseError, match=f"^{name} is not a number from 0 to 1$"):
        reading(**{**fields, name: value})


def test_a_cached_answer_with_a_hostile_number_is_a_miss(tmp_path: Path) -> None:
    store = CallStore(tmp_path / "cache")
    try:
        poisoned = Completion("Yes", logprobs=(TokenLogprob("Yes", NAN, (("Yes", NAN),)),))
        store.put("nan", poisoned)
        store.put("negative", Completion("ok", prompt_tokens=-5))
        store.put("fine", Completion("ok", prompt_tokens=5))
        assert store.get("nan") is None
        assert store.get("negative") is None
        assert store.get("fine") == Completion("ok", prompt_tokens=5)
        assert store.problems.read_errors == 2
        assert (
            store.problems.read_reason
            == "DecodeError: logprobs.logprob is not a finite number, not a number from -inf to 0"
        )
    finally:
        store.close()


# --- headers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "note"),
    [
        ({"retry-after": "-5"}, "retry-after negative"),
        ({"retry-after": "0"}, "retry-after not positive"),
        ({"retry-after": "nan"}, "retry-after not a finite number"),
        ({"retry-after": "inf"}, "retry-after not a finite number"),
        ({"retry-after": "1e400"}, "retry-after not a finite number"),
        ({"retry-after": "99999999"}, "retry-after above 604800"),
        ({"retry-after": "Wed, 21 Oct 99999 07:28:00 GMT"}, "retry-after a date out of range"),
        ({"retry-after": "soon"}, "retry-after neither seconds nor a date"),
        ({"retry-after-ms": "-5000"}, "retry-after-ms negative"),
        ({"retry-after-ms": "x"}, "retry-after-ms not a number"),
    ],
)
def test_a_retry_after_that_is_no_wait_is_left_to_the_back_off(headers: dict[str, str], note: str) -> None:
    assert parse_retry_after(headers) is None
    limits = RateLimits.from_headers(headers)
    assert limits is not None and limits.retry_after is None
    assert [str(n) for n in limits.suspect] == [note]


@pytest.mark.parametrize(
    ("limit", "note"),
    [
        ("1e-320", "x-ratelimit-limit-requests below 1"),  # its rate underflowed to 0
        ("0.5", "x-ratelimit-limit-requests below 1"),
        ("0", "x-ratelimit-limit-requests below 1"),
        ("-3", "x-ratelimit-limit-requests negative"),
        ("nan", "x-ratelimit-limit-requests not a finite number"),
        ("1e300", "x-ratelimit-limit-requests above 1e+15"),
    ],
)
def test_a_limit_that_cannot_be_paced_is_no_limit(limit: str, note: str) -> None:
    limits = RateLimits.from_headers({"x-ratelimit-limit-requests": limit, "x-ratelimit-remaining-requests": "0"})
    assert limits is not None and limits.requests is None
    assert [str(n) for n in limits.suspect] == [note]


def test_more_left_than_the_limit_is_the_limit() -> None:
    limits = RateLimits.from_headers({"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "1e12"})
    assert limits is not None and limits.requests is not None and limits.requests.remaining == 60


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_429_whose_retry_after_is_no_wait_pauses_by_the_back_off() -> None:
    clock = FakeClock()
    pacer = EndpointPacer(clock=clock, sleep=clock.sleep)
    for header in ("-5", "0"):
        pacer.throttled(None, None, parse_retry_after({"retry-after": header}))
        assert pacer.delay(1, clock.now) > 0  # not at once: ~10,000 requests in 10 s before


def test_a_header_driven_wait_ends_with_the_timeout() -> None:
    """One request a minute and none left: a turn waits at most the stall timeout, then stalls."""
    clock = FakeClock()
    pacer = EndpointPacer(stall_timeout=5.0, clock=clock, sleep=clock.sleep)
    limits = RateLimits.from_headers({"x-ratelimit-limit-requests": "1", "x-ratelimit-remaining-requests": "0"})
    pacer.answered(asyncio.run(pacer.turn(1)), limits)
    start = clock.now
    with pytest.raises(Stalled) as info:
        asyncio.run(pacer.turn(1, waiting_since=start))
    assert not info.value.rate_limited
    assert clock.now == start + 5.0
    # The user's own --airbench-rpm is not the server's number: its waits are not bounded.
    own = EndpointPacer(rpm=1, stall_timeout=5.0, clock=clock, sleep=clock.sleep)
    asyncio.run(own.turn(1, waiting_since=clock.now))
    asyncio.run(own.turn(1, waiting_since=clock.now))
    assert clock.now > start + 60.0


# --- against the loopback server ------------------------------------------------------------------


MakeEngine = Callable[..., Engine]


@pytest.fixture
def make_engine(chat_server: ChatServer) -> Iterator[MakeEngine]:
    engines: list[Engine] = []

    def make(*, stall_timeout: float = 30.0, retries: int = 1, judge_model: str = JUDGE_MODEL) -> Engine:
        def endpoint(role: str, model: str, max_tokens: int, prefix: str) -> Endpoint:
            provider = OpenAIProvider(api_key=FAKE_KEY, base_url=chat_server.v1_url, timeout=5.0)
            return Endpoint(role, provider, model, 0.0, max_tokens, option_prefix=prefix)  # type: ignore[arg-type]

        judge = (
            GraniteGuardianJudge(GUARDIAN_MODEL, JudgeSetup({}))
            if judge_model == GUARDIAN_MODEL
            else AirbenchJudge(JUDGE_MODEL, JudgeSetup(TEMPLATES, "refusal"))
        )
        engine = Engine(
            target=endpoint("target", TARGET_MODEL, 512, "--airbench-"),
            judges=[JudgeEndpoint(judge, endpoint("judge", judge_model, 64, "--airbench-judge-"))],
            system_prompt=None,
            concurrency=4,
            retries=retries,
            store=None,
            backoff_base=0.01,
            stall_timeout=stall_timeout,
        )
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def test_a_nan_logprob_from_granite_guardian_is_read_as_missing_not_as_a_reading(
    chat_server: ChatServer, make_engine: MakeEngine
) -> None:
    def handler(request: dict[str, Any]) -> Reply:
        if is_guardian_request(request):
            return hostile(request, Reply("Yes"), logprobs=positions(NAN, NAN))
        return guardian_handler()(request)

    chat_server.handler = handler
    engine = make_engine(judge_model=GUARDIAN_MODEL)
    scored = engine.scored(dataset_case(0))
    # The logprobs are missing: the label decides, as for an endpoint that sends none.
    reading = scored.judges[0]
    assert isinstance(reading, GraniteGuardianReading)
    assert (scored.score, reading.label_only, reading.prob_of_risk) == (0.0, True, 1.0)
    notes = engine.stats.suspect.endpoints["judge (guardian-model)"]
    assert (notes.suspect, notes.first) == (1, "logprobs hold a value that is not a log-probability")


def test_a_5xx_retry_after_of_a_day_waits_at_most_the_timeout(chat_server: ChatServer, make_engine: MakeEngine) -> None:
    chat_server.inject(Reply("down", status=503, headers={"retry-after": "86400"}), model=TARGET_MODEL)
    engine = make_engine(stall_timeout=0.2)
    assert engine.scored(dataset_case(0)).score == 1.0  # before: 120 s per retry, whatever --airbench-timeout said
    assert engine.stats.retried == 1


def test_hostile_usage_is_noted_once_per_endpoint(chat_server: ChatServer, make_engine: MakeEngine) -> None:
    def handler(request: dict[str, Any]) -> Reply:
        reply = default_handler(request)
        reply = reply if isinstance(reply, Reply) else Reply(reply)
        if request["model"] == JUDGE_MODEL:
            return hostile(request, reply, usage={"prompt_tokens": -5, "completion_tokens": NAN})
        return reply

    chat_server.handler = handler
    engine = make_engine()
    assert [engine.submit(dataset_case(i)).result().score for i in range(3)] == [1.0] * 3
    suspect = engine.stats.suspect
    assert list(suspect.endpoints) == ["judge (judge-model)"]
    assert suspect.endpoints["judge (judge-model)"].suspect == 6
    assert SuspectNumbers.merged([suspect.to_json()]).warnings() == [
        "airbench: WARNING: the judge (judge-model) answered 6 numbers that cannot be right "
        "(first: usage.prompt_tokens negative); they were treated as missing."
    ]


def test_a_rate_limit_header_that_allows_nothing_errors_within_the_timeout(
    chat_server: ChatServer, make_engine: MakeEngine
) -> None:
    def handler(request: dict[str, Any]) -> Reply:
        reply = default_handler(request)
        if request["model"] == TARGET_MODEL:
            # One request a minute, none left: the next waits a minute unless the timeout bounds it.
            limit = {"x-ratelimit-limit-requests": "1", "x-ratelimit-remaining-requests": "0"}
            return Reply(REFUSAL, headers=limit)
        return reply if isinstance(reply, Reply) else Reply(reply)

    chat_server.handler = handler
    engine = make_engine(stall_timeout=0.3)
    assert engine.scored(dataset_case(0)).score == 1.0
    with pytest.raises(CaseError) as info:
        engine.scored(dataset_case(1))
    assert str(info.value) == (
        "the model under test (target-model) made no progress for 0.3 s: its rate-limit headers (x-ratelimit-*) "
        "allowed no request in that time; check the account's limits with the provider, or raise --airbench-timeout"
    )


def test_a_run_says_once_per_endpoint_what_it_could_not_believe(
    suite: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    def handler(request: dict[str, Any]) -> Reply:
        reply = default_handler(request)
        reply = reply if isinstance(reply, Reply) else Reply(reply)
        if request["model"] == JUDGE_MODEL:
            return hostile(request, reply, usage={"prompt_tokens": -5, "completion_tokens": 7})
        return hostile(request, reply, usage=None)  # the model under test reports no usage at all

    with ChatServer(handler) as server:
        result = run_suite(
            suite,
            server,
            dataset_files,
            "--airbench-categories=1.1.1",
            "--airbench-no-cache",
            "--airbench-token-budget=100000",
        )
    result.assert_outcomes(passed=3)
    out = result.stdout.str()
    judge_line = (
        "airbench: WARNING: the judge (judge-model) answered 3 numbers that cannot be right "
        "(first: usage.prompt_tokens negative); they were treated as missing."
    )
    usage_line = (
        "airbench: WARNING: the model under test (target-model) reported no token usage in 3 answers; "
        "--airbench-token-budget cannot be enforced on what it reports, so those answers counted estimated "
        "tokens (prompt characters / 4 + max tokens)."
    )
    assert out.count(judge_line) == 1
    assert out.count(usage_line) == 1
    assert "Traceback" not in out
