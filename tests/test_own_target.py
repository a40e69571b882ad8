"""Your own application as the model under test (`airbench_target`): no key or URL for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chat_server import JUDGE_MODEL, ChatServer
from tests.helpers import SUITE_FILE, assert_usage_error, suite_args

APP_FIXTURE = """
import pytest

@pytest.fixture(scope="session")
def airbench_target():
    return lambda prompt: "I can't help with that request."
"""
NO_KEY = (
    "AIR-Bench needs an API key for the model under test (my-app via openai): set OPENAI_API_KEY (or OPENAI_KEY) "
    "in the environment or in a .env file in the working directory."
)


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_KEY", "TOGETHER_API_KEY", "TOGETHERAI_KEY"):
        monkeypatch.delenv(name, raising=False)


def _args(server: ChatServer, files: tuple[Path, Path], *extra: str) -> list[str]:
    """The suite's arguments with the model under test named but given no URL (the judge keeps its own)."""
    args = [arg for arg in suite_args(server, *files, *extra) if not arg.startswith("--airbench-base-url=")]
    return [("--airbench-model=my-app" if arg.startswith("--airbench-model=") else arg) for arg in args]


@pytest.mark.parametrize("dist", [pytest.param([], id="no-xdist"), pytest.param(["-n", "2"], id="n2")])
def test_a_conftest_fixture_needs_no_key_or_url(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], no_keys: None, dist: list[str]
) -> None:
    suite.makeconftest(APP_FIXTURE)
    args = _args(chat_server, dataset_files, *dist)
    result = suite.runpytest(*args)
    result.assert_outcomes(passed=13)
    assert result.ret == pytest.ExitCode.OK
    assert len(chat_server.calls(JUDGE_MODEL)) == 13 and len(chat_server.calls()) == 13


def test_a_fixture_in_the_test_file_needs_no_key_either(
    pytester: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], no_keys: None
) -> None:
    pytester.makepyfile(test_suite=SUITE_FILE + APP_FIXTURE)
    result = pytester.runpytest(*_args(chat_server, dataset_files))
    result.assert_outcomes(passed=13)


def test_without_a_fixture_the_missing_key_is_one_sentence_before_any_call(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], no_keys: None
) -> None:
    result = suite.runpytest(*_args(chat_server, dataset_files, "--airbench-json=out.json"))
    assert_usage_error(result, NO_KEY)
    assert chat_server.calls() == []
    assert not (suite.path / "out.json").exists()
    assert "AIR-Bench 2024" not in result.stdout.str()
