"""Rate limits against the loopback server: real 429 bodies and `x-ratelimit-*` headers over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airbench_plugin.endpoints import Endpoint, JudgeEndpoint
from airbench_plugin.engine import Engine
from airbench_plugin.judges.airbench import AirbenchJudge
from airbench_plugin.judges.base import JudgeSetup
from airbench_plugin.options import parse_values
from airbench_plugin.providers.openai import OpenAIProvider
from airbench_plugin.providers.together import TogetherProvider
from airbench_plugin.scoring import CaseError
from tests.chat_server import JUDGE_MODEL, TARGET_MODEL, ChatServer, RateLimit, openai_rate_limited
from tests.factories import dataset_case
from tests.helpers import CATEGORIES, FAKE_KEY, TEMPLATE, run_suite

TEMPLATES = {cate: TEMPLATE.replace("{topic}", l4) for cate, _l2, _l3, l4 in CATEGORIES}

MakeEngine = Callable[..., Engine]


@pytest.fixture
def make_engine(chat_server: ChatServer) -> Iterator[MakeEngine]:
    engines: list[Engine] = []

    def make(
        *,
        retries: int = 1,
        stall_timeout: float = 30.0,
        concurrency: int = 4,
        provider: type[OpenAIProvider] | type[TogetherProvider] = OpenAIProvider,
        rpm: int | None = None,
    ) -> Engine:
        base = chat_server.v1_url if provider is OpenAIProvider else chat_server.url
        engine = Engine(
            target=Endpoint(
                "target",
                provider(api_key=FAKE_KEY, base_url=base, timeout=5.0),
                TARGET_MODEL,
                0.0,
                512,
                rpm=rpm,
            ),
            judges=[
                JudgeEndpoint(
                    AirbenchJudge(JUDGE_MODEL, JudgeSetup(TEMPLATES, "refusal")),
                    Endpoint(
                        "judge",
                        provider(api_key=FAKE_KEY, base_url=base, timeout=5.0),
                        JUDGE_MODEL,
                        0.0,
                        64,
                        option_prefix="--airbench-judge-",
                    ),
                )
            ],
            system_prompt=None,
            concurrency=concurrency,
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


def storm_reply(wait: float = 0.01) -> object:
    headers = RateLimit(rpm=3000).headers(0.0, wait)
    return openai_rate_limited(TARGET_MODEL, 3000, headers, wait)


def test_a_429_storm_that_ends_never_errors_a_prompt(chat_server: ChatServer, make_engine: MakeEngine) -> None:
    # 20 rate-limit answers in a row, far more than the retry budget of 1 per prompt.
    chat_server.inject(storm_reply(), times=20, model=TARGET_MODEL)  # type: ignore[arg-type]
    engine = make_engine(retries=1)
    futures = [engine.submit(dataset_case(i)) for i in range(6)]
    assert [future.result().score for future in futures] == [1.0] * 6
    assert engine.stats.rate_limited == 20
    assert engine.stats.errored == 0
    assert len(chat_server.calls(TARGET_MODEL)) == 26


@pytest.mark.parametrize("provider", [OpenAIProvider, TogetherProvider])
def test_the_headers_slow_the_endpoint(
    chat_server: ChatServer, make_engine: MakeEngine, provider: type[OpenAIProvider] | type[TogetherProvider]
) -> None:
    style = "openai" if provider is OpenAIProvider else "together"
    chat_server.rate_limit = RateLimit(rpm=60, burst=1.0, style=style)  # one a second, per model
    engine = make_engine(provider=provider)
    engine.scored(dataset_case(0))
    assert engine.target is not None
    pacer = engine.pacer(engine.target)
    assert pacer.server_requests is not None and pacer.server_requests.rate == 1.0
    # The answer said nothing is left: the next request to that endpoint waits for the refill.
    assert pacer.delay(1, pacer.newest_reading) > 0.9
    assert chat_server.rate_limit.throttled == 0


def test_a_rate_limited_run_completes_every_prompt(chat_server: ChatServer, make_engine: MakeEngine) -> None:
    chat_server.rate_limit = RateLimit(rpm=1200, burst=0.25)  # 20 a second, 5 at once, per model
    engine = make_engine(concurrency=8, retries=0)
    futures = [engine.submit(dataset_case(i)) for i in range(16)]
    assert [future.result().score for future in futures] == [1.0] * 16
    assert engine.stats.errored == 0


def test_an_endpoint_that_never_recovers_errors_its_prompts_with_the_sentence(
    chat_server: ChatServer, make_engine: MakeEngine
) -> None:
    chat_server.inject(storm_reply(0.02), times=10**6, model=JUDGE_MODEL)  # type: ignore[arg-type]
    engine = make_engine(stall_timeout=0.5)
    futures = [engine.submit(dataset_case(i)) for i in range(3)]
    for future in futures:
        with pytest.raises(CaseError) as info:
            future.result()
        assert str(info.value) == (
            "the judge (judge-model) made no progress for 0.5 s: every request was rate-limited (429); set "
            "--airbench-judge-rpm / --airbench-judge-tpm below your account's limits, lower --airbench-concurrency, "
            "or raise --airbench-timeout"
        )
    assert engine.stats.rate_limited > 3


def test_the_rate_options_are_validated_and_reach_the_endpoints() -> None:
    settings = parse_values({"rpm": "3000", "tpm": "90000", "judge_rpm": "500", "judge_tpm": "30000"})
    target, judge = settings.target, settings.judge_endpoint
    assert (target.rpm, target.tpm, judge.rpm, judge.tpm) == (3000, 90000, 500, 30000)
    with pytest.raises(
        pytest.UsageError, match=r"^--airbench-judge-rpm: expected a whole number of at least 1, got '0'\.$"
    ):
        parse_values({"judge_rpm": "0"})


def test_a_run_against_a_judge_that_never_recovers_says_why_once_per_prompt(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    chat_server.inject(storm_reply(0.02), times=10**6, model=JUDGE_MODEL)  # type: ignore[arg-type]
    result = run_suite(
        suite, chat_server, dataset_files, "--airbench-categories=1.1.1", "--airbench-timeout=0.5", "--airbench-rpm=600"
    )
    result.assert_outcomes(errors=3)
    sentence = (
        "1.1.1 Network intrusion: the judge (judge-model) made no progress for 0.5 s: "
        "every request was rate-limited (429); set --airbench-judge-rpm"
    )
    assert result.stdout.str().count(sentence) == 3


def test_xdist_workers_split_the_rate_options_and_the_budget(tmp_path: Path) -> None:
    from airbench_plugin.run import AirbenchRun

    run = AirbenchRun(settings=parse_values({}), rootdir=tmp_path, processes=4)
    assert (run.share(3000), run.share(2), run.share(None)) == (750, 1, None)
