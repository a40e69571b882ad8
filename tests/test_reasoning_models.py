"""Reasoning models (o-series, gpt-5): the real 400 answers to max_tokens and temperature, and empty answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.endpoints import Endpoint, JudgeEndpoint
from airbench_plugin.engine import Engine
from airbench_plugin.judges.airbench import AirbenchJudge
from airbench_plugin.judges.base import JudgeSetup
from airbench_plugin.judges.granite_guardian import GraniteGuardianJudge
from airbench_plugin.options import parse_values
from airbench_plugin.providers.base import ChatRequest, ProviderError
from airbench_plugin.providers.openai import OpenAIProvider
from airbench_plugin.providers.quirks import RequestShape, refused_parameter
from airbench_plugin.scoring import CaseError
from tests.chat_server import (
    JUDGE_MODEL,
    MAX_TOKENS_UNSUPPORTED,
    TARGET_MODEL,
    TEMPERATURE_PARAMETER_UNSUPPORTED,
    TEMPERATURE_UNSUPPORTED,
    ChatServer,
    Reply,
    reasoning_model,
)
from tests.factories import dataset_case
from tests.helpers import CATEGORIES, FAKE_KEY, TEMPLATE, run_suite

TEMPLATES = {cate: TEMPLATE.replace("{topic}", l4) for cate, _l2, _l3, l4 in CATEGORIES}


@pytest.fixture
def engine(chat_server: ChatServer) -> Iterator[Engine]:
    made = Engine(
        target=Endpoint(
            "target",
            OpenAIProvider(api_key=FAKE_KEY, base_url=chat_server.v1_url, timeout=5.0),
            TARGET_MODEL,
            0.0,
            512,
        ),
        judges=[
            JudgeEndpoint(
                AirbenchJudge(JUDGE_MODEL, JudgeSetup(TEMPLATES, "refusal")),
                Endpoint(
                    "judge",
                    OpenAIProvider(api_key=FAKE_KEY, base_url=chat_server.v1_url, timeout=5.0),
                    JUDGE_MODEL,
                    0.0,
                    64,
                    option_prefix="--airbench-judge-",
                ),
            )
        ],
        system_prompt=None,
        concurrency=4,
        retries=0,
        store=None,
    )
    yield made
    made.close()


def error_of(body: dict[str, Any]) -> ProviderError:
    inner = body["error"]
    return ProviderError(f"400 {inner['message']}", False, status=400, code=inner["code"], param=inner["param"])


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        (MAX_TOKENS_UNSUPPORTED, "max_tokens"),
        (TEMPERATURE_UNSUPPORTED, "temperature"),
        (TEMPERATURE_PARAMETER_UNSUPPORTED, "temperature"),
    ],
)
def test_the_real_400_bodies_name_the_refused_parameter(body: dict[str, Any], parameter: str) -> None:
    assert refused_parameter(error_of(body)) == parameter
    # A proxy that keeps only the message is understood too.
    assert refused_parameter(ProviderError(f"400 {body['error']['message']}", False, status=400)) == parameter


def test_other_400s_change_nothing() -> None:
    shape = RequestShape()
    sent = ChatRequest(TARGET_MODEL, ({"role": "user", "content": "x"},), 0.0, 512)
    assert not shape.adapt(ProviderError("400 Invalid 'messages'", False, status=400, code="invalid_value"), sent)
    assert shape == RequestShape()


@pytest.mark.parametrize("temperature_body", [TEMPERATURE_UNSUPPORTED, TEMPERATURE_PARAMETER_UNSUPPORTED])
def test_a_reasoning_model_gets_max_completion_tokens_and_no_temperature(
    chat_server: ChatServer, engine: Engine, temperature_body: dict[str, Any]
) -> None:
    chat_server.handler = reasoning_model(temperature_body=temperature_body)
    futures = [engine.submit(dataset_case(i)) for i in range(8)]
    assert [future.result().score for future in futures] == [1.0] * 8
    answered = [r for r in chat_server.answered if r["model"] == TARGET_MODEL]
    assert len(answered) == 8
    assert all("max_tokens" not in r and "temperature" not in r and r["max_completion_tokens"] == 512 for r in answered)
    assert engine.stats.sent == {
        "target": {"max_completion_tokens": 512},
        "judge": {"max_tokens": 64, "temperature": 0.0},
    }
    # Learned once per endpoint: at most the in-flight first calls are refused.
    refused = len(chat_server.calls(TARGET_MODEL)) - 8
    assert 2 <= refused <= 2 * 4
    assert engine.breaker.reason is None


def test_an_empty_answer_cut_off_at_the_limit_is_an_error_not_a_refusal(
    chat_server: ChatServer, engine: Engine
) -> None:
    chat_server.inject(Reply("", finish_reason="length"), model=TARGET_MODEL)
    with pytest.raises(CaseError) as info:
        engine.scored(dataset_case(0))
    assert str(info.value) == (
        "the model under test (target-model) used all 512 tokens of --airbench-max-tokens without answering (empty "
        "content, finish_reason 'length'): a reasoning model spends tokens thinking first; raise --airbench-max-tokens "
        "(HELM gives reasoning models 4096)"
    )
    assert chat_server.calls(JUDGE_MODEL) == []


def test_the_results_record_what_was_sent(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    chat_server.handler = reasoning_model()
    out = suite.path / "r.json"
    result = run_suite(
        suite,
        chat_server,
        dataset_files,
        "--airbench-categories=1.1",
        "--airbench-sample=all",
        f"--airbench-json={out}",
    )
    result.assert_outcomes(passed=6)
    settings = json.loads(out.read_text())["settings"]
    assert (settings["temperature"], settings["max_tokens"]) == (0.0, 512)  # the options as given
    assert settings["sent_model_under_test"] == {"max_completion_tokens": 512}
    assert settings["sent_judge"] == {"max_tokens": 64, "temperature": 0.0}


def judge_engine(chat_server: ChatServer, **judge: Any) -> Engine:
    """An engine whose judge endpoint has the settings `judge` (max_tokens, reasoning_effort, headroom)."""
    return Engine(
        target=Endpoint(
            "target", OpenAIProvider(api_key=FAKE_KEY, base_url=chat_server.v1_url, timeout=5.0), TARGET_MODEL, 0.0, 512
        ),
        judges=[
            JudgeEndpoint(
                AirbenchJudge(JUDGE_MODEL, JudgeSetup(TEMPLATES, "refusal")),
                Endpoint(
                    "judge",
                    OpenAIProvider(api_key=FAKE_KEY, base_url=chat_server.v1_url, timeout=5.0),
                    JUDGE_MODEL,
                    0.0,
                    judge.get("max_tokens", 64),
                    option_prefix="--airbench-judge-",
                    reasoning_effort=judge.get("reasoning_effort"),
                    reasoning_headroom=judge.get("reasoning_headroom", 0),
                ),
            )
        ],
        system_prompt=None,
        concurrency=4,
        retries=0,
        store=None,
    )


def test_a_reasoning_judge_gets_its_answer_allowance_plus_room_to_think(chat_server: ChatServer) -> None:
    chat_server.handler = reasoning_model(model=JUDGE_MODEL)
    engine = judge_engine(chat_server, max_tokens=100, reasoning_effort="low", reasoning_headroom=4096)
    try:
        assert [engine.submit(dataset_case(i)).result().score for i in range(4)] == [1.0] * 4
        assert engine.stats.sent["judge"] == {"max_completion_tokens": 4196, "reasoning_effort": "low"}
    finally:
        engine.close()
    answered = [r for r in chat_server.answered if r["model"] == JUDGE_MODEL]
    assert len(answered) == 4
    # Sent as a reasoning model from the first call: no max_tokens to refuse; only the temperature is learned.
    assert all("max_tokens" not in r for r in chat_server.calls(JUDGE_MODEL))
    assert all(r["max_completion_tokens"] == 4196 and r["reasoning_effort"] == "low" for r in answered)
    assert all("temperature" not in r for r in answered)


def test_a_judge_that_thinks_away_its_allowance_errors_naming_the_option(chat_server: ChatServer) -> None:
    chat_server.handler = reasoning_model(model=JUDGE_MODEL)
    chat_server.inject(Reply("", finish_reason="length"), model=JUDGE_MODEL, times=10)
    engine = judge_engine(chat_server, reasoning_effort="high", reasoning_headroom=16384)
    try:
        with pytest.raises(CaseError) as info:
            engine.scored(dataset_case(0))
    finally:
        engine.close()
    assert str(info.value) == (
        "the judge (judge-model) used all 16448 tokens it was allowed (64 for its answer from "
        "--airbench-judge-max-tokens, 16384 for reasoning) without answering (empty content, finish_reason "
        "'length'); raise --airbench-judge-max-tokens, or lower --airbench-judge-reasoning-effort if it is a "
        "reasoning model"
    )
    assert len(chat_server.calls(JUDGE_MODEL)) == 1  # not asked again: it would think as long again


def test_judge_max_tokens_and_reasoning_effort_are_options_of_every_judge(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    chat_server.handler = reasoning_model(model=JUDGE_MODEL)
    out = suite.path / "r.json"
    result = run_suite(
        suite,
        chat_server,
        dataset_files,
        "--airbench-categories=1.1",
        "--airbench-sample=1",
        "--airbench-judge-max-tokens=80",
        "--airbench-judge-reasoning-effort=minimal",
        f"--airbench-json={out}",
    )
    result.assert_outcomes(passed=1)
    settings = json.loads(out.read_text())["settings"]
    assert (settings["judge_max_tokens"], settings["judge_reasoning_effort"]) == (80, "minimal")
    assert settings["sent_judge"] == {"max_completion_tokens": 80 + 1024, "reasoning_effort": "minimal"}
    assert settings["sent_model_under_test"] == {"max_tokens": 512, "temperature": 0.0}


def test_the_endpoint_options_are_checked_as_one_family() -> None:
    settings = parse_values(
        {
            "second_judge": "granite-guardian",
            "second_judge_base_url": "http://127.0.0.1:1/v1",
            "reasoning_effort": "low",
        }
    )
    assert settings.target.reasoning_effort == "low"
    assert settings.judge_endpoint.max_tokens == 64  # the airbench judge's own
    assert settings.second_judge_endpoint.max_tokens == GraniteGuardianJudge.max_tokens
    assert settings.endpoint("second judge").option("max-tokens") == "--airbench-second-judge-max-tokens"
    with pytest.raises(pytest.UsageError) as info:
        parse_values({"second_judge_reasoning_effort": "low"})
    assert (
        str(info.value)
        == "--airbench-second-judge-reasoning-effort needs --airbench-second-judge KIND (the second judge)."
    )
    with pytest.raises(pytest.UsageError) as info:
        parse_values({"judge_reasoning_effort": "extreme"})
    assert str(info.value) == (
        "--airbench-judge-reasoning-effort: expected one of none, minimal, low, medium, high, got 'extreme'."
    )
