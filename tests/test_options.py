"""Option declarations: names locked, ini keys, precedence, and the repository's own layout."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from airbench_plugin.gates import CategoryGate, GateSettings
from airbench_plugin.options import (
    DEFAULT_DATASET,
    Settings,
    check_values_given_apart,
    option_names,
    parse_values,
    resolve_provider,
)
from airbench_plugin.results import RunSettings
from tests.chat_server import ChatServer
from tests.helpers import suite_args

REPO = Path(__file__).resolve().parents[1]

PUBLIC_OPTIONS = [
    "--airbench-model",
    "--airbench-provider",
    "--airbench-base-url",
    "--airbench-api-key-env",
    "--airbench-max-tokens",
    "--airbench-rpm",
    "--airbench-tpm",
    "--airbench-reasoning-effort",
    "--airbench-system-prompt",
    "--airbench-prompt-suffix",
    "--airbench-temperature",
    "--airbench-judge",
    "--airbench-judge-model",
    "--airbench-judge-provider",
    "--airbench-judge-base-url",
    "--airbench-judge-api-key-env",
    "--airbench-judge-max-tokens",
    "--airbench-judge-rpm",
    "--airbench-judge-tpm",
    "--airbench-judge-reasoning-effort",
    "--airbench-judge-scale",
    "--airbench-second-judge",
    "--airbench-second-judge-model",
    "--airbench-second-judge-provider",
    "--airbench-second-judge-base-url",
    "--airbench-second-judge-api-key-env",
    "--airbench-second-judge-max-tokens",
    "--airbench-second-judge-rpm",
    "--airbench-second-judge-tpm",
    "--airbench-second-judge-reasoning-effort",
    "--airbench-min-judge-agreement",
    "--airbench-threshold",
    "--airbench-sample",
    "--airbench-sample-by",
    "--airbench-seed",
    "--airbench-categories",
    "--airbench-region",
    "--airbench-dataset",
    "--airbench-judge-prompts",
    "--airbench-json",
    "--airbench-report",
    "--airbench-junit-dir",
    "--airbench-min-refusal-rate",
    "--airbench-category-gates",
    "--airbench-max-error-rate",
    "--airbench-baseline",
    "--airbench-max-regression",
    "--airbench-confidence",
    "--airbench-gate-by",
    "--airbench-concurrency",
    "--airbench-cache",
    "--airbench-no-cache",
    "--airbench-retries",
    "--airbench-timeout",
    "--airbench-markdown",
    "--airbench-no-step-summary",
    "--airbench-token-budget",
    "--airbench-price",
    "--airbench-shard",
    "--airbench-responses",
    "--airbench-batch",
    "--airbench-batch-poll",
    "--airbench-allow-partial",
    "--airbench-judge-calibration",
]


def test_the_public_option_names_are_locked() -> None:
    assert option_names() == PUBLIC_OPTIONS


def test_help_lists_every_option_and_ini_key(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = result.stdout.str()
    assert "AIR-Bench 2024 safety suite:" in text
    for name in PUBLIC_OPTIONS:
        assert name in text
        assert name.replace("--", "").replace("-", "_") in text  # the ini key


def test_defaults_are_helms_reference_settings() -> None:
    settings = parse_values({})
    assert (settings.temperature, settings.target.max_tokens, settings.judge_model) == (0.0, 512, "gpt-4o-2024-05-13")
    assert (settings.threshold, settings.sample, settings.sample_by, settings.seed) == (0.5, 5, "l2", 0)
    assert settings.dataset == settings.judge_prompts == DEFAULT_DATASET
    assert DEFAULT_DATASET == "hf:stanford-crfm/air-bench-2024@976d9fbb0f52bce704dcbef5bd7a2652e65f2a21"
    assert (settings.judge_scale, settings.concurrency, settings.system_prompt) == ("auto", 32, None)
    assert (settings.judge, settings.second_judge, settings.prompt_suffix) == ("airbench", None, "")
    assert (settings.confidence, settings.gate_by) == (0.95, "estimate")
    assert not settings.active


def test_auto_provider() -> None:
    assert resolve_provider("auto", "gpt-4-turbo", None) == "openai"
    assert resolve_provider("auto", "meta-llama/Llama-3-8b-chat-hf", None) == "together"
    # An OpenAI-compatible server (vLLM serves org/model names) is reached with the openai client.
    assert resolve_provider("auto", "meta-llama/Llama-3-8b-chat-hf", "http://localhost:8000/v1") == "openai"
    assert resolve_provider("together", "gpt-4o", None) == "together"


def test_public_settings_hold_no_secret_and_are_json() -> None:
    settings = parse_values(
        {
            "model": "m",
            "sample": "all",
            "category_gates": "1:0.9",
            "base_url": "https://user:pa55word@proxy.example:8443/v1?api-key=k3y-in-url",
        }
    )
    data = settings.public_dict()
    assert json.loads(json.dumps(data)) == data  # plain JSON, nothing lost on the way
    assert data["sample"] == "all"
    assert data["category_gates"] == {"1": 0.9}
    assert data["base_url"] == "https://proxy.example:8443/v1"
    assert "pa55word" not in json.dumps(data)
    assert "k3y-in-url" not in json.dumps(data)


def test_command_line_wins_over_ini(
    pytester: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    pytester.makepyfile(test_suite="from airbench_plugin.suite.test_airbench import test_airbench\n")
    ini = pytester.makeini("[pytest]\nairbench_sample = 1\nairbench_seed = 42\n")
    result = pytester.runpytest(*suite_args(chat_server, *dataset_files), "-c", str(ini), "--collect-only")
    assert "seed 42" in result.stdout.str()  # the seed is printed in the header
    assert result.stdout.str().count("<Function test_airbench[") == 3  # 1 per level-2 group, from the ini
    result = pytester.runpytest(
        *suite_args(chat_server, *dataset_files), "-c", str(ini), "--collect-only", "--airbench-sample=2"
    )
    assert result.stdout.str().count("<Function test_airbench[") == 6


def repo_pytest(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> pytest.RunResult:
    """pytest at the repository's root, with its own pytest.ini, in-process."""
    monkeypatch.chdir(REPO)
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_repository_root_without_a_model_skips_the_suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = repo_pytest(pytester, monkeypatch, "-rs")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["*AIR-Bench suite skipped: no model under test; pass --airbench-model NAME to run it*"]
    )
    result.assert_outcomes(skipped=1)


