"""A retired or unknown model is one sentence: the providers' real 404 bodies stop the run at the first answer."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.endpoints import Endpoint, JudgeEndpoint
from airbench_plugin.engine import Engine
from airbench_plugin.judges.airbench import AirbenchJudge
from airbench_plugin.judges.base import JudgeSetup
from airbench_plugin.providers.base import ChatProvider, ProviderError
from airbench_plugin.providers.openai import OpenAIProvider
from airbench_plugin.providers.together import TogetherProvider
from airbench_plugin.retirement import (
    Lookup,
    Shutdown,
    look_up_shutdowns,
    model_gone,
    parse_shutdown_date,
    read_shutdown,
    today,
)
from airbench_plugin.scoring import CircuitOpen
from tests.chat_server import (
    JUDGE_MODEL,
    TARGET_MODEL,
    ChatServer,
    gone,
    model_object,
    openai_model_gone,
    together_model_gone,
)
from tests.factories import dataset_case
from tests.helpers import CATEGORIES, FAKE_KEY, TEMPLATE, assert_usage_error, run_suite

TEMPLATES = {cate: TEMPLATE.replace("{topic}", l4) for cate, _l2, _l3, l4 in CATEGORIES}
CALIBRATE = "`airbench calibrate --judge-model NAME`"


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
    futures = [engine.submit(dataset_case(i)) for i in range(12)]
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
        engine.scored(dataset_case(0))
    assert str(info.value) == (
        f"AIR-Bench stopped: the model under test {TARGET_MODEL} is not served by {chat_server.url} (404 "
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


# --- shutdown dates announced ahead -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "date"),
    [
        ("2027-01-14", dt.date(2027, 1, 14)),
        ("2027-01-14T00:00:00Z", dt.date(2027, 1, 14)),
        (1799884800, dt.date(2027, 1, 14)),  # Unix seconds
        ("2027-13-45", None),
        ("9999-01-01", None),
        ("1970-01-01", None),
        ("2027-01-14" + "\x1b[2J" * 20, None),
        ("x" * 10_000, None),
        (None, None),
        (True, None),
        ([2027, 1, 14], None),
        ({"date": "2027-01-14"}, None),
        (float("nan"), None),
        (float("inf"), None),
        (-1, None),
        (10**30, None),
    ],
)
def test_a_shutdown_date_is_read_only_when_it_is_one(value: object, date: dt.date | None) -> None:
    assert parse_shutdown_date(value) == date


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe", b"[]", b"null", b'{"id": "other-model", "shutdown_date": "2027-01-14"}', b"[" * 100_000],
)
def test_a_model_object_that_is_not_one_announces_nothing(body: bytes) -> None:
    assert read_shutdown(body, "m") is None


def test_an_endpoint_that_never_answers_is_not_waited_for() -> None:
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/models/m"
        assert look_up_shutdowns([Lookup("judge", "m", url)], timeout=0.2) == []


def test_the_header_line() -> None:
    shutdown = Shutdown("judge", "gpt-4o-2024-08-06", dt.date(2027, 1, 14))
    assert shutdown.header_line(dt.date(2026, 12, 3)) == "judge gpt-4o-2024-08-06: shuts down 2027-01-14 (42 days)"
    assert shutdown.header_line(dt.date(2027, 1, 13)) == "judge gpt-4o-2024-08-06: shuts down 2027-01-14 (1 day)"
    assert Shutdown("target", "gpt-4.1", dt.date(2027, 1, 14)).header_line(dt.date(2027, 1, 14)) == (
        "model under test gpt-4.1: shuts down 2027-01-14 (today)"
    )


def test_an_announced_shutdown_is_in_the_header_and_the_json_and_asked_once(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    """Under `-n 2` too: test_xdist.py's run that carries every output announces the judge's shutdown."""
    date = today() + dt.timedelta(days=42)
    chat_server.models[JUDGE_MODEL] = model_object(JUDGE_MODEL, shutdown_date=date.isoformat())
    chat_server.models[TARGET_MODEL] = model_object(TARGET_MODEL)  # served, no date announced
    out = suite.path / "r.json"
    result = run_suite(suite, chat_server, dataset_files, "--airbench-categories=1.1", f"--airbench-json={out}")
    result.assert_outcomes(passed=5)
    # The days are counted from the day the run started (a run may cross midnight).
    result.stdout.re_match_lines([rf"airbench: judge {JUDGE_MODEL}: shuts down {date.isoformat()} \(4[12] days\)"])
    assert "shuts down" not in result.stdout.str().replace(f"judge {JUDGE_MODEL}: shuts down", "", 1)
    settings = json.loads(out.read_text())["settings"]
    assert settings["shutdown_dates"] == {"judge": {"model": JUDGE_MODEL, "shutdown_date": date.isoformat()}}
    assert sorted(chat_server.lookups) == sorted([JUDGE_MODEL, TARGET_MODEL])  # once per run


def test_a_model_already_shut_down_is_one_sentence_before_any_call(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    date = today() - dt.timedelta(days=41)
    chat_server.models[JUDGE_MODEL] = model_object(JUDGE_MODEL, shutdown_date=date.isoformat())
    result = run_suite(suite, chat_server, dataset_files, "--airbench-categories=1.1")
    assert_usage_error(
        result,
        f"AIR-Bench stopped before any call: the judge model {JUDGE_MODEL} was shut down on {date.isoformat()}, "
        f"as {chat_server.v1_url} says. Pass --airbench-judge-model with a model the endpoint serves (nothing "
        f"replaces a judge behind your back), and measure how far its scores move from the official judge's with "
        f"{CALIBRATE} first (see the README's opening section).",
    )
    assert chat_server.calls() == []


def test_a_hostile_model_object_changes_nothing(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    chat_server.models[JUDGE_MODEL] = model_object(JUDGE_MODEL, shutdown_date="1999-99-99\x1b]0;pwned\x07")
    chat_server.models[TARGET_MODEL] = b'{"id": "target-model", "shutdown_date": '  # cut off
    result = run_suite(suite, chat_server, dataset_files, "--airbench-categories=1.1")
    result.assert_outcomes(passed=5)
    assert "shuts down" not in result.stdout.str()
    assert "pwned" not in result.stdout.str()
