"""Exit status, error messages and bad input around the edges of a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chat_server import COMPLIANCE, JUDGE_MODEL, TARGET_MODEL, ChatServer, Reply
from test_usage_errors import assert_usage_error

from airbench_plugin.plugin import exit_status
from airbench_plugin.providers.base import display_url
from conftest import suite_args

OK, FAILED = pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED
RATE_GATE = {"name": "min-refusal-rate", "passed": True}
ERROR_GATE = {"name": "max-error-rate", "passed": True}


def run(suite: pytest.Pytester, server: ChatServer, files: tuple[Path, Path], *extra: str) -> pytest.RunResult:
    return suite.runpytest(*suite_args(server, *files, *extra))


@pytest.mark.parametrize(
    ("status", "gates", "others", "complete", "expected"),
    [
        (FAILED, [RATE_GATE, ERROR_GATE], 0, True, OK),  # the gates decide
        (FAILED, [ERROR_GATE], 0, True, FAILED),  # the error-rate gate alone never passes failures
        (OK, [{**ERROR_GATE, "passed": False}], 0, True, FAILED),
        (FAILED, [RATE_GATE, ERROR_GATE], 1, True, FAILED),  # a failure outside the suite
        (FAILED, [RATE_GATE, ERROR_GATE], 0, False, FAILED),  # stopped or partial
        (pytest.ExitCode.INTERRUPTED, [RATE_GATE], 0, True, pytest.ExitCode.INTERRUPTED),
        (FAILED, [], 0, True, FAILED),
    ],
)
def test_exit_status(
    status: pytest.ExitCode, gates: list[dict[str, object]], others: int, complete: bool, expected: pytest.ExitCode
) -> None:
    assert exit_status(status, gates, others, complete, []) == expected


def test_error_rate_gate_alone_does_not_pass_failing_prompts(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    chat_server.inject(Reply(COMPLIANCE), times=100, model=TARGET_MODEL)
    result = run(suite, chat_server, dataset_files, "--airbench-max-error-rate=0.1")
    result.assert_outcomes(failed=13)
    assert result.ret == FAILED


def test_a_run_stopped_by_x_never_passes_the_gates(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    chat_server.inject(Reply(COMPLIANCE), model=TARGET_MODEL, prompt_contains="Prompt 2 for Network intrusion")
    result = run(suite, chat_server, dataset_files, "--airbench-sample=all", "-x", "--airbench-min-refusal-rate=0.5")
    assert result.ret == FAILED


def test_teardown_errors_fail_the_run_despite_gates(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    suite.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def airbench_target():
            yield lambda prompt: "I can't help with that request."
            raise RuntimeError("could not shut the app down")
        """
    )
    result = run(suite, chat_server, dataset_files, "--airbench-min-refusal-rate=0.5")
    result.assert_outcomes(passed=13, errors=1)
    assert result.ret == FAILED


def test_xfailed_prompts_still_count(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    suite.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if "1.1.1-" in item.nodeid:
                    item.add_marker(pytest.mark.xfail(reason="known weakness"))
        """
    )
    chat_server.inject(Reply(COMPLIANCE), times=3, model=TARGET_MODEL, prompt_contains="for Network intrusion")
    out = suite.path / "r.json"
    result = run(suite, chat_server, dataset_files, "--airbench-sample=all", f"--airbench-json={out}")
    result.assert_outcomes(passed=15, xfailed=3)
    summary = json.loads(out.read_text())["summary"]
    assert (summary["n"], summary["refusal_rate"]) == (18, 15 / 18)


def test_a_failing_application_is_recorded_with_its_message(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    suite.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def airbench_target():
            raise RuntimeError("my app failed to start")
        """
    )
    out = suite.path / "r.json"
    run(suite, chat_server, dataset_files, f"--airbench-json={out}")
    errors = {r["error"] for r in json.loads(out.read_text())["results"]}
    assert errors == {"RuntimeError: my app failed to start"}


def test_a_bad_judge_key_stops_the_run(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    chat_server.inject(Reply("Incorrect API key provided", status=401), times=1000, model=JUDGE_MODEL)
    result = run(suite, chat_server, dataset_files, "--airbench-sample=all", "--airbench-concurrency=2")
    assert "AIR-Bench stopped early: the first 3 calls to the judge" in result.stdout.str()
    assert len(chat_server.calls(TARGET_MODEL)) < 18
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_judge_content_filter_is_one_clear_error(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    chat_server.inject(Reply("filtered", status=400, error_code="content_filter"), model=JUDGE_MODEL)
    result = run(suite, chat_server, dataset_files, "--airbench-categories=1.1.1")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*the judge's provider refused to grade this answer (content filter)*"])
    assert len(chat_server.calls(JUDGE_MODEL)) == 3


def test_bad_cache_directory_is_one_sentence(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    blocker = suite.path / "a-file"
    blocker.write_text("not a directory")
    result = run(suite, chat_server, dataset_files, f"--airbench-cache={blocker}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in result.errlines if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith(f"ERROR: --airbench-cache: cannot use '{blocker}' as the response cache (")
    assert lines[0].endswith("pass another directory or --airbench-no-cache.")
    assert chat_server.calls() == []


@pytest.mark.parametrize(
    "baseline",
    [
        {"results": [], "summary": {"refusal_rate": "0.9"}},
        {"results": [], "summary": {}, "categories": {"l2": []}},
        [1, 2],
    ],
)
def test_malformed_baseline_is_one_sentence_before_any_call(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str, baseline: object
) -> None:
    (suite.path / "old.json").write_text(json.dumps(baseline))
    result = run(suite, chat_server, dataset_files, "--airbench-baseline=old.json")
    assert_usage_error(result, "the baseline 'old.json' is not a file written by --airbench-json.")
    assert chat_server.calls() == []


def test_an_unwritable_output_is_reported_and_the_others_are_written(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    (suite.path / "taken").write_text("a file where a directory should be")
    result = run(suite, chat_server, dataset_files, "--airbench-json=taken/r.json", "--airbench-report=report.html")
    result.assert_outcomes(passed=13)
    result.stdout.fnmatch_lines(["ERROR: --airbench-json: could not write taken/r.json: *"])
    assert (suite.path / "report.html").is_file()
    assert result.ret == FAILED
    assert "Traceback" not in result.stdout.str()


def test_credentials_in_a_base_url_are_never_shown() -> None:
    assert display_url("https://user:s3cret@proxy.example:8443/v1?api-key=abc#x") == "https://proxy.example:8443/v1"
    assert display_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert display_url(None) is None
