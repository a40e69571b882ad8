"""The run's verdict and exit status are decided together: unit tests over the whole matrix."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from airbench_plugin.gates import RunFacts, check_category_gates, decide, regression_gates
from airbench_plugin.reports.html import render_html
from airbench_plugin.reports.junit import verdict_properties, write_junit_dir
from airbench_plugin.reports.terminal import verdict_lines
from airbench_plugin.results import (
    CaseResult,
    Comparison,
    DatasetInfo,
    Gate,
    PlanCounts,
    PlannedCase,
    RunResults,
    RunVerdict,
    Sightings,
    settle_plan,
)
from tests.factories import CREATED, case_result, run_results

RATE_OK = Gate("min-refusal-rate", "overall", 0.8, 0.9, True, "overall refusal rate 90.0% >= 80.0%")
RATE_FAIL = Gate("min-refusal-rate", "overall", 0.95, 0.9, False, "overall refusal rate 90.0% < 95.0%")
ERROR_OK = Gate("max-error-rate", "overall", 0.0, 0.0, True, "0 of 18 prompts errored")
ERROR_FAIL = Gate("max-error-rate", "overall", 0.0, 0.1, False, "2 of 18 prompts errored")
COMPLETE = PlanCounts(18, 16, 2, {})
DESELECTED = PlanCounts(18, 15, 0, {"deselected": 3})
SKIPPED = PlanCounts(18, 17, 0, {"skipped": 1})
STOPPED = PlanCounts(18, 10, 0, {"stopped": 8})
CRASHED = PlanCounts(18, 17, 0, {"crashed": 1})
WRITE = ("--airbench-json: could not write r.json: Permission denied",)

GATE_SETS: tuple[list[Gate], ...] = (
    [],
    [ERROR_OK],
    [ERROR_FAIL],
    [RATE_OK, ERROR_OK],
    [RATE_FAIL, ERROR_OK],
    [RATE_OK, ERROR_FAIL],
)


def test_verdict_and_exit_status_agree_over_the_whole_matrix() -> None:
    """Every combination: PASSED exactly when the exit status is 0, and nothing incomplete passes."""
    checked = 0
    for status, gates, counts, stopped, allow, others, writes in itertools.product(
        (0, 1, 2, 3, 4, 5),
        GATE_SETS,
        (COMPLETE, DESELECTED, SKIPPED, STOPPED, CRASHED),
        (False, True),
        (False, True),
        (0, 1),
        ((), WRITE),
    ):
        facts = RunFacts(status, gates, counts, stopped, allow, others, writes)
        verdict = decide(facts)
        checked += 1
        assert (verdict.status == "passed") == (verdict.exit_status == 0), facts
        if verdict.status == "incomplete":
            assert verdict.exit_status != 0, facts
        if status not in (0, 1):
            assert verdict.exit_status == status, facts  # pytest's own statuses are kept
        if verdict.status == "passed":
            assert not others and not writes and not stopped, facts
            assert all(gate.passed for gate in gates), facts
            assert counts.complete or (allow and counts.not_run.keys() <= {"deselected", "skipped"}), facts
            assert verdict.partial == (not counts.complete), facts
        if not counts.complete and not allow:
            assert verdict.status == "incomplete" or status not in (0, 1), facts
        if not any(g.name == "min-refusal-rate" for g in gates) and status == 1:
            assert verdict.status != "passed", facts  # without a rate gate, failing tests fail the run
        if verdict.status != "passed":
            assert verdict.reasons or (status == 1 and verdict.decided_by == "tests"), facts
    assert checked == 6 * 6 * 5 * 2 * 2 * 2 * 2


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        # The gates decide: prompt failures (pytest status 1) do not fail a run whose gates held.
        (RunFacts(1, [RATE_OK, ERROR_OK], COMPLETE), ("passed", 0, "gates", False)),
        (RunFacts(0, [RATE_FAIL, ERROR_OK], COMPLETE), ("failed", 1, "gates", False)),
        (RunFacts(1, [RATE_OK, ERROR_FAIL], COMPLETE), ("failed", 1, "gates", False)),
        # The error-rate gate alone never passes failing prompts, and can only make it worse.
        (RunFacts(1, [ERROR_OK], COMPLETE), ("failed", 1, "tests", False)),
        (RunFacts(0, [ERROR_FAIL], COMPLETE), ("failed", 1, "tests", False)),
        (RunFacts(0, [], COMPLETE), ("passed", 0, "tests", False)),
        # A filtered plan is incomplete, unless the user allows a partial run.
        (RunFacts(1, [RATE_OK, ERROR_OK], DESELECTED), ("incomplete", 1, "gates", False)),
        (RunFacts(0, [], DESELECTED), ("incomplete", 1, "tests", False)),
        (RunFacts(1, [RATE_OK, ERROR_OK], DESELECTED, allow_partial=True), ("passed", 0, "gates", True)),
        (RunFacts(0, [], SKIPPED, allow_partial=True), ("passed", 0, "tests", True)),
        # Stopped (-x, the breaker, Ctrl-C) or crashed: never passed, even with --airbench-allow-partial.
        (
            RunFacts(1, [RATE_OK, ERROR_OK], STOPPED, stopped=True, allow_partial=True),
            ("incomplete", 1, "gates", False),
        ),
        (RunFacts(1, [RATE_OK, ERROR_OK], CRASHED, allow_partial=True), ("incomplete", 1, "gates", False)),
        (RunFacts(2, [RATE_OK, ERROR_OK], STOPPED, stopped=True), ("incomplete", 2, "gates", False)),
        (RunFacts(1, [RATE_OK, ERROR_OK], COMPLETE, stopped=True), ("failed", 1, "gates", False)),
        # A failure outside the suite, or an output that could not be written, fails the run.
        (RunFacts(1, [RATE_OK, ERROR_OK], COMPLETE, other_failures=1), ("failed", 1, "gates", False)),
        (RunFacts(0, [], COMPLETE, write_failures=WRITE), ("failed", 1, "tests", False)),
        (RunFacts(1, [RATE_OK, ERROR_OK], COMPLETE, write_failures=WRITE), ("failed", 1, "gates", False)),
        # pytest's own statuses stay.
        (RunFacts(3, [RATE_OK], COMPLETE), ("failed", 3, "gates", False)),
        (RunFacts(5, [], DESELECTED), ("incomplete", 5, "tests", False)),
    ],
)
def test_verdict_rows(facts: RunFacts, expected: tuple[str, int, str, bool]) -> None:
    verdict = decide(facts)
    assert (verdict.status, verdict.exit_status, verdict.decided_by, verdict.partial) == expected


def test_the_reasons_are_sentences() -> None:
    verdict = decide(RunFacts(1, [RATE_OK, ERROR_OK], DESELECTED))
    assert verdict.reasons == (
        "3 of 18 planned prompts were not run (3 deselected).",
        "Pass --airbench-allow-partial to judge part of the plan, or --airbench-categories / "
        "--airbench-sample to plan fewer prompts.",
    )
    allowed = decide(RunFacts(1, [RATE_OK, ERROR_OK], DESELECTED, allow_partial=True))
    assert allowed.reasons == (
        "3 of 18 planned prompts were not run (3 deselected).",
        "--airbench-allow-partial: judged on 15 of 18 planned prompts.",
    )
    stopped = decide(RunFacts(1, [RATE_OK, ERROR_OK], STOPPED, stopped=True, other_failures=1, write_failures=WRITE))
    assert stopped.reasons == (
        "8 of 18 planned prompts were not run (8 stopped).",
        "1 test(s) outside the AIR-Bench prompts failed or errored.",
        "--airbench-json: could not write r.json: Permission denied.",
        "The run was stopped early, so no gate passes it.",
    )


# --- the plan: which planned prompt was scored, errored or not run, by node id --------------------


def record(nodeid: str, cate: str, outcome: str) -> CaseResult:
    return case_result(cate, None if outcome == "error" else 1.0, nodeid=nodeid, outcome=outcome)  # type: ignore[arg-type]


def test_settle_plan_marks_every_planned_prompt() -> None:
    planned = [PlannedCase(f"1.1.1-x-{i}", "1.1.1") for i in range(7)]
    node = "t.py::test_airbench[{}]".format
    seen = Sightings(
        selected={node(f"1.1.1-x-{i}"): f"1.1.1-x-{i}" for i in (0, 1, 2, 3, 4)},
        deselected={node("1.1.1-x-5"): "1.1.1-x-5"},
        skipped={node("1.1.1-x-3")},
        crashed={node("1.1.1-x-2")},
    )
    plan = settle_plan(
        planned, seen, [record(node("1.1.1-x-0"), "1.1.1", "passed"), record(node("1.1.1-x-1"), "1.1.1", "error")]
    )
    assert [(p.nodeid, p.status, p.reason) for p in plan] == [
        (node("1.1.1-x-0"), "scored", None),
        (node("1.1.1-x-1"), "errored", None),
        (node("1.1.1-x-2"), "not_run", "crashed"),
        (node("1.1.1-x-3"), "not_run", "skipped"),
        (node("1.1.1-x-4"), "not_run", "stopped"),  # selected, never reported: the run stopped first
        (node("1.1.1-x-5"), "not_run", "deselected"),
        (node("1.1.1-x-6"), "not_run", "deselected"),  # never seen (xdist's controller): its siblings' node id
    ]
    nothing_collected = settle_plan(planned[:1], Sightings(), [])
    assert [(p.nodeid, p.status, p.reason) for p in nothing_collected] == [(None, "not_run", "not_collected")]
    # Collected by a worker and deselected there (xdist): the controller saw no item, yet it was collected.
    deselected_elsewhere = settle_plan(planned[:1], Sightings(suite_collected=True), [])
    assert [(p.nodeid, p.status, p.reason) for p in deselected_elsewhere] == [(None, "not_run", "deselected")]


# --- checks before any call, and the regression gate ---------------------------------------------


def test_category_gate_prefixes_must_be_in_the_plan() -> None:
    cates = [("1.1.1", "Security Risks"), ("2.5.1", "Operational Misuses"), ("14.3940.21", "Discrimination/Bias")]
    assert check_category_gates(["1", "2.5", "14.3940.21", "14.3940"], cates) is None
    assert check_category_gates(["1", "99"], cates) == "99"
    assert check_category_gates(["1.1.10"], cates) == "1.1.10"  # whole parts, not a string prefix
    assert check_category_gates(["security risks", "Discrimination/Bias"], cates) is None  # level-2 names
    assert check_category_gates(["Privacy"], cates) == "Privacy"


def test_a_baseline_sharing_no_prompt_fails_the_regression_gate_with_a_sentence() -> None:
    comparison = Comparison("old.json", "m", 0, None, {}, ())
    (gate,) = regression_gates(comparison, 0.05)
    assert (gate.name, gate.passed, gate.measured) == ("max-regression", False, None)
    assert gate.detail == (
        "the baseline old.json shares no scored prompt with this run, so no regression can be measured; "
        "compare with a run of the same dataset, sample and seed"
    )


# --- how the reports show it ------------------------------------------------------------------------


def run_with(verdict: RunVerdict, failed: int = 2) -> RunResults:
    records = [record(f"t.py::test_airbench[1.1.1-x-{i}]", "1.1.1", "passed") for i in range(3)]
    records += [case_result("1.1.1", 0.0, test_id=f"1.1.1-y-{i}") for i in range(failed)]
    return run_results(
        records,
        judge_model="j",
        dataset=DatasetInfo("hf:x@1", "1", "default"),
        gates=[RATE_OK, ERROR_OK],
        verdict=verdict,
        created=CREATED,
    )


def test_the_last_line_says_which_verdict_decides() -> None:
    passed = run_with(RunVerdict("passed", 0, "gates"), failed=15)
    assert verdict_lines(passed)[-2:] == [
        "The release gates decide the exit status; the prompts below the threshold stay failed tests "
        "in the test report and JUnit.",
        "15 prompts below the threshold; release gates PASSED by estimate (exit 0)",
    ]
    incomplete = run_with(
        RunVerdict("incomplete", 1, "gates", reasons=("3 of 18 planned prompts were not run (3 deselected).",))
    )
    assert verdict_lines(incomplete) == [
        "",
        "3 of 18 planned prompts were not run (3 deselected).",
        "2 prompts below the threshold; release gates INCOMPLETE (exit 1)",
    ]
    partial = run_with(RunVerdict("passed", 0, "tests", partial=True), failed=1)
    assert (
        verdict_lines(partial)[-1]
        == "1 prompt below the threshold; AIR-Bench tests PASSED on part of the plan (exit 0)"
    )
    assert passed.gates_status == "passed" and incomplete.gates_status == "incomplete"


def test_the_html_banner_shows_the_run_verdict() -> None:
    run = run_with(
        RunVerdict("incomplete", 1, "gates", reasons=("3 of 18 planned prompts were not run (3 deselected).",))
    )
    html = render_html(run)
    assert 'id="gate-verdict" data-verdict="incomplete" data-exit-status="1"' in html
    assert ">INCOMPLETE<" in html
    assert "3 of 18 planned prompts were not run (3 deselected)." in html
    partial = render_html(run_with(RunVerdict("passed", 0, "gates", partial=True)))
    assert "partial: judged on part of the plan" in partial and 'data-verdict="passed"' in partial


def test_junit_files_carry_the_verdict(tmp_path: Path) -> None:
    run = run_with(RunVerdict("passed", 0, "gates"))
    assert verdict_properties(run) == [
        ("airbench_verdict", "passed"),
        ("airbench_decided_by", "gates"),
        ("airbench_exit_status", "0"),
    ]
    (path,) = write_junit_dir(run, tmp_path)
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None and suite[0].tag == "properties"
    assert {p.get("name"): p.get("value") for p in suite[0]} == dict(verdict_properties(run))
