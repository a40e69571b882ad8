"""Failing fast and saying it once: unreachable APIs and hubs, requests that never end, targets that hang."""

from __future__ import annotations

import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import httpx2

from airbench_plugin.endpoints import Endpoint, JudgeEndpoint
from airbench_plugin.engine import Engine
from airbench_plugin.judges.airbench import AirbenchJudge
from airbench_plugin.judges.base import JudgeSetup
from airbench_plugin.options import DEFAULT_DATASET
from airbench_plugin.providers.base import ProviderError
from airbench_plugin.providers.openai import OpenAIProvider
from airbench_plugin.providers.sdk import translate
from airbench_plugin.scoring import CaseError, CircuitOpen
from tests.chat_server import JUDGE_MODEL, REFUSAL, TARGET_MODEL, ChatServer, Reply
from tests.factories import dataset_case
from tests.helpers import CATEGORIES, FAKE_KEY, TEMPLATE, assert_usage_error, run_suite, suite_args

TEMPLATES = {cate: TEMPLATE.replace("{topic}", l4) for cate, _l2, _l3, l4 in CATEGORIES}
REFUSED_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens on loopback


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.close()


def make_engine(engines: list[Engine], url: str, *, timeout: float = 5.0, retries: int = 6) -> Engine:
    engine = Engine(
        target=Endpoint(
            "target", OpenAIProvider(api_key=FAKE_KEY, base_url=url, timeout=timeout), TARGET_MODEL, 0.0, 512
        ),
        judges=[
            JudgeEndpoint(
                AirbenchJudge(JUDGE_MODEL, JudgeSetup(TEMPLATES, "refusal")),
                Endpoint(
                    "judge",
                    OpenAIProvider(api_key=FAKE_KEY, base_url=url, timeout=timeout),
                    JUDGE_MODEL,
                    0.0,
                    64,
                    option_prefix="--airbench-judge-",
                ),
            )
        ],
        system_prompt=None,
        concurrency=4,
        retries=retries,
        store=None,
    )
    engines.append(engine)
    return engine


def test_a_refused_connection_stops_the_run_without_waiting_out_the_retries(engines: list[Engine]) -> None:
    # Six retries with backoff would take half a minute per prompt; the breaker counts each attempt.
    engine = make_engine(engines, REFUSED_URL, retries=6)
    futures = [engine.submit(dataset_case(i)) for i in range(8)]
    with pytest.raises(CircuitOpen) as info:
        futures[0].result()
    assert str(info.value) == (
        f"AIR-Bench stopped early: the first 3 calls to the model under test (target-model via openai at "
        f"{REFUSED_URL}) all failed with: cannot connect to {REFUSED_URL} (connection refused). Nothing accepts "
        "connections there: check --airbench-base-url and that the server is running, then run again."
    )
    assert engine.stats.calls < 7  # one prompt alone would have made 7 attempts


def test_an_unknown_host_is_told_apart_from_a_bad_key(engines: list[Engine]) -> None:
    url = "http://airbench-no-such-host.invalid/v1"  # .invalid never resolves (RFC 2606)
    engine = make_engine(engines, url)
    futures = [engine.submit(dataset_case(i)) for i in range(4)]
    with pytest.raises(CircuitOpen) as info:
        futures[0].result()
    assert str(info.value).endswith(
        f"all failed with: cannot connect to {url} (unknown host). That host name does not resolve: "
        "check --airbench-base-url and the network, then run again."
    )
    assert "API key" not in str(info.value)


def test_a_trickling_body_is_bounded_by_the_timeout(chat_server: ChatServer, engines: list[Engine]) -> None:
    # One byte every 50 ms: the whole answer would take about 20 s, every read only 50 ms.
    chat_server.inject(Reply(REFUSAL, trickle=0.05), times=10, model=TARGET_MODEL)
    engine = make_engine(engines, chat_server.v1_url, timeout=0.5, retries=0)
    with pytest.raises(CaseError) as info:
        engine.scored(dataset_case())
    assert (
        str(info.value)
        == f"the model under test (target-model) failed: no answer from {chat_server.v1_url} within 0.5 s"
    )


HANGING_TARGET = """
    import threading

    import pytest


    @pytest.fixture(scope="session")
    def airbench_target():
        def answer(prompt):
            if "Prompt 0 " in prompt:
                threading.Event().wait()  # never returns
            return "I can't help with that request."

        return answer
"""


