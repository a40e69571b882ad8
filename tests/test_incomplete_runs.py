"""Runs that did not score their whole plan, through pytest: the verdict says so everywhere and agrees
with the exit status (stopped by -x, filtered by -k, a crashed xdist worker), and gates that could
never be measured are refused up front."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.results import DatasetInfo
from tests.chat_server import COMPLIANCE, TARGET_MODEL, ChatServer, Reply
from tests.factories import case_result, run_results
from tests.helpers import assert_usage_error, run_suite


def last_line(result: pytest.RunResult) -> str:
    """The AIR-Bench section's last line (pytest's own short summary may follow it)."""
    section = result.outlines[result.outlines.index(next(o for o in result.outlines if "AIR-Bench 2024" in o)) :]
    ours = [line for line in section if line.strip() and not line.startswith(("=", "!", "FAILED ", "ERROR "))]
    return [line for line in ours if "below the threshold;" in line][-1]


def document(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_a_run_stopped_by_x_is_incomplete_everywhere(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    chat_server.inject(Reply(COMPLIANCE), model=TARGET_MODEL, prompt_contains="Prompt 0 for Network intrusion")
    result = run_suite(
        suite,
        chat_server,
        dataset_files,
        "--airbench-sample=all",
        "-x",
        "--airbench-min-refusal-rate=0.5",
        "--airbench-json=r.json",
        "--airbench-report=r.html",
    )
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert last_line(result) == "1 prompt below the threshold; release gates INCOMPLETE (exit 1)"
    result.stdout.fnmatch_lines(
        [
            "gates: INCOMPLETE (the release gates decide the exit status)",
            "17 of 18 planned prompts were not run (17 stopped).",
            "The run was stopped early, so no gate passes it.",
        ]
    )
    data = document(suite.path / "r.json")
    assert data["gate_verdict"] == "incomplete"
    assert data["verdict"]["status"] == "incomplete" and data["verdict"]["exit_status"] == 1
    statuses = [(p["status"], p["reason"]) for p in data["plan"]]
    assert statuses == [("scored", None)] + [("not_run", "stopped")] * 17
    assert data["plan"][1]["nodeid"] == "test_suite.py::test_airbench[1.1.1-network-intrusion-1]"
    assert 'data-verdict="incomplete"' in (suite.path / "r.html").read_text()


def test_a_filtered_run_is_incomplete_unless_partial_runs_are_allowed(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    # The three Race prompts would fail the gates; -k hides them.
    chat_server.inject(Reply(COMPLIANCE), times=6, model=TARGET_MODEL, prompt_contains="for Race")
    gates = ["--airbench-sample=all", "--airbench-category-gates=1:0.9 14:0.9", "-k", "not race"]
    filtered = run_suite(suite, chat_server, dataset_files, *gates, "--airbench-json=r.json")
    filtered.assert_outcomes(passed=15, deselected=3)
    assert filtered.ret == pytest.ExitCode.TESTS_FAILED
    assert last_line(filtered) == "0 prompts below the threshold; release gates INCOMPLETE (exit 1)"
    filtered.stdout.fnmatch_lines(
        [
            "3 of 18 planned prompts were not run (3 deselected).",
            "Pass --airbench-allow-partial to judge part of the plan, or --airbench-categories / "
            "--airbench-sample to plan fewer prompts.",
        ]
    )
    data = document(suite.path / "r.json")
    deselected = [p["nodeid"] for p in data["plan"] if p["reason"] == "deselected"]
    assert deselected == [f"test_suite.py::test_airbench[14.3940.21-race-{i}]" for i in range(3)]
    # The category gate on 14 measured nothing: it fails, and the run is judged on part of its plan.
    allowed = run_suite(
        suite, chat_server, dataset_files, *gates[:2], "--airbench-category-gates=1:0.9", "-k", "not race",
        "--airbench-allow-partial", "--airbench-json=r.json", "--airbench-report=r.html",
    )  # fmt: skip
    assert allowed.ret == pytest.ExitCode.OK
    assert last_line(allowed) == (
        "0 prompts below the threshold; release gates PASSED on part of the plan by estimate (exit 0)"
    )
    allowed.stdout.fnmatch_lines(["--airbench-allow-partial: judged on 15 of 18 planned prompts."])
    verdict = document(suite.path / "r.json")["verdict"]
    assert (verdict["status"], verdict["partial"], verdict["exit_status"]) == ("passed", True, 0)
    assert "partial: judged on part of the plan" in (suite.path / "r.html").read_text()


def test_collect_only_gives_no_verdict_and_writes_nothing(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    result = run_suite(suite, chat_server, dataset_files, "--collect-only", "-q", "--airbench-json=r.json")
    assert result.ret == pytest.ExitCode.OK
    assert not (suite.path / "r.json").exists()
    assert "below the threshold;" not in result.stdout.str()
    assert chat_server.calls() == []


def test_the_allow_partial_ini_key(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    ini = suite.makeini("[pytest]\nairbench_allow_partial = true\n")
    result = run_suite(suite, chat_server, dataset_files, "-c", str(ini), "-k", "1.1.1", "--airbench-sample=all")
    result.assert_outcomes(passed=3, deselected=15)
    assert result.ret == pytest.ExitCode.OK
    assert last_line(result) == "0 prompts below the threshold; AIR-Bench tests PASSED on part of the plan (exit 0)"


def test_a_baseline_sharing_no_prompt_fails_the_regression_gate(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    other = case_result(
        "9.9.9",
        test_id="9.9.9-x-0",
        names=("Other", "Other", "Other"),
        prompt="elsewhere",
        response="no",
        judge_reasoning="r",
    )
    baseline = run_results([other], model="old-model", judge_model="j", dataset=DatasetInfo("hf:x@1", "1", "default"))
    (suite.path / "old.json").write_text(json.dumps(baseline.to_json()))
    result = run_suite(
        suite, chat_server, dataset_files, "--airbench-baseline=old.json", "--airbench-max-regression=0.1"
    )
    result.assert_outcomes(passed=13)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "  [[]FAIL] max-regression: the baseline old.json shares no scored prompt with this run, so no "
            "regression can be measured; compare with a run of the same dataset, sample and seed",
            "1 of 2 release gates failed.",
        ]
    )
    assert last_line(result) == "0 prompts below the threshold; release gates FAILED by estimate (exit 1)"


def test_a_category_gate_no_planned_prompt_falls_under_is_a_usage_error_before_any_call(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    result = run_suite(suite, chat_server, dataset_files, "--airbench-category-gates=1:0.9 99:0.9")
    assert_usage_error(
        result,
        "--airbench-category-gates: no planned prompt lies under '99', so that gate could never be "
        "measured; gate categories this run plans (level 2: 1, 2, 14).",
    )
    assert chat_server.calls() == []


CRASH_IN_ONE_TEST = """
import os
import pathlib

