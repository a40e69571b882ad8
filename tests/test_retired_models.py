"""A retired or unknown model is one sentence: the providers' real 404 bodies stop the run at the first answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.dataset import Case
from airbench_plugin.engine import CircuitOpen, Endpoint, Engine, JudgeEndpoint
from airbench_plugin.judges.airbench import AirbenchJudge
from airbench_plugin.judges.base import JudgeSetup
from airbench_plugin.providers.base import ChatProvider, ProviderError
from airbench_plugin.providers.openai import OpenAIProvider
from airbench_plugin.providers.together import TogetherProvider
from airbench_plugin.retirement import model_gone
from tests.chat_server import (
    JUDGE_MODEL,
    TARGET_MODEL,
    ChatServer,
    gone,
    openai_model_gone,
    together_model_gone,
)
from tests.helpers import CATEGORIES, FAKE_KEY, TEMPLATE, run_suite

TEMPLATES = {cate: TEMPLATE.replace("{topic}", l4) for cate, _l2, _l3, l4 in CATEGORIES}
CALIBRATE = "`airbench calibrate --judge-model NAME`"


def case(i: int) -> Case:
    return Case("1.1.1", "Security Risks", "Confidentiality", "Network intrusion", f"Prompt {i}: do harm", i)


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.close()


def make_engine(engines: list[Engine], target: ChatProvider, judge: ChatProvider) -> Engine:
    engine = Engine(
        target=Endpoint("target", target, TARGET_MODEL, 0.0, 512),
        judges=[
            JudgeEndpoint(
                AirbenchJudge(JUDGE_MODEL, JudgeSetup(TEMPLATES, "refusal")),
                Endpoint("judge", judge, JUDGE_MODEL, 0.0, 64, option_prefix="--airbench-judge-"),
            )
        ],
        system_prompt=None,
        concurrency=4,
        retries=6,
        store=None,
    )
    engines.append(engine)
    return engine


@pytest.mark.parametrize(
    "body",
    [openai_model_gone("m"), openai_model_gone("m", deprecated=False), together_model_gone("m")],
    ids=["openai-deprecated", "openai-unknown", "together"],
)
def test_the_providers_404_bodies_say_the_model_is_gone(body: dict[str, Any]) -> None:
    inner = body["error"]
    assert model_gone(ProviderError(f"404 {inner['message']}", False, status=404, code=inner["code"]))
    # A proxy that keeps only the message is understood too; another 404 is not a retired model.
    assert model_gone(ProviderError(f"404 {inner['message']}", False, status=404))
    assert not model_gone(ProviderError("404 no route /v1/chat/completions", False, status=404))
    assert not model_gone(ProviderError(f"400 {inner['message']}", False, status=400, code=inner["code"]))


def test_a_retired_judge_stops_the_run_at_its_first_answer(chat_server: ChatServer, engines: list[Engine]) -> None:
    chat_server.handler = gone(JUDGE_MODEL, openai_model_gone(JUDGE_MODEL))
    url = chat_server.v1_url
    engine = make_engine(
        engines,
        OpenAIProvider(api_key=FAKE_KEY, base_url=url, timeout=5.0),
        OpenAIProvider(api_key=FAKE_KEY, base_url=url, timeout=5.0),
    )
    futures = [engine.submit(case(i)) for i in range(12)]
    with pytest.raises(CircuitOpen) as info:
        futures[0].result()
    assert str(info.value) == (
        f"AIR-Bench stopped: the judge model {JUDGE_MODEL} is not served by {url} (404 The model `{JUDGE_MODEL}` "
        "has been deprecated, learn more here: https://platform.openai.com/docs/deprecations). Pass "
        "--airbench-judge-model with a model the endpoint serves (nothing replaces a judge behind your back), and "
        f"measure how far its scores move from the official judge's with {CALIBRATE} first (see the README's "
        "opening section)."
    )
    for future in futures:
        with pytest.raises(CircuitOpen) as other:
            future.result()
        assert str(other.value) == str(info.value)  # the same sentence, never a second reason
    # No retries: at most the calls already in flight when the first 404 came back.
    assert len(chat_server.calls(JUDGE_MODEL)) <= 4


def test_a_model_together_does_not_serve_names_the_model_option(chat_server: ChatServer, engines: list[Engine]) -> None:
    chat_server.handler = gone(TARGET_MODEL, together_model_gone(TARGET_MODEL))
    engine = make_engine(
        engines,
        TogetherProvider(api_key=FAKE_KEY, base_url=chat_server.url, timeout=5.0),
        OpenAIProvider(api_key=FAKE_KEY, base_url=chat_server.v1_url, timeout=5.0),
    )
    with pytest.raises(CircuitOpen) as info:
        engine.verdict(case(0))
    assert str(info.value) == (
        f"AIR-Bench stopped: the model under test model {TARGET_MODEL} is not served by {chat_server.url} (404 "
        f"Unable to access model {TARGET_MODEL}. Please visit https://api.together.ai/models to view the list of "
        "supported models.). Pass --airbench-model with a model the endpoint serves, then run again."
    )
    assert chat_server.calls(JUDGE_MODEL) == []
    assert len(chat_server.calls(TARGET_MODEL)) == 1


@pytest.mark.parametrize("dist", [pytest.param([], id="no-xdist"), pytest.param(["-n", "2"], id="n2")])
def test_a_retired_judge_is_one_sentence_with_or_without_xdist(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str, dist: list[str]
) -> None:
    chat_server.handler = gone(JUDGE_MODEL, openai_model_gone(JUDGE_MODEL, deprecated=False))
    result = run_suite(suite, chat_server, dataset_files, "--airbench-sample=all", "--airbench-concurrency=2", *dist)
    text = result.stdout.str() + result.stderr.str()
    sentence = (
        f"AIR-Bench stopped: the judge model {JUDGE_MODEL} is not served by {chat_server.v1_url} (404 The model "
        f"`{JUDGE_MODEL}` does not exist or you do not have access to it.). Pass --airbench-judge-model"
    )
    assert text.count(sentence) == 1, text
    assert "Traceback" not in text and "During handling" not in text
    assert result.ret == pytest.ExitCode.INTERRUPTED
    processes = 2 if dist else 1
    assert len(chat_server.calls(JUDGE_MODEL)) <= processes * 2  # the calls in flight, never a retry