@pytest.mark.heavy
def test_a_sync_target_that_never_returns_errors_its_prompt_and_the_process_exits(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    suite.makeconftest(textwrap.dedent(HANGING_TARGET))
    # A subprocess, because what is tested is that the interpreter exits. The timeout bounds the
    # judge's loopback calls too, so it is long enough for a loaded machine (0.5 s was not).
    result = suite.runpytest_subprocess(
        *suite_args(
            chat_server, *dataset_files, "--airbench-categories=1.1.1", "--airbench-timeout=3", "--airbench-retries=0"
        )
    )
    result.assert_outcomes(passed=2, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*the airbench_target fixture gave no answer within 3 s*"])


def test_an_unreachable_api_is_said_once(
    suite: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str, chat_server: ChatServer
) -> None:
    chat_server.url = "http://127.0.0.1:9"  # suite_args points both endpoints there
    result = run_suite(suite, chat_server, dataset_files, "--airbench-sample=all")
    text = result.stdout.str() + result.stderr.str()
    assert text.count("AIR-Bench stopped early: the first 3 calls") == 1
    result.stdout.fnmatch_lines(["*Interrupted: AIR-Bench stopped early*(connection refused). Nothing accepts*"])
    assert "During handling" not in text
    assert "API key" not in text


def test_the_default_dataset_without_a_network_says_the_way_out_at_once(
    suite: pytest.Pytester, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # no hub: the connection is refused
    result = suite.runpytest(f"--airbench-model={TARGET_MODEL}", "-p", "no:cacheprovider")
    assert_usage_error(
        result,
        "AIR-Bench: cannot reach the Hugging Face Hub at http://127.0.0.1:9 to load "
        f"'{DEFAULT_DATASET}': pass local files with --airbench-dataset=FILE and --airbench-judge-prompts=FILE, "
        "or, if the datasets cache already holds this revision, set HF_HUB_OFFLINE=1 to use it.",
    )


def _request() -> httpx2.Request:
    """A request to the unreachable endpoint, as the SDK's transport makes it."""
    import httpx2

    return httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


def _raised_as_aiohttp_does(os_error: OSError) -> Exception:
    """The chain the SDK's aiohttp transport raises: APITimeoutError <- ConnectTimeout <- the OS error."""
    import httpx2
    import openai

    request = _request()
    try:
        try:
            try:
                raise os_error
            except OSError as exc:
                raise httpx2.ConnectTimeout(f"Cannot connect to host 127.0.0.1:9 [{exc}]") from exc
        except httpx2.ConnectTimeout as exc:
            raise openai.APITimeoutError(request=request) from exc
    except openai.APITimeoutError as exc:
        return exc
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("os_error", "said"),
    [
        (ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)"), "(connection refused)"),
        (socket.gaierror(-2, "Name or service not known"), "(unknown host)"),
    ],
)
def test_a_refused_connection_is_said_so_even_when_the_transport_calls_it_a_timeout(
    os_error: OSError, said: str
) -> None:
    import openai

    sdk = OpenAIProvider.load_sdk()

    def translated(exc: Exception) -> ProviderError:
        error = translate(
            exc,
            status_error=sdk.status_error,
            timeout_error=sdk.timeout_error,
            connection_error=sdk.connection_error,
            base_url="http://127.0.0.1:9/v1",
            timeout=5.0,
            secrets=(),
        )
        assert isinstance(error, ProviderError)
        return error

    refused = translated(_raised_as_aiohttp_does(os_error))
    assert (refused.kind, str(refused)) == ("connection", f"cannot connect to http://127.0.0.1:9/v1 {said}")
    # A plain timeout, built as the SDK builds it (newer SDKs read the request's headers when they make one).
    timeout = translated(openai.APITimeoutError(request=_request()))
    assert (timeout.kind, str(timeout)) == ("timeout", "no answer from http://127.0.0.1:9/v1 within 5 s")


def test_an_sdk_that_cannot_be_imported_stops_the_run_with_one_sentence(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    """The SDK is imported on the first call: a broken install is a sentence, not a traceback per test.

    In-process: pytester puts this process's `openai` back in sys.modules once the run is over."""
    suite.makeconftest(
        """
        import sys

        sys.modules["openai"] = None  # what a half-removed package looks like to `import openai`
        """
    )
    result = run_suite(suite, chat_server, dataset_files, "--airbench-sample=all")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*Interrupted: AIR-Bench stopped early: the first 3 calls to the model under test (target-model via "
            "openai at *) all failed with: the openai SDK cannot be imported (import of openai halted; None in "
            "sys.modules). Reinstall it (pip install --force-reinstall openai), then run again.*"
        ]
    )
    assert "Check the API key" not in text
    assert "Traceback" not in text
    assert chat_server.calls() == []
