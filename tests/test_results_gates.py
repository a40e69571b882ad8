"""Aggregation and gate decisions: pure functions over results."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import pytest

from airbench_plugin.gates import (
    CategoryGate,
    GateSettings,
    RunFacts,
    compare,
    decide,
    evaluate_gates,
    prompts_to_detect,
    regression_gate,
)
from airbench_plugin.options import parse_category_gates
from airbench_plugin.results import (
    CaseResult,
    CategoryRow,
    Comparison,
    Gate,
    Outcome,
    PlanCounts,
    RunResults,
    Tally,
    TokenCount,
    categories,
    select_prefix,
    tally,
    token_usage,
)
from airbench_plugin.stats import Z95, PairedDifference, wilson_interval
from tests.factories import CREATED, PINNED, case_result, outcome_of, run_results


def result(cate: str, score: float | None, outcome: Outcome | None = None, prompt: str = "p") -> CaseResult:
    l2 = {"1": "Security Risks", "2": "Operational Misuses"}[cate.split(".")[0]]
    outcome = outcome_of(score) if outcome is None else outcome
    return case_result(
        cate,
        score,
        names=(l2, f"L3 {cate.rsplit('.', 1)[0]}", f"L4 {cate}"),
        prompt=prompt,
        outcome=outcome,
        error="boom" if outcome == "error" else None,
        target_tokens=(10, 20),
        judge_tokens=(100, 5),
    )


def run_of(records: list[CaseResult]) -> RunResults:
    return run_results(records, judge_model="j", dataset=PINNED, created=CREATED)


RESULTS = [
    result("1.1.1", 1.0, prompt="a"),
    result("1.1.1", 0.5, prompt="b"),
    result("1.1.2", 0.0, prompt="c"),
    result("1.2.3", 1.0, prompt="d"),
    result("2.5.1", 1.0, prompt="e"),
    result("2.5.1", None, prompt="f"),
    result("2.10.1", 0.0, prompt="g"),
]


def test_rates_are_plain_means_and_errors_are_left_out() -> None:
    overall = tally(RESULTS)
    assert (overall.n, overall.passed, overall.failed, overall.errors) == (6, 4, 2, 1)
    assert overall.refusal_rate == pytest.approx(3.5 / 6)
    table = categories(RESULTS)
    row = table["l2"]["1"]
    assert dataclasses.replace(row, tally=dataclasses.replace(row.tally, estimate=None)) == CategoryRow(
        "1", "Security Risks", Tally(4, 2.5 / 4, 3, 1, 0)
    )
    # Scores 1, 0.5 | 0 | 1 in level-4 clusters 1.1.1, 1.1.2, 1.2.3 around m = 0.625: cluster sums of
    # deviations 0.25, -0.625, 0.375, so SE = sqrt(3/2 * 0.59375) / 4 = 0.2359 and n_eff = min(4, 4.21) = 4.
    stderr = math.sqrt(1.5 * 0.59375) / 4
    low, high = wilson_interval(0.625, 4, Z95)
    assert row.to_json() == {
        "name": "Security Risks",
        "n": 4,
        "refusal_rate": 2.5 / 4,
        "passed": 3,
        "failed": 1,
        "errors": 0,
        "stderr": pytest.approx(stderr),
        "ci_low": pytest.approx(low),
        "ci_high": pytest.approx(high),
        "n_effective": 4.0,
    }
    # A category of one prompt has no standard error but an interval; the error bar is in the JSON as null.
    assert table["l4"]["1.2.3"].tally.to_json()["stderr"] is None
    assert tally([result("2.5.1", None)]).to_json()["ci_low"] is None
    assert table["l2"]["2"].tally.refusal_rate == 0.5
    assert table["l2"]["2"].tally.errors == 1
    assert list(table["l3"]) == ["1.1", "1.2", "2.5", "2.10"]  # numeric order, not string order
    assert table["l4"]["1.1.1"].tally.refusal_rate == 0.75
    assert tally([result("2.5.1", None)]).refusal_rate is None


def test_prefix_selection_matches_whole_parts() -> None:
    assert len(select_prefix(RESULTS, "1.1")) == 3
    assert len(select_prefix(RESULTS, "2.1")) == 0
    assert len(select_prefix(RESULTS, "2.10")) == 1


def test_token_usage() -> None:
    assert token_usage(RESULTS) == {"target": TokenCount(70, 140), "judge": TokenCount(700, 35)}


def test_token_usage_keeps_what_cached_answers_cost_and_marks_it() -> None:
    cached = [dataclasses.replace(r, target_cached=True, judge_cached=r.cate_idx == "1.1.1") for r in RESULTS[:3]]
    usage = token_usage(cached + RESULTS[3:])
    assert usage["target"] == TokenCount(70, 140, cached_prompt_tokens=30, cached_completion_tokens=60)
    assert usage["judge"] == TokenCount(700, 35, cached_prompt_tokens=200, cached_completion_tokens=10)


def test_the_error_rate_gate_of_a_run_with_no_prompts() -> None:
    (gate,) = evaluate_gates([], GateSettings(max_error_rate=0.0))
    assert (gate.passed, gate.detail) == (False, "no prompt was run (at most 0.0% allowed)")
    (one,) = evaluate_gates(RESULTS[5:6], GateSettings(max_error_rate=0.0))
    assert one.detail == "1 of 1 prompt errored (100.0%; at most 0.0% allowed)"


def gates(
    *,
    min_refusal_rate: float | None = None,
    category_gates: Sequence[tuple[str, float]] = (),
    max_error_rate: float | None = None,
    comparison: Comparison | None = None,
    max_regression: float | None = None,
) -> list[Gate]:
    """The gates over RESULTS; every gate is off unless given."""
    settings = GateSettings(
        min_refusal_rate=min_refusal_rate,
        category_gates=tuple(CategoryGate(prefix, rate) for prefix, rate in category_gates),
        max_error_rate=max_error_rate,
        max_regression=max_regression,
    )
    return evaluate_gates(RESULTS, settings, comparison)


def test_no_gate_configured_means_no_verdict() -> None:
    assert gates() == []


def test_overall_gate_and_the_error_rate_gate_that_comes_with_it() -> None:
    met = gates(min_refusal_rate=0.5, max_error_rate=0.2)
    assert [(g.name, g.passed) for g in met] == [("min-refusal-rate", True), ("max-error-rate", True)]
    assert all(g.passed for g in met)
    # The error-rate gate defaults to 0: one errored prompt fails the run.
    missed = gates(min_refusal_rate=0.5)
    assert [(g.name, g.passed) for g in missed] == [("min-refusal-rate", True), ("max-error-rate", False)]
    assert missed[1].detail == "1 of 7 prompts errored (14.3%; at most 0.0% allowed)"
    assert not all(g.passed for g in missed)


def test_category_gates() -> None:
    result_gates = gates(category_gates=[("1", 0.6), ("1.1.2", 0.1), ("9", 0.5)], max_error_rate=1.0)
    # Named like regression gates: the prefix and its category's name at the prefix's level.
    assert [(g.target, g.passed, g.measured) for g in result_gates[:3]] == [
        ("1 Security Risks", True, 0.625),
        ("1.1.2 L4 1.1.2", False, 0.0),
        ("9", False, None),
    ]
    assert result_gates[0].detail == "1 Security Risks refusal score 62.5% [21.9, 90.8] >= 60.0%: passed (estimate)"
    assert result_gates[2].detail == "9: no scored prompts"


def test_a_category_gate_takes_a_level2_name_like_categories_does() -> None:
    """`Security Risks:0.95` gates the same prompts as `1:0.95`, and is named the same."""
    (named, by_prefix) = gates(category_gates=[("security risks", 0.6), ("1", 0.6)], max_error_rate=1.0)[:2]
    assert (named.target, named.measured, named.passed) == ("1 Security Risks", 0.625, True)
    assert (named.target, named.measured, named.detail) == (by_prefix.target, by_prefix.measured, by_prefix.detail)
    assert parse_category_gates("category-gates", "Security Risks:0.95, 2.5:0.9 Hate/Toxicity:1") == (
        CategoryGate("Security Risks", 0.95),
        CategoryGate("2.5", 0.9),
        CategoryGate("Hate/Toxicity", 1.0),
    )
    with pytest.raises(pytest.UsageError, match="got 'Security Risks'"):
        parse_category_gates("category-gates", "Security Risks")


def test_an_outage_never_passes() -> None:
    outage = [result("1.1.1", None) for _ in range(5)]
    result_gates = evaluate_gates(outage, GateSettings(min_refusal_rate=0.0, max_error_rate=0.5))
    assert not all(g.passed for g in result_gates)


def test_baseline_comparison_and_regression_gate() -> None:
    baseline = run_of(
        [
            result("1.1.1", 1.0, prompt="a"),
            result("1.1.1", 1.0, prompt="b"),
            result("1.1.2", 1.0, prompt="c"),
            result("2.5.1", 1.0, prompt="e"),
            result("2.10.1", 1.0, prompt="g"),
            result("2.5.1", 0.0, prompt="only in the baseline"),
        ]
    )
    comparison = compare(baseline, RESULTS, "old.json")
    assert comparison.shared_prompts == 5  # d is new, f errored, the baseline's last is not run now
    assert comparison.overall_delta == pytest.approx((1.0 + 0.5 + 0.0 + 1.0 + 0.0) / 5 - 1.0)
    row = comparison.l2["1"].to_json()
    assert row.pop("difference") == {
        # d = [0, -0.5, -1] in clusters 1.1.1, 1.1.1, 1.1.2: cluster sums of d - mean are +0.5 and -0.5,
        # SE = sqrt(2 / 1 * 0.5) / 3 = 1/3; the interval's low end is clipped to -1
        "shared": 3,
        "mean": -0.5,
        "stderr": pytest.approx(1 / 3),
        "ci_low": -1.0,
        "ci_high": pytest.approx(-0.5 + 1.959964 / 3, abs=1e-6),
        "p_value": pytest.approx(0.133614, abs=1e-6),  # 2 Φ(-1.5)
        "correlation": None,  # the baseline scored all three 1
        "min_detectable_drop": pytest.approx((1.959964 + 0.841621) / 3, abs=1e-6),
    }
    assert row == {"name": "Security Risks", "baseline": 1.0, "current": 0.5, "delta": -0.5}
    assert comparison.l2["2"].delta == pytest.approx(-0.5)
    assert [flip.to_json() for flip in comparison.flipped] == [
        {"nodeid": "t.py::test_airbench[1.1.2-c]", "cate_idx": "1.1.2", "prompt": "c"},
        {"nodeid": "t.py::test_airbench[2.10.1-g]", "cate_idx": "2.10.1", "prompt": "g"},
    ]
    for allowed, held in ((0.5, True), (0.4, False)):
        result_gates = gates(comparison=comparison, max_regression=allowed, max_error_rate=1.0)
        regression = [(g.target, g.passed) for g in result_gates if g.name == "max-regression"]
        assert regression == [("overall", held), ("1 Security Risks", held), ("2 Operational Misuses", held)]


OK, FAILED = pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED
RATE_GATE = Gate("min-refusal-rate", "overall", 0.5, 0.9, True, "")
ERROR_GATE = Gate("max-error-rate", "overall", 0.0, 0.0, True, "")


@pytest.mark.parametrize(
    ("status", "gates", "others", "complete", "expected"),
    [
        (FAILED, [RATE_GATE, ERROR_GATE], 0, True, OK),  # the gates decide
        (FAILED, [ERROR_GATE], 0, True, FAILED),  # the error-rate gate alone never passes failures
        (OK, [Gate("max-error-rate", "overall", 0.0, 0.1, False, "")], 0, True, FAILED),
        (FAILED, [RATE_GATE, ERROR_GATE], 1, True, FAILED),  # a failure outside the suite
        (FAILED, [RATE_GATE, ERROR_GATE], 0, False, FAILED),  # stopped or partial
        (pytest.ExitCode.INTERRUPTED, [RATE_GATE], 0, True, pytest.ExitCode.INTERRUPTED),
        (FAILED, [], 0, True, FAILED),
    ],
)
def test_exit_status(
    status: pytest.ExitCode, gates: list[Gate], others: int, complete: bool, expected: pytest.ExitCode
) -> None:
    counts = PlanCounts(1, 1, 0, {}) if complete else PlanCounts(1, 0, 0, {"stopped": 1})
    assert decide(RunFacts(status, gates, counts, other_failures=others)).exit_status == expected


def difference(shared: int, mean: float, stderr: float | None) -> PairedDifference:
    """A paired difference with the interval and detectable drop its standard error gives at 95 %."""
    if stderr is None:
        return PairedDifference(shared, mean, None, None, None, None, None, None)
    low, high = mean - Z95 * stderr, mean + Z95 * stderr
    return PairedDifference(shared, mean, stderr, low, high, 0.5, None, (Z95 + 0.8416212335729143) * stderr)


def test_the_regression_gate_by_estimate_and_by_interval() -> None:
    # A drop of 5 points with SE 4 points: [-12.8, +2.8] at 95 %; 2 points allowed.
    drop = difference(100, -0.05, 0.04)
    by_estimate = regression_gate("overall", "overall", drop, 0.02, "estimate")
    by_interval = regression_gate("overall", "overall", drop, 0.02, "interval")
    assert (by_estimate.passed, by_interval.passed) == (False, True)
    assert by_interval.detail == "overall change -5.0 pp [-12.8, +2.8] (at most -2.0 pp allowed): passed (upper bound)"
    assert (by_interval.rule, by_interval.stderr, by_interval.measured) == ("interval", 0.04, -0.05)
    # Detectable with 80 % power: (1.960 + 0.842) 4 = 11.21 points; 100 (11.206 / 2)^2 = 3,139.6 prompts see 2.
    assert by_interval.warning == (
        "overall: 100 shared prompts detect a drop of 11.2 pp with 80 % power, not the 2.0 pp this gate guards; "
        "about 3,140 would."
    )
    assert by_estimate.warning is None  # it failed: nothing was missed
    assert prompts_to_detect(drop, 0.02) == 3140


def test_a_shown_regression_fails_by_either_rule_and_a_powered_pass_warns_of_nothing() -> None:
    shown = difference(400, -0.10, 0.02)  # [-13.9, -6.1], all beyond -2
    assert [regression_gate("o", "o", shown, 0.02, rule).passed for rule in ("estimate", "interval")] == [False] * 2
    powered = difference(4000, 0.0, 0.005)  # detects 1.4 points, under the 2 guarded
    gate = regression_gate("o", "o", powered, 0.02, "interval")
    assert (gate.passed, gate.warning) == (True, None)
    assert gate.min_detectable_drop == pytest.approx(0.014, abs=1e-3)


def test_a_regression_gate_without_an_error_bar() -> None:
    # One shared prompt has no standard error: the estimate decides by either rule, and a pass says it saw nothing.
    one = difference(1, 0.0, None)
    gate = regression_gate("2 Operational Misuses", "level-2 2", one, 0.05, "interval")
    assert (gate.passed, gate.rule, gate.interval) == (True, "interval", None)
    assert gate.detail == "level-2 2 change ±0.0 pp (at most -5.0 pp allowed): passed (estimate)"
    assert gate.warning == "level-2 2: 1 shared prompt cannot show a drop of 5.0 pp or any other."
    assert not regression_gate("o", "o", difference(1, -1.0, None), 0.05, "interval").passed
    # No drop may be allowed at all: no sample detects a drop of 0, so no count is offered.
    zero = regression_gate("o", "o", difference(50, 0.01, 0.02), 0.0, "estimate")
    assert zero.warning is not None and zero.warning.endswith("not the 0.0 pp this gate guards.")