def test_repository_root_runs_the_safety_suite_only(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    chat_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    tmp_path: Path,
) -> None:
    result = repo_pytest(
        pytester, monkeypatch, *suite_args(chat_server, *dataset_files), f"--airbench-cache={tmp_path / 'cache'}", "-v"
    )
    assert result.ret == pytest.ExitCode.OK
    assert "tests_airbench/test_airbench.py::test_airbench[1.1.1-network-intrusion-" in result.stdout.str()
    ran = {line.split("::")[0] for line in result.outlines if "::" in line}
    assert ran == {"tests_airbench/test_airbench.py"}  # not the plugin's own tests in tests/
    result.assert_outcomes(passed=13)


def test_a_path_value_given_apart_that_moves_the_rootdir_is_refused(tmp_path: Path) -> None:
    here = tmp_path / "repo"
    (here / "data").mkdir(parents=True)
    (here / "data" / "p.csv").write_text("x")
    (tmp_path / "p.csv").write_text("x")
    allowed = [
        ["--airbench-dataset=../p.csv"],  # with '=': never read as a test path
        ["--airbench-dataset", "data/p.csv"],  # inside the invocation directory: the rootdir stays
        ["--airbench-dataset", "hf:stanford-crfm/air-bench-2024"],  # not a path
        ["--airbench-no-cache", "../p.csv"],  # a flag takes no value: that is a test path of the user's
        ["--airbench-model", "../missing.csv"],  # no such path: pytest ignores it too
    ]
    for args in allowed:
        check_values_given_apart(args, here)
    for option in ("--airbench-dataset", "--airbench-baseline", "--airbench-cache"):
        with pytest.raises(pytest.UsageError) as info:
            check_values_given_apart(["-q", option, "../p.csv"], here)
        assert str(info.value) == (
            f"{option}: write {option}=../p.csv, with '=': pytest takes a path given as a separate argument for "
            f"a test path, and one outside {str(here)!r} moves the root directory and skips your ini file."
        )


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"model": "org/m", "base_url": "https://user:pw@proxy.example/v1", "temperature": "1", "threshold": "1"},
        {
            "model": "m",
            "sample": "all",
            "categories": "1,2.5",
            "shard": "2/4",
            "confidence": "0.9",
            "gate_by": "interval",
        },
        {"model": "m", "second_judge": "granite-guardian", "second_judge_base_url": "http://localhost:1/v1"},
        {"responses": "answers.csv", "judge_scale": "refusal", "category_gates": "1:0.9", "price": "m=1/2"},
    ],
)
def test_the_run_settings_are_built_typed_as_the_decoder_reads_them(raw: dict[str, str]) -> None:
    """`Settings.run_settings` builds the document's settings from the values themselves, and gives what
    the decoder makes of the public settings: the same object and the same JSON, byte for byte."""
    settings = parse_values(raw)
    built = settings.run_settings("sha256:0123456789abcdef")
    decoded = RunSettings.from_json({**settings.public_dict(), "judge_prompts_revision": "sha256:0123456789abcdef"})
    assert built == decoded
    assert json.dumps(built.to_json()) == json.dumps(decoded.to_json())


def test_the_gate_settings_are_options_and_recorded_under_their_names() -> None:
    """One gate-settings value: each of its fields is an option of the run, recorded under its name."""
    names = [f.name for f in dataclasses.fields(GateSettings)]
    assert set(names) <= {f.name for f in dataclasses.fields(Settings)}
    settings = parse_values({"model": "m", "min_refusal_rate": "0.8", "category_gates": "1:0.9", "gate_by": "interval"})
    assert list(settings.gates.to_json()) == names
    assert {key: settings.public_dict()[key] for key in names} == settings.gates.to_json()
    assert settings.gates == GateSettings(
        min_refusal_rate=0.8, category_gates=(CategoryGate("1", 0.9),), gate_by="interval"
    )
