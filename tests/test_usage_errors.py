"""Bad input stops the run before any request, with one sentence and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chat_server import ChatServer
from tests.helpers import FAKE_KEY, assert_usage_error, run_suite, suite_args, write_csv


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--airbench-threshold", "high", "--airbench-threshold: expected a number between 0 and 1, got 'high'."),
        ("--airbench-threshold", "1.5", "--airbench-threshold: expected a number between 0 and 1, got '1.5'."),
        ("--airbench-provider", "azure", "--airbench-provider: expected one of auto, openai, together, got 'azure'."),
        ("--airbench-judge-scale", "up", "--airbench-judge-scale: expected one of auto, refusal, harm, got 'up'."),
        ("--airbench-sample", "0", "--airbench-sample: expected a whole number of at least 1 or 'all', got '0'."),
        ("--airbench-sample-by", "l5", "--airbench-sample-by: expected one of l2, l3, l4, got 'l5'."),
        ("--airbench-seed", "x", "--airbench-seed: expected a whole number, got 'x'."),
        (
            "--airbench-region",
            "mars",
            "--airbench-region: expected one of default, china, eu_comprehensive, eu_mandatory, us, got 'mars'.",
        ),
        ("--airbench-max-tokens", "-3", "--airbench-max-tokens: expected a whole number of at least 1, got '-3'."),
        ("--airbench-temperature", "9", "--airbench-temperature: expected a number between 0 and 2, got '9'."),
        (
            "--airbench-base-url",
            "localhost:8000",
            "--airbench-base-url: expected an http:// or https:// URL, got 'localhost:8000'.",
        ),
        ("--airbench-concurrency", "0", "--airbench-concurrency: expected a whole number of at least 1, got '0'."),
        ("--airbench-timeout", "0", "--airbench-timeout: expected a number of seconds greater than 0, got '0'."),
        (
            "--airbench-confidence",
            "95",
            "--airbench-confidence: expected a confidence level of at least 0.5 and below 1, such as 0.95, got '95'.",
        ),
        ("--airbench-gate-by", "bound", "--airbench-gate-by: expected one of estimate, interval, got 'bound'."),
        (
            "--airbench-category-gates",
            "1=0.9",
            "--airbench-category-gates: expected PREFIX:RATE or NAME:RATE pairs such as '1:0.95 2.5:0.9' or "
            "'Security Risks:0.95', got '1=0.9'.",
        ),
    ],
)
def test_bad_option_values(
    suite: pytest.Pytester,
    chat_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    option: str,
    value: str,
    message: str,
) -> None:
    result = suite.runpytest(*suite_args(chat_server, *dataset_files), option, value)
    assert_usage_error(result, message)
    assert chat_server.calls() == []


def test_bad_ini_values_are_caught_too(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    ini = suite.makeini("[pytest]\nairbench_threshold = lots\n")
    result = suite.runpytest(*suite_args(chat_server, *dataset_files), "-c", str(ini))
    assert_usage_error(result, "--airbench-threshold: expected a number between 0 and 1, got 'lots'.")


@pytest.mark.parametrize(
    ("model", "provider", "message"),
    [
        (
            "gpt-4-turbo",
            "openai",
            "AIR-Bench needs an API key for the judge (gpt-4o-2024-05-13 via openai): set OPENAI_API_KEY "
            "(or OPENAI_KEY) in the environment or in a .env file in the working directory.",
        ),
        (
            "meta-llama/Llama-3-8b-chat-hf",
            "together",
            "AIR-Bench needs an API key for the model under test (meta-llama/Llama-3-8b-chat-hf via together): set "
            "TOGETHER_API_KEY (or TOGETHERAI_KEY) in the environment or in a .env file in the working directory.",
        ),
    ],
)
def test_missing_api_key(
    suite: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    dataset_files: tuple[Path, Path],
    model: str,
    provider: str,
    message: str,
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_KEY", "TOGETHER_API_KEY", "TOGETHERAI_KEY"):
        monkeypatch.delenv(name, raising=False)
    if provider == "together":
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)  # the judge's key is there; the target's is not
    result = suite.runpytest(
        "--airbench-model",
        model,
        f"--airbench-dataset={dataset_files[0]}",
        f"--airbench-judge-prompts={dataset_files[1]}",
    )
    assert_usage_error(result, message)


def test_keys_from_dotenv_with_the_authors_names(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, chat_server: ChatServer, dataset_files: tuple[Path, Path]
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_KEY"):
        monkeypatch.delenv(name, raising=False)
    (suite.path / ".env").write_text(f"OPENAI_KEY={FAKE_KEY}\n")
    args = suite_args(chat_server, *dataset_files)
    # The judge goes to the default OpenAI URL unless told otherwise: only the key matters here.
    result = suite.runpytest(*args, "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK


def test_unreadable_dataset(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.csv"
    result = suite.runpytest(*suite_args(chat_server, missing, dataset_files[1]))
    assert_usage_error(result, f"AIR-Bench: cannot read '{missing}': no such file.")
    assert chat_server.calls() == []


def test_local_dataset_needs_local_judge_prompts(
    suite: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    result = suite.runpytest("--airbench-model", "m", f"--airbench-dataset={dataset_files[0]}")
    assert_usage_error(
        result,
        "--airbench-judge-prompts: a local --airbench-dataset needs its judge templates too; pass "
        "--airbench-judge-prompts=FILE (a file with cate-idx and judge_prompt columns).",
    )


def test_row_without_a_judge_template(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str, tmp_path: Path
) -> None:
    prompts, _ = dataset_files
    judge = write_csv(tmp_path / "few.csv", ["cate-idx", "judge_prompt"], [["1.1.1", "{{QUESTION}} {{ANSWER}}"]])
    result = suite.runpytest(*suite_args(chat_server, prompts, judge))
    assert_usage_error(
        result,
        f"AIR-Bench: the judge templates in '{judge}' have no entry for cate-idx 1.1.6, 1.2.9, 2.5.1, 2.5.2, "
        "14.3940.21; use judge prompts from the same dataset revision.",
    )
    assert chat_server.calls() == []


def test_unknown_category(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    result = suite.runpytest(*suite_args(chat_server, *dataset_files), "--airbench-categories", "1,99")
    assert_usage_error(
        result,
        "AIR-Bench: unknown category '99': use a cate-idx prefix such as 1, 2.5 or 14.3940.21, or a level-2 name "
        "(Discrimination/Bias; Operational Misuses; Security Risks).",
    )


def test_missing_baseline_file(suite: pytest.Pytester, api_key: str) -> None:
    result = suite.runpytest("--airbench-baseline", "old.json")
    assert_usage_error(result, "--airbench-baseline: cannot read 'old.json'; pass a file written by --airbench-json.")


def test_regression_gate_needs_a_baseline(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--airbench-max-regression", "0.05")
    assert_usage_error(
        result, "--airbench-max-regression needs --airbench-baseline=PATH (a previous --airbench-json file)."
    )


def test_bad_cache_directory_is_one_sentence(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    blocker = suite.path / "a-file"
    blocker.write_text("not a directory")
    result = run_suite(suite, chat_server, dataset_files, f"--airbench-cache={blocker}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in result.errlines if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith(f"ERROR: --airbench-cache: cannot use '{blocker}' as the response cache (")
    assert lines[0].endswith("pass another directory or --airbench-no-cache.")
    assert chat_server.calls() == []


@pytest.mark.parametrize(
    ("baseline", "reason"),
    [
        ('{"results": [], "summary": {"refusal_rate": "0.9"}}', "it has no 'model' field"),
        ("[1, 2]", "the document is a list, not an object"),
        ("[" * 200_000 + "]" * 200_000, "the document is nested too deeply"),
    ],
)
def test_malformed_baseline_is_one_sentence_before_any_call(
    suite: pytest.Pytester,
    chat_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    baseline: str,
    reason: str,
) -> None:
    (suite.path / "old.json").write_text(baseline)
    result = run_suite(suite, chat_server, dataset_files, "--airbench-baseline=old.json")
    assert_usage_error(result, f"the baseline 'old.json' is not a usable --airbench-json file: {reason}.")
    assert chat_server.calls() == []


def test_a_dataset_path_given_apart_stops_the_run_before_it_moves_the_rootdir(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    """`--airbench-dataset PATH` with a space: pytest would root the run in a parent folder."""
    prompts, judge = dataset_files  # outside the directory pytest starts in
    args = [a for a in suite_args(chat_server, prompts, judge) if not a.startswith("--airbench-dataset=")]
    result = suite.runpytest(*args, "--airbench-dataset", str(prompts))
    assert_usage_error(
        result,
        f"--airbench-dataset: write --airbench-dataset={prompts}, with '=': pytest takes a path given as a "
        f"separate argument for a test path, and one outside {str(suite.path)!r} moves the root directory and "
        "skips your ini file.",
    )
    assert chat_server.calls() == []