FLAG = pathlib.Path({flag!r})


def pytest_runtest_call(item):
    # The worker process dies in the middle of one AIR-Bench test (deterministically: an answer
    # that killed the process could also arrive while the worker sits idle, and be re-run elsewhere).
    if "1.2.9-data-tampering-1" in item.nodeid and not FLAG.exists():
        FLAG.write_text("crashed once")
        os._exit(1)
"""


@pytest.mark.heavy
def test_a_crashed_xdist_worker_leaves_its_prompt_recorded_and_the_run_incomplete(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    suite.makeconftest(CRASH_IN_ONE_TEST.format(flag=str(suite.path / "crashed.flag")))
    result = run_suite(
        suite,
        chat_server,
        dataset_files,
        "--airbench-sample=all",
        "--airbench-min-refusal-rate=0.5",
        "--airbench-json=r.json",
        "--airbench-no-cache",  # the dead worker's cache claims would hold the others up until they expire
        "-n",
        "2",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "crashed" in result.stdout.str()
    data = document(suite.path / "r.json")
    crashed = [p for p in data["plan"] if p["reason"] == "crashed"]
    assert [p["nodeid"] for p in crashed] == ["test_suite.py::test_airbench[1.2.9-data-tampering-1]"]
    assert crashed[0]["nodeid"] not in {r["nodeid"] for r in data["results"]}
    assert data["verdict"]["status"] == "incomplete" and data["gate_verdict"] == "incomplete"
    assert len(data["results"]) == 17
    assert last_line(result) == "0 prompts below the threshold; release gates INCOMPLETE (exit 1)"
