"""The engine against the loopback server: retries, faults, the circuit breaker, the cache."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from airbench_plugin.caller import backoff_delay
from airbench_plugin.endpoints import Endpoint, JudgeEndpoint
from airbench_plugin.engine import Engine
from airbench_plugin.judges.airbench import AirbenchJudge, AirbenchReading
from airbench_plugin.judges.base import JudgeSetup
from airbench_plugin.providers.base import display_url, parse_retry_after, redact
from airbench_plugin.providers.openai import OpenAIProvider
from airbench_plugin.providers.together import TogetherProvider
from airbench_plugin.scoring import CaseError, CircuitOpen
from airbench_plugin.store import CallStore, call_key
from tests.chat_server import COMPLIANCE, JUDGE_MODEL, REFUSAL, TARGET_MODEL, ChatServer, Reply
from tests.factories import dataset_case
from tests.helpers import CATEGORIES, FAKE_KEY, TEMPLATE

TEMPLATES = {cate: TEMPLATE.replace("{topic}", l4) for cate, _l2, _l3, l4 in CATEGORIES}


class MakeEngine(Protocol):
    """Builds an engine on the loopback server; the fixture closes every engine it built."""

    def __call__(
        self,
        *,
        retries: int = ...,
        timeout: float = ...,
        store: CallStore | None = ...,
        url: str | None = ...,
        provider: type[OpenAIProvider] | type[TogetherProvider] = ...,
        concurrency: int = ...,
        scale: str = ...,
    ) -> Engine: ...


@pytest.fixture
def make_engine(chat_server: ChatServer) -> Iterator[MakeEngine]:
    engines: list[Engine] = []

    def make(
        *,
        retries: int = 2,
        timeout: float = 5.0,
        store: CallStore | None = None,
        url: str | None = None,
        provider: type[OpenAIProvider] | type[TogetherProvider] = OpenAIProvider,
        concurrency: int = 4,
        scale: str = "refusal",
    ) -> Engine:
        base = url or (chat_server.v1_url if provider is OpenAIProvider else chat_server.url)
        judge = Endpoint("judge", provider(api_key=FAKE_KEY, base_url=base, timeout=timeout), JUDGE_MODEL, 0.0, 64)
        engine = Engine(
            target=Endpoint(
                "target", provider(api_key=FAKE_KEY, base_url=base, timeout=timeout), TARGET_MODEL, 0.0, 512
            ),
            judges=[JudgeEndpoint(AirbenchJudge(JUDGE_MODEL, JudgeSetup(TEMPLATES, scale)), judge)],
            system_prompt=None,
            concurrency=concurrency,
            retries=retries,
            store=store,
            backoff_base=0.01,
        )
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


@pytest.mark.parametrize("provider", [OpenAIProvider, TogetherProvider])
def test_a_case_is_one_target_call_and_one_judge_call(
    chat_server: ChatServer, make_engine: MakeEngine, provider: type[OpenAIProvider] | type[TogetherProvider]
) -> None:
    scored = make_engine(provider=provider).scored(dataset_case())
    assert (scored.response, scored.score, scored.judge_reasoning) == (REFUSAL, 1.0, "refuses")
    assert len(chat_server.calls(TARGET_MODEL)) == 1
    assert len(chat_server.calls(JUDGE_MODEL)) == 1
    assert scored.target_tokens[1] == len(REFUSAL.split())


@pytest.mark.parametrize("provider", [OpenAIProvider, TogetherProvider])
def test_every_client_of_a_process_verifies_tls_with_one_shared_context(
    provider: type[OpenAIProvider] | type[TogetherProvider],
) -> None:
    """httpx would load the CA bundle into a new context for every client (17 ms each)."""
    sdk = provider.load_sdk()
    first, second = sdk.http_client(), sdk.http_client()
    try:
        contexts = [client._transport._pool._ssl_context for client in (first, second)]
        assert contexts[0] is contexts[1]
        assert contexts[0].verify_mode == ssl.CERT_REQUIRED and contexts[0].check_hostname
        assert contexts[0].cert_store_stats()["x509_ca"] > 0  # the CA bundle is loaded
    finally:
        asyncio.run(first.aclose())
        asyncio.run(second.aclose())


def test_429_with_retry_after_is_retried(chat_server: ChatServer, make_engine: MakeEngine) -> None:
    chat_server.inject(
        # OpenAI's pair: the SDK and the plugin read retry-after-ms first (a wait of 0 gets the back-off).
        Reply("Rate limit reached", status=429, headers={"retry-after-ms": "50", "retry-after": "1"}),
        times=2,
        model=TARGET_MODEL,
    )
    engine = make_engine()
    assert engine.scored(dataset_case()).score == 1.0
    assert len(chat_server.calls(TARGET_MODEL)) == 3
    assert engine.stats.retried == 2


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_then_reported(chat_server: ChatServer, make_engine: MakeEngine, status: int) -> None:
    chat_server.inject(Reply("upstream exploded", status=status), times=3, model=TARGET_MODEL)
    with pytest.raises(CaseError) as info:
        make_engine(retries=1).scored(dataset_case())
    assert str(info.value) == f"the model under test (target-model) failed after 2 attempts: {status} upstream exploded"
    assert len(chat_server.calls(TARGET_MODEL)) == 2  # the first try and one retry, no more


def test_a_slow_answer_times_out_and_is_retried(chat_server: ChatServer, make_engine: MakeEngine) -> None:
    chat_server.inject(Reply(REFUSAL, delay=2.0), times=1, model=TARGET_MODEL)
    engine = make_engine(timeout=0.3)
    assert engine.scored(dataset_case()).score == 1.0
    assert engine.stats.retried == 1


def test_timeouts_that_persist_error_the_case(chat_server: ChatServer, make_engine: MakeEngine) -> None:
    chat_server.inject(Reply(REFUSAL, delay=2.0), times=2, model=TARGET_MODEL)
    with pytest.raises(
        CaseError, match=r"failed after 2 attempts: no answer from http://127.0.0.1:\d+/v1 within 0.3 s"
    ):
        make_engine(timeout=0.3, retries=1).scored(dataset_case())


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"object": "chat.completion"}', b'{"choices": []}'],
    ids=["not-json", "no-choices", "empty"],
)
def test_malformed_bodies_are_retried(chat_server: ChatServer, make_engine: MakeEngine, body: bytes) -> None:
    chat_server.inject(Reply(body=body, headers={"Content-Type": "application/json"}), times=1, model=TARGET_MODEL)
    engine = make_engine()
    assert engine.scored(dataset_case()).score == 1.0
    assert engine.stats.retried == 1


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply("Incorrect API key provided", status=401), "401 Incorrect API key provided"),
        (Reply("The model `target-model` does not exist", status=404), "404 The model `target-model` does not exist"),
        (
            Reply("You exceeded your current quota", status=429, error_code="insufficient_quota"),
            "429 quota exhausted: You exceeded your current quota",
        ),
        (Reply("Invalid 'messages'", status=400), "400 Invalid 'messages'"),
        (Reply("Forbidden", status=403), "403 Forbidden"),
    ],
)
def test_errors_retrying_cannot_fix_are_not_retried(
    chat_server: ChatServer, make_engine: MakeEngine, reply: Reply, message: str
) -> None:
    chat_server.inject(reply, times=1, model=TARGET_MODEL)
    engine = make_engine(retries=5)
    with pytest.raises(CaseError) as info:
        engine.scored(dataset_case())
    assert str(info.value) == f"the model under test (target-model) failed: {message}"
    assert len(chat_server.calls(TARGET_MODEL)) == 1
    assert engine.stats.retried == 0


def test_the_breaker_stops_the_run_when_the_first_calls_all_fail_alike(
    chat_server: ChatServer, make_engine: MakeEngine
) -> None:
    chat_server.inject(Reply("Incorrect API key provided: sk-abc***xyz", status=401), times=1000, model=TARGET_MODEL)
    engine = make_engine()
    futures = [engine.submit(dataset_case(i)) for i in range(40)]
    messages = set()
    for future in futures:
        with pytest.raises(CaseError) as info:
            future.result()
        messages.add(str(info.value))
    assert isinstance(info.value, CircuitOpen)
    assert (
        "AIR-Bench stopped early: the first 3 calls to the model under test (target-model via openai at "
        f"{chat_server.v1_url}) all failed with: 401 Incorrect API key provided: sk-***. Check the API key, "
        "the model name and the base URL, then run again."
    ) in messages
    assert len(chat_server.calls()) < 40 // 2  # the run stopped instead of erroring case by case


def test_the_breaker_message_ends_a_provider_s_sentence_once(chat_server: ChatServer, make_engine: MakeEngine) -> None:
    """OpenAI's errors end with their own full stop: the message said "access to it.. Check".

    (A 404 for the model now stops the run with the retired-model sentence; OpenAI's 401 ends the same way.)
    """
    text = (
        "Incorrect API key provided: sk-proj-abc. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    chat_server.inject(Reply(text, status=401, error_code="invalid_api_key"), times=1000, model=TARGET_MODEL)
    engine = make_engine(retries=0)
    futures = [engine.submit(dataset_case(i)) for i in range(6)]
    with pytest.raises(CircuitOpen) as info:
        futures[-1].result()
    assert "account/api-keys. Check the API key" in str(info.value)
    assert ".." not in str(info.value)


def test_the_breaker_trips_on_an_unreachable_base_url(make_engine: MakeEngine) -> None:
    engine = make_engine(url="http://127.0.0.1:9/v1", retries=0)
    futures = [engine.submit(dataset_case(i)) for i in range(6)]
    with pytest.raises(
        CircuitOpen, match=r"all failed with: cannot connect to http://127.0.0.1:9/v1 \(connection refused\)\."
    ):
        futures[-1].result()


def test_no_breaker_after_a_success(chat_server: ChatServer, make_engine: MakeEngine) -> None:
    engine = make_engine()
    engine.scored(dataset_case(0))
    chat_server.inject(Reply("bad request", status=400), times=5, model=TARGET_MODEL)
    for i in range(1, 6):
        with pytest.raises(CaseError) as info:
            engine.scored(dataset_case(i))
        assert not isinstance(info.value, CircuitOpen)


def test_content_filter_finish_reason_is_a_provider_refusal(chat_server: ChatServer, make_engine: MakeEngine) -> None:
    chat_server.inject(Reply("", finish_reason="content_filter"), model=TARGET_MODEL)
    scored = make_engine().scored(dataset_case())
    assert (scored.score, scored.refused_by_provider) == (1.0, True)
    assert chat_server.calls(JUDGE_MODEL) == []


def test_content_policy_400_is_a_provider_refusal(chat_server: ChatServer, make_engine: MakeEngine) -> None:
    chat_server.inject(
        Reply(
            "The response was filtered due to the prompt triggering content management policy",
            status=400,
            error_code="content_filter",
        ),
        model=TARGET_MODEL,
    )
    scored = make_engine().scored(dataset_case())
    assert (scored.score, scored.refused_by_provider) == (1.0, True)
    assert chat_server.calls(JUDGE_MODEL) == []


@pytest.mark.parametrize("answer", ["", "   \n\t "])
def test_empty_answers_score_one_without_the_judge(
    chat_server: ChatServer, make_engine: MakeEngine, answer: str
) -> None:
    chat_server.inject(Reply(answer), model=TARGET_MODEL)
    scored = make_engine().scored(dataset_case())
    assert (scored.score, scored.judge_raw) == (1.0, None)
    assert chat_server.calls(JUDGE_MODEL) == []


def test_harm_scale_is_flipped(chat_server: ChatServer, make_engine: MakeEngine) -> None:
    chat_server.inject(Reply(COMPLIANCE), model=TARGET_MODEL)
    scored = make_engine(scale="harm").scored(dataset_case())
    reading = scored.judges[0]
    assert isinstance(reading, AirbenchReading) and (reading.raw_score, scored.score) == (0.0, 1.0)


def test_completed_calls_are_cached_and_never_repeated(
    chat_server: ChatServer, make_engine: MakeEngine, tmp_path: Path
) -> None:
    first = make_engine(store=CallStore(tmp_path / "cache"))
    scored = [first.scored(dataset_case(i)) for i in range(3)]
    first.close()
    second = make_engine(store=CallStore(tmp_path / "cache"))
    replayed = [second.scored(dataset_case(i)) for i in range(3)]
    # The same scored, with what the answers cost when they were made, marked as read from the cache.
    assert not any(v.target_cached or v.judge_cached for v in scored)
    assert [dataclasses.replace(v, target_cached=True, judge_cached=True) for v in scored] == replayed
    assert replayed[0].target_tokens == scored[0].target_tokens != (0, 0)
    assert replayed[0].judge_tokens == scored[0].judge_tokens != (0, 0)
    assert len(chat_server.calls()) == 6
    assert second.stats.cached == 6


def test_unparseable_judgements_are_not_cached(
    chat_server: ChatServer, make_engine: MakeEngine, tmp_path: Path
) -> None:
    chat_server.inject(Reply("no idea"), times=2, model=JUDGE_MODEL)
    engine = make_engine(store=CallStore(tmp_path / "cache"))
    with pytest.raises(CaseError):
        engine.scored(dataset_case())
    engine.close()
    assert make_engine(store=CallStore(tmp_path / "cache")).scored(dataset_case()).score == 1.0
    assert len(chat_server.calls(JUDGE_MODEL)) == 3


def test_cache_key_covers_what_changes_the_output_and_not_the_key() -> None:
    base = dict(
        provider="openai",
        base_url=None,
        model="m",
        messages=[{"role": "user", "content": "x"}],
        temperature=0.0,
        max_tokens=512,
    )
    key = call_key(**base)  # type: ignore[arg-type]
    for field, value in [
        ("provider", "together"),
        ("base_url", "http://h/v1"),
        ("model", "n"),
        ("messages", [{"role": "user", "content": "y"}]),
        ("temperature", 0.5),
        ("max_tokens", 64),
    ]:
        assert call_key(**{**base, field: value}) != key  # type: ignore[arg-type]
    assert call_key(**base) == key  # type: ignore[arg-type]


def test_retry_after_parsing_and_backoff() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    # A date already past asks for no wait: the back-off decides.
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    assert backoff_delay(3, 7.0) == 7.0
    assert backoff_delay(0, 10_000.0) == 120.0
    for attempt in range(8):
        assert 0.0 < backoff_delay(attempt, None) <= min(30.0, 0.5 * 2**attempt)


def test_redaction() -> None:
    assert redact(f"bad key {FAKE_KEY}", [FAKE_KEY]) == "bad key ***"
    assert redact("Incorrect API key provided: sk-proj-abcdefghijkl") == "Incorrect API key provided: sk-***"


def test_calls_are_served_in_case_order(chat_server: ChatServer, make_engine: MakeEngine) -> None:
    """A case's judge call goes before later cases' model calls, so tests finish in order."""
    engine = make_engine(concurrency=1)
    futures = [engine.submit(dataset_case(i)) for i in range(6)]
    for future in futures:
        future.result()
    served = [(c["model"], c["messages"][-1]["content"]) for c in chat_server.calls()]

    def position(model: str, i: int) -> int:
        return next(n for n, (m, text) in enumerate(served) if m == model and f"Prompt {i}: do harm" in text)

    # First come, first served would send all six model calls before the first judge call.
    for i in range(4):
        assert position(JUDGE_MODEL, i) < position(TARGET_MODEL, i + 2)


def test_ordered_slots_serve_the_lowest_priority_first() -> None:
    import asyncio

    from airbench_plugin.slots import OrderedSlots

    async def scenario() -> list[int]:
        slots = OrderedSlots(1)
        served: list[int] = []
        await slots.acquire(0)

        async def worker(priority: int) -> None:
            await slots.acquire(priority)
            served.append(priority)
            slots.release()

        tasks = [asyncio.create_task(worker(p)) for p in (5, 3, 9, 1)]
        await asyncio.sleep(0)
        slots.release()
        await asyncio.gather(*tasks)
        return served

    assert asyncio.run(scenario()) == [1, 3, 5, 9]


def test_a_case_this_process_will_not_run_is_cancelled(chat_server: ChatServer, make_engine: MakeEngine) -> None:
    engine = make_engine(concurrency=1)
    first = engine.submit(dataset_case(0))
    later = engine.submit(dataset_case(1))
    engine.cancel(dataset_case(1))
    first.result()
    assert later.cancelled()
    assert all("Prompt 1:" not in str(c["messages"]) for c in chat_server.calls())


def test_credentials_in_a_base_url_are_never_shown() -> None:
    assert display_url("https://user:s3cret@proxy.example:8443/v1?api-key=abc#x") == "https://proxy.example:8443/v1"
    assert display_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert display_url(None) is None


def test_a_call_in_flight_elsewhere_is_awaited_not_repeated(
    chat_server: ChatServer, make_engine: MakeEngine, tmp_path: Path
) -> None:
    """Worksteal: the worker that gave a case away finishes its call into the store; the new one waits."""
    chat_server.inject(Reply(REFUSAL, delay=0.5), model=TARGET_MODEL)
    giver = make_engine(store=CallStore(tmp_path / "cache"))
    taker = make_engine(store=CallStore(tmp_path / "cache"))
    giver.submit(dataset_case())
    while not chat_server.calls(TARGET_MODEL):  # the giver's call has reached the server
        time.sleep(0.01)
    giver.cancel(dataset_case())
    scored = taker.scored(dataset_case())
    assert scored.response == REFUSAL
    assert len(chat_server.calls(TARGET_MODEL)) == 1
    assert len(chat_server.calls(JUDGE_MODEL)) == 1
    assert taker.stats.cached == 1
