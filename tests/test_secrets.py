"""Secrets: keys go only to their own provider's host, and URL credentials appear in no output or log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from airbench_plugin.credentials import find_key, own_host
from airbench_plugin.providers.openai import OpenAIProvider
from airbench_plugin.providers.together import TogetherProvider
from airbench_plugin.redaction import LogScrubber, Redactor, redact, shown_url, url_secrets
from tests.chat_server import COMPLIANCE, JUDGE_MODEL, TARGET_MODEL, ChatServer, Reply
from tests.helpers import FAKE_KEY, assert_usage_error, suite_args

QUERY_SECRET = "qs3cretVALUE42"
PASSWORD = "hunter2hunter2"
PROXY_KEY = "proxy-key-0123456789"
JUDGE_PROXY_KEY = "judge-proxy-key-9876543210"


def every_output(suite: pytest.Pytester, result: pytest.RunResult) -> str:
    """The terminal, and every file the run wrote: reports, JUnit, pytest-html, the cache."""
    texts = [result.stdout.str(), result.stderr.str()]
    for path in suite.path.rglob("*"):
        if path.is_file() and path.suffix not in (".py", ".csv"):
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


OUTPUTS = (
    "--airbench-json=out/r.json",
    "--airbench-report=out/r.html",
    "--airbench-junit-dir=out/junit",
    "--junitxml=out/junit.xml",
    "-o",
    "junit_logging=all",
    "--html=out/pytest.html",
    "--self-contained-html",
    "-rA",
)


# --- which key goes where ---------------------------------------------------------------------


def test_own_hosts() -> None:
    assert own_host(OpenAIProvider, None)
    assert own_host(OpenAIProvider, "https://api.openai.com/v1")
    assert not own_host(OpenAIProvider, "https://api.openai.com.evil.example/v1")
    assert not own_host(OpenAIProvider, "http://127.0.0.1:8000/v1")
    assert own_host(TogetherProvider, "https://api.together.xyz/v1")
    assert not own_host(TogetherProvider, "https://api.openai.com/v1")


def test_find_key_sends_provider_keys_only_to_their_own_host() -> None:
    environ = {"OPENAI_API_KEY": "sk-real", "MY_PROXY_KEY": "proxy"}
    assert find_key(OpenAIProvider, environ, {}) == "sk-real"
    assert find_key(OpenAIProvider, environ, {}, base_url="https://api.openai.com/v1") == "sk-real"
    assert find_key(OpenAIProvider, environ, {}, base_url="https://proxy.example/v1") is None
    assert find_key(OpenAIProvider, environ, {}, base_url="https://proxy.example/v1", key_env="MY_PROXY_KEY") == (
        "proxy"
    )
    # A named variable may also come from .env, and it is used for the provider's own host too.
    assert find_key(OpenAIProvider, {}, {"MY_PROXY_KEY": "from-dotenv"}, key_env="MY_PROXY_KEY") == "from-dotenv"
    assert find_key(OpenAIProvider, environ, {}, key_env="UNSET_NAME") is None


@pytest.mark.parametrize("provider", ["openai", "together"])
def test_a_base_url_host_gets_no_key_by_default(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str, provider: str
) -> None:
    url = chat_server.v1_url if provider == "openai" else chat_server.url
    result = suite.runpytest(
        *suite_args(chat_server, *dataset_files, "--airbench-categories=2.5.2"),
        f"--airbench-provider={provider}",
        f"--airbench-base-url={url}",
        f"--airbench-judge-provider={provider}",
        f"--airbench-judge-base-url={url}",
    )
    result.assert_outcomes(passed=3)
    assert len(chat_server.authorizations) == 6
    assert set(chat_server.authorizations) == {""}  # no Authorization header at all
    assert FAKE_KEY not in every_output(suite, result)


def test_named_variables_are_sent_to_their_endpoint(
    suite: pytest.Pytester,
    chat_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_PROXY_KEY", PROXY_KEY)
    monkeypatch.setenv("MY_JUDGE_KEY", JUDGE_PROXY_KEY)
    result = suite.runpytest(
        *suite_args(chat_server, *dataset_files, "--airbench-categories=2.5.2"),
        "--airbench-api-key-env=MY_PROXY_KEY",
        "--airbench-judge-api-key-env=MY_JUDGE_KEY",
    )
    result.assert_outcomes(passed=3)
    sent = {
        request["model"]: authorization
        for request, authorization in zip(chat_server.calls(), chat_server.authorizations, strict=True)
    }
    assert sent == {TARGET_MODEL: f"Bearer {PROXY_KEY}", JUDGE_MODEL: f"Bearer {JUDGE_PROXY_KEY}"}
    assert PROXY_KEY not in every_output(suite, result)


def test_named_variables_can_be_set_in_the_ini_file(
    suite: pytest.Pytester,
    chat_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_PROXY_KEY", PROXY_KEY)
    ini = suite.makeini("[pytest]\nairbench_api_key_env = MY_PROXY_KEY\nairbench_judge_api_key_env = MY_PROXY_KEY\n")
    result = suite.runpytest(*suite_args(chat_server, *dataset_files, "--airbench-categories=2.5.2"), "-c", str(ini))
    result.assert_outcomes(passed=3)
    assert set(chat_server.authorizations) == {f"Bearer {PROXY_KEY}"}


def test_a_named_variable_that_is_unset_is_one_sentence(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    result = suite.runpytest(*suite_args(chat_server, *dataset_files), "--airbench-judge-api-key-env=NOT_SET_ANYWHERE")
    assert_usage_error(
        result,
        "--airbench-judge-api-key-env: the variable NOT_SET_ANYWHERE is not set, neither in the environment nor "
        "in a .env file in the working directory; set it or drop the option.",
    )
    assert chat_server.calls() == []


def test_a_bad_variable_name_is_one_sentence(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    result = suite.runpytest(*suite_args(chat_server, *dataset_files), "--airbench-api-key-env=sk-abc123")
    assert_usage_error(
        result,
        "--airbench-api-key-env: expected the name of an environment variable such as MY_PROXY_KEY, got 'sk-abc123'.",
    )


# --- credentials in URLs ----------------------------------------------------------------------


def test_a_query_secret_echoed_by_the_server_reaches_no_output(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    """The server's 404 quotes the request path, `?api_key=...` included."""
    result = suite.runpytest(
        *suite_args(chat_server, *dataset_files, "--airbench-categories=1.1.1"),
        f"--airbench-base-url={chat_server.v1_url}?api_key={QUERY_SECRET}",
        *OUTPUTS,
    )
    text = every_output(suite, result)
    assert "no route /v1/?api_key=***" in text  # the message is there, without the secret
    assert QUERY_SECRET not in text
    assert (suite.path / "out" / "r.json").is_file() and (suite.path / "out" / "pytest.html").is_file()


def test_a_password_in_the_base_url_never_reaches_a_log_line(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    """The HTTP client logs `HTTP Request: POST http://user:pass@host/...` at INFO."""
    chat_server.inject(Reply(COMPLIANCE), times=3, model=TARGET_MODEL)
    url = f"http://bob:{PASSWORD}@127.0.0.1:{chat_server.port}/v1"
    result = suite.runpytest(
        *suite_args(chat_server, *dataset_files, "--airbench-categories=1.1.1"),
        f"--airbench-base-url={url}",
        "--log-level=INFO",
        "--log-cli-level=INFO",
        *OUTPUTS,
    )
    result.assert_outcomes(failed=3)
    text = every_output(suite, result)
    assert f"POST http://***@127.0.0.1:{chat_server.port}/v1/chat/completions" in text  # the log line is kept
    assert PASSWORD not in text
    assert logging.getLogRecordFactory() is logging.LogRecord  # the scrubber is gone with the run


def test_an_invalid_base_url_is_not_echoed_whole(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    result = suite.runpytest(
        *suite_args(chat_server, *dataset_files), f"--airbench-base-url=ftp://bob:{PASSWORD}@host/v1?api_key=abc"
    )
    assert_usage_error(
        result, "--airbench-base-url: expected an http:// or https:// URL, got 'ftp://***@host/v1?api_key=***'."
    )


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("localhost:8000", "localhost:8000"),
        (f"bob:{PASSWORD}@localhost:8000", "***@localhost:8000"),
        ("htp://h/v1?token=abc&x=1", "htp://h/v1?token=***&x=***"),
    ],
)
def test_shown_url(raw: str, shown: str) -> None:
    assert shown_url(raw) == shown


def test_url_secrets() -> None:
    assert url_secrets(f"https://bob:{PASSWORD}@h/v1?api_key=k1&org=o2") == ["k1", "o2", PASSWORD, f"bob:{PASSWORD}"]
    assert url_secrets("https://h/v1") == []
    assert url_secrets(None) == []
    assert url_secrets("http://[::1") == []  # not a URL urlsplit accepts: nothing found, no error


def test_redactor_scrubs_the_runs_secrets_and_nothing_else() -> None:
    redactor = Redactor.for_run([FAKE_KEY, None], [f"https://bob:pw@h/v1?api_key={QUERY_SECRET}&v=2"])
    text = (
        f"key {FAKE_KEY}; url https://bob:pw@h/v1?api_key={QUERY_SECRET}&v=2; "
        "the model wrote: https://alice:pw2@example.org and sk-proj-abcdefghijk; a password was passed"
    )
    assert redactor.scrub(text) == (
        "key ***; url https://***@h/v1?api_key=***&v=***; "
        "the model wrote: https://alice:pw2@example.org and sk-proj-abcdefghijk; a password was passed"
    )
    assert redactor.scrub_foreign(text) == (
        "key ***; url https://***@h/v1?api_key=***&v=***; "
        "the model wrote: https://***@example.org and sk-***; a password was passed"
    )


def test_redact_keeps_its_contract() -> None:
    assert redact(f"bad key {FAKE_KEY}", [FAKE_KEY]) == "bad key ***"
    assert redact("Incorrect API key provided: sk-proj-abcdefghijkl") == "Incorrect API key provided: sk-***"
    assert redact("GET /v1?access_token=abc&q=1") == "GET /v1?access_token=***&q=1"


def test_log_scrubber_covers_every_logger_and_is_removed(caplog: pytest.LogCaptureFixture) -> None:
    scrubber = LogScrubber(Redactor.for_run([], [f"http://bob:{PASSWORD}@h/v1"]))
    scrubber.install()
    try:
        with caplog.at_level(logging.INFO):
            logging.getLogger("httpx").info("HTTP Request: %s %s", "POST", f"http://bob:{PASSWORD}@h/v1/chat")
            logging.getLogger("some.library.deep").warning("retrying http://bob:%s@h", PASSWORD)
            try:
                raise ValueError(f"cannot reach http://bob:{PASSWORD}@h")
            except ValueError:
                logging.getLogger("x").exception("failed")
    finally:
        scrubber.uninstall()
    assert logging.getLogRecordFactory() is logging.LogRecord
    assert [r.getMessage() for r in caplog.records] == [
        "HTTP Request: POST http://***@h/v1/chat",
        "retrying http://***@h",
        "failed",
    ]
    assert PASSWORD not in caplog.text
    assert "cannot reach http://***@h" in caplog.text
