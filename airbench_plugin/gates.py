"""Release gates and the comparison with a baseline run. Pure functions over results."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from airbench_plugin.agreement import Agreement
from airbench_plugin.results import (
    LEVELS,
    CaseResult,
    Comparison,
    DecidedBy,
    DeltaRow,
    FlippedPrompt,
    Gate,
    GateBy,
    GateKind,
    NotRunReason,
    PlanCounts,
    ResultsError,
    RunResults,
    RunStatus,
    RunVerdict,
    categories,
    estimate,
    load_results,
    select_prefix,
)
from airbench_plugin.stats import DEFAULT_CONFIDENCE, Z95, PairedDifference, paired_difference, z_value
from airbench_plugin.wording import interval_text, plural, points_text

__all__ = [
    "RATE_GATES",
    "BaselineError",
    "CategoryGate",
    "Gate",
    "GateKind",
    "GateSettings",
    "compare",
    "evaluate_gates",
    "load_baseline",
]


class BaselineError(Exception):
    """A baseline file that cannot be used; the message is one sentence for the user."""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _interval(interval: tuple[float, float] | None) -> str:
    """An interval of rates in percent, as the reports write it: `[67.2, 85.3]`; empty without one."""
    return "" if interval is None else f" {interval_text(interval)}"


def _points(delta: float) -> str:
    """A difference of rates in percentage points: `-3.1 pp`."""
    return points_text(delta)


def _points_interval(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f" [{interval[0] * 100:+.1f}, {interval[1] * 100:+.1f}]"


def min_rate_gate(
    name: GateKind,
    target: str,
    results: Sequence[CaseResult],
    threshold: float,
    z: float = Z95,
    gate_by: GateBy = "estimate",
) -> Gate:
    """The refusal rate of `results` must be at least `threshold`; no scored prompt fails it.

    By `estimate` the rate itself is compared; by `interval` its Wilson lower bound, so the gate
    passes only when the rate is shown to be above the threshold.
    """
    row = estimate(results, z)
    if row is None:
        return Gate(name, target, threshold, None, False, f"{target}: no scored prompts", gate_by)
    interval = (row.ci_low, row.ci_high)
    decisive, rule = (row.mean, "estimate") if gate_by == "estimate" else (row.ci_low, "lower bound")
    ok = decisive >= threshold - 1e-12
    sign = ">=" if ok else "<"
    detail = (
        f"{target} refusal score {_pct(row.mean)}{_interval(interval)} {sign} {_pct(threshold)}: "
        f"{'passed' if ok else 'failed'} ({rule})"
    )
    return Gate(name, target, threshold, row.mean, ok, detail, gate_by, row.stderr, interval, row.n_effective)


def error_rate_gate(results: Sequence[CaseResult], threshold: float) -> Gate:
    """The share of errored prompts must be at most `threshold`, so an outage never passes."""
    total = len(results)
    errors = sum(1 for r in results if r.outcome == "error")
    allowed = f"at most {_pct(threshold)} allowed"
    if total == 0:
        # Nothing ran: the gate fails, since no run can show its error rate is low enough.
        return Gate("max-error-rate", "overall", threshold, 1.0, False, f"no prompt was run ({allowed})")
    rate = errors / total
    detail = f"{errors:,} of {plural(total, 'prompt')} errored ({_pct(rate)}; {allowed})"
    return Gate("max-error-rate", "overall", threshold, rate, rate <= threshold, detail)


def category_label(results: Sequence[CaseResult], prefix: str) -> str:
    """`2 Operational Misuses` for the gate on `2`: the prefix and the name of its category, as
    regression gates say it; the bare prefix when no result lies under it."""
    depth = prefix.count(".")
    if not results or depth >= len(LEVELS):
        return prefix
    if not prefix[:1].isdigit():  # a level-2 name: said as its key and name, like the others
        return f"{results[0].key('l2')} {results[0].l2_name}"
    return f"{prefix} {results[0].name(LEVELS[depth])}"


def agreement_gate(agreement: Agreement | None, threshold: float) -> Gate:
    """The two judges must agree on at least `threshold` of the prompts both scored; none fails it."""
    if agreement is None or agreement.confusion.agreement_rate is None:
        return Gate("min-judge-agreement", "judges", threshold, None, False, "no prompt was scored by both judges")
    rate = agreement.confusion.agreement_rate
    ok = rate >= threshold
    first, second = agreement.judges
    detail = (
        f"{first} and {second} agree on {_pct(rate)} of {agreement.confusion.n} prompts "
        f"({'>=' if ok else '<'} {_pct(threshold)})"
    )
    return Gate("min-judge-agreement", "judges", threshold, rate, ok, detail)


def prompts_to_detect(difference: PairedDifference, drop: float) -> int | None:
    """About how many shared prompts would detect `drop` with 80 % power: the minimum detectable
    drop shrinks as one over the square root of the prompts. None when no sample can (a drop of 0)."""
    if difference.min_detectable_drop is None or drop <= 0:
        return None
    return math.ceil(difference.shared * (difference.min_detectable_drop / drop) ** 2)


def regression_gate(target: str, label: str, difference: PairedDifference, max_drop: float, gate_by: GateBy) -> Gate:
    """The refusal rate of `label` may drop by at most `max_drop` from the baseline.

    By `estimate` the mean change is compared; by `interval` the gate fails only when the whole
    interval of the change lies below `-max_drop` (the regression is shown, not guessed). A pass
    that only says the shared prompts are too few to see such a drop carries a warning.
    """
    mean = difference.mean if difference.mean is not None else 0.0
    interval = (
        None if difference.ci_low is None or difference.ci_high is None else (difference.ci_low, difference.ci_high)
    )
    if gate_by == "interval" and interval is not None:
        decisive, rule = interval[1], "upper bound"
    else:
        decisive, rule = mean, "estimate"
    ok = decisive >= -max_drop - 1e-12
    detail = (
        f"{label} change {_points(mean)}{_points_interval(interval)} (at most {_points(-max_drop)} allowed): "
        f"{'passed' if ok else 'failed'} ({rule})"
    )
    warning = None
    mdd = difference.min_detectable_drop
    shared = plural(difference.shared, "shared prompt")
    if ok and mdd is None:
        warning = f"{label}: {shared} cannot show a drop of {max_drop * 100:.1f} pp or any other."
    elif ok and mdd is not None and mdd > max_drop + 1e-12:
        needed = prompts_to_detect(difference, max_drop)
        more = "" if needed is None else f"; about {needed:,} would"
        warning = (
            f"{label}: {shared} detect a drop of {mdd * 100:.1f} pp with 80 % power, not the "
            f"{max_drop * 100:.1f} pp this gate guards{more}."
        )
    return Gate(
        "max-regression",
        target,
        max_drop,
        difference.mean,
        ok,
        detail,
        gate_by,
        difference.stderr,
        interval,
        min_detectable_drop=mdd,
        warning=warning,
    )


def regression_gates(comparison: Comparison, max_drop: float, gate_by: GateBy = "estimate") -> list[Gate]:
    """The overall and every level-2 refusal rate may drop by at most `max_drop` from the baseline.

    Rates are compared over the prompts both runs scored; a baseline that shares none cannot
    show a regression, so the gate fails rather than vanish.
    """
    if comparison.shared_prompts == 0:
        detail = (
            f"the baseline {comparison.source} shares no scored prompt with this run, so no regression can be "
            "measured; compare with a run of the same dataset, sample and seed"
        )
        return [Gate("max-regression", "overall", max_drop, None, False, detail, gate_by)]
    gates = []
    if comparison.difference is not None and comparison.difference.mean is not None:
        gates.append(regression_gate("overall", "overall", comparison.difference, max_drop, gate_by))
    for key, row in comparison.l2.items():
        if row.difference is None or row.difference.mean is None:
            continue
        gates.append(regression_gate(f"{key} {row.name}", f"level-2 {key}", row.difference, max_drop, gate_by))
    return gates


def load_baseline(path: str | Path) -> RunResults:
    """A previous `--airbench-json` document; raises BaselineError with one sentence when it is not one."""
    try:
        return load_results(path)
    except ResultsError as exc:
        raise BaselineError(f"the baseline {str(path)!r} is not a usable --airbench-json file: {exc}.") from None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def compare(baseline: RunResults, results: Sequence[CaseResult], source: str, z: float = Z95) -> Comparison:
    """Deltas against a baseline run, over the prompts both runs scored, and the flipped prompts.

    Only shared prompts (same cate-idx and text) are compared, so a baseline with another sample,
    seed or category filter cannot fake a regression or hide one. Each delta comes with the paired
    difference's error bar (clustered by level-4 category) at the normal quantile `z`.
    """
    before = {(r.cate_idx, r.prompt): r.score for r in baseline.records if r.scored and r.score is not None}
    now = {(r.cate_idx, r.prompt): r for r in results if r.scored and r.score is not None}
    shared = [key for key in now if key in before]

    def paired(keys: Sequence[tuple[str, str]]) -> PairedDifference:
        current = [now[k].score or 0.0 for k in keys]
        base = [before[k] or 0.0 for k in keys]
        return paired_difference(current, base, [cate for cate, _prompt in keys], z)

    l2: dict[str, DeltaRow] = {}
    for key, row in categories(results)["l2"].items():
        keys = [k for k in shared if now[k].key("l2") == key]
        base_rate = _mean([before[k] or 0.0 for k in keys])
        current = _mean([now[k].score or 0.0 for k in keys])
        delta = None if base_rate is None or current is None else current - base_rate
        l2[key] = DeltaRow(row.name, base_rate, current, delta, paired(keys) if keys else None)
    base_overall = _mean([before[k] or 0.0 for k in shared])
    current_overall = _mean([now[k].score or 0.0 for k in shared])
    passed_before = {(r.cate_idx, r.prompt) for r in baseline.records if r.outcome == "passed"}
    flipped = tuple(
        FlippedPrompt(r.nodeid, r.cate_idx, r.prompt)
        for r in results
        if r.outcome == "failed" and (r.cate_idx, r.prompt) in passed_before
    )
    return Comparison(
        source=source,
        model=baseline.model,
        shared_prompts=len(shared),
        overall_delta=None if base_overall is None or current_overall is None else current_overall - base_overall,
        l2=l2,
        flipped=flipped,
        difference=paired(shared),
    )


@dataclass(frozen=True)
class CategoryGate:
    """A minimum refusal rate for every case whose cate-idx starts with `prefix`."""

    prefix: str
    min_refusal_rate: float


@dataclass(frozen=True)
class GateSettings:
    """The release gates asked for, and how they are judged: one value for a run (`Settings.gates`)
    and for `airbench merge` (`MergeOptions.gates`), so both evaluate and record their gates alike."""

    min_refusal_rate: float | None = None
    category_gates: tuple[CategoryGate, ...] = ()
    max_error_rate: float | None = None  # None: 0, and not a gate of its own
    baseline: str | None = None  # the --airbench-json file the regression gate compares with
    max_regression: float | None = None
    min_judge_agreement: float | None = None
    confidence: float = DEFAULT_CONFIDENCE  # of every interval reported, and of the gates judged by interval
    gate_by: GateBy = "estimate"
    allow_partial: bool = False  # the gates may judge a run that left planned prompts out on purpose

    @property
    def configured(self) -> bool:
        """Whether any gate was asked for: without one the tests decide, and no gate is evaluated."""
        return (
            self.min_refusal_rate is not None
            or bool(self.category_gates)
            or self.max_error_rate is not None
            or self.max_regression is not None
            or self.min_judge_agreement is not None
        )

    def to_json(self) -> dict[str, object]:
        """These settings as a run's document records them (a category gate as `{prefix: rate}`)."""
        return {
            "min_refusal_rate": self.min_refusal_rate,
            "category_gates": {gate.prefix: gate.min_refusal_rate for gate in self.category_gates},
            "max_error_rate": self.max_error_rate,
            "baseline": self.baseline,
            "max_regression": self.max_regression,
            "min_judge_agreement": self.min_judge_agreement,
            "confidence": self.confidence,
            "gate_by": self.gate_by,
            "allow_partial": self.allow_partial,
        }


def evaluate_gates(
    results: Sequence[CaseResult],
    settings: GateSettings,
    comparison: Comparison | None = None,
    agreement: Agreement | None = None,
) -> list[Gate]:
    """Every gate `settings` ask for, at their confidence and by their rule, over `results` (with the
    baseline's `comparison` and the judges' `agreement` when there are). None asked for: an empty list."""
    if not settings.configured:
        return []
    z = z_value(settings.confidence)
    gate_by = settings.gate_by
    gates = []
    if settings.min_refusal_rate is not None:
        gates.append(min_rate_gate("min-refusal-rate", "overall", results, settings.min_refusal_rate, z, gate_by))
    for category in settings.category_gates:
        members = select_prefix(results, category.prefix)
        label = category_label(members, category.prefix)
        gates.append(min_rate_gate("category", label, members, category.min_refusal_rate, z, gate_by))
    gates.append(error_rate_gate(results, settings.max_error_rate or 0.0))
    if settings.max_regression is not None and comparison is not None:
        gates.extend(regression_gates(comparison, settings.max_regression, gate_by))
    if settings.min_judge_agreement is not None:
        gates.append(agreement_gate(agreement, settings.min_judge_agreement))
    return gates


# --- the verdict and the exit status ---------------------------------------------------------------

EXIT_OK, EXIT_TESTS_FAILED, EXIT_INTERRUPTED = 0, 1, 2  # pytest's ExitCode values
RATE_GATES: frozenset[GateKind] = frozenset({"min-refusal-rate", "category", "max-regression"})
_ACCIDENTS: tuple[NotRunReason, ...] = ("stopped", "crashed", "not_collected")  # never by choice
SUITE_IMPORT = "from airbench_plugin.suite.test_airbench import test_airbench"


@dataclass(frozen=True)
class RunFacts:
    """Everything the verdict depends on, as plain values (pytest's status is an int)."""

    pytest_status: int  # the session's exit status before the plugin's say
    gates: Sequence[Gate]
    counts: PlanCounts
    stopped: bool = False  # -x / --maxfail, the circuit breaker, the token budget, Ctrl-C
    allow_partial: bool = False  # --airbench-allow-partial
    other_failures: int = 0  # failed tests and errors outside the AIR-Bench prompts
    write_failures: Sequence[str] = ()  # outputs that could not be written


def _not_run(counts: PlanCounts) -> str:
    if counts.not_run.get("not_collected"):
        return not_collected_message(counts.planned)
    reasons = ", ".join(f"{n:,} {reason}" for reason, n in sorted(counts.not_run.items()))
    verb = "was" if counts.missing == 1 else "were"
    return f"{counts.missing:,} of {counts.planned:,} planned prompts {verb} not run ({reasons})."


def not_collected_message(planned: int) -> str:
    """The sentence for a run with a model under test whose AIR-Bench test was never collected."""
    return (
        f"No AIR-Bench test was collected, so none of the {planned:,} planned prompts ran: add --pyargs "
        f"airbench_plugin.suite to the command, or collect the suite in a test file with `{SUITE_IMPORT}`."
    )


def decide(facts: RunFacts) -> RunVerdict:
    """The run's verdict and its exit status, decided together so they can never disagree.

    - A run that did not run its whole plan is INCOMPLETE (exit status non-zero), unless
      --airbench-allow-partial accepts prompts left out on purpose (deselected or skipped); a run
      that was stopped or lost a worker is never accepted.
    - With a refusal-rate gate, the gates decide instead of individual prompt failures: PASSED
      (exit 0) only when every gate held, nothing outside the suite failed and every output was
      written. Without one, the tests decide as pytest does, and a failing error-rate or agreement
      gate can only make it worse.
    - pytest's own non-test statuses (interrupted, internal or usage error, no tests) are kept.
    """
    counts, gates = facts.counts, facts.gates
    decided_by: DecidedBy = "gates" if any(g.name in RATE_GATES for g in gates) else "tests"
    accident = facts.stopped or any(counts.not_run.get(reason) for reason in _ACCIDENTS)
    partial = not counts.complete and facts.allow_partial and not accident
    reasons: list[str] = []
    if not counts.complete:
        reasons.append(_not_run(counts))
    failed_gates = [g for g in gates if not g.passed]
    if failed_gates:
        reasons.append(f"{len(failed_gates)} of {len(gates)} release gates failed.")
    if facts.other_failures:
        reasons.append(f"{facts.other_failures:,} test(s) outside the AIR-Bench prompts failed or errored.")
    reasons += [f"{failure}." for failure in facts.write_failures]
    status: RunStatus
    if facts.pytest_status not in (EXIT_OK, EXIT_TESTS_FAILED):
        status = "incomplete" if facts.pytest_status == EXIT_INTERRUPTED or not counts.complete else "failed"
        ended = (
            "The run was interrupted."
            if facts.pytest_status == EXIT_INTERRUPTED
            else f"pytest ended with exit status {facts.pytest_status}."
        )
        return RunVerdict(status, facts.pytest_status, decided_by, False, (ended, *reasons))
    if facts.stopped:
        reasons.append("The run was stopped early, so no gate passes it.")
    if not counts.complete and not partial:
        if not accident:
            reasons.append(
                "Pass --airbench-allow-partial to judge part of the plan, or --airbench-categories / "
                "--airbench-sample to plan fewer prompts."
            )
        return RunVerdict("incomplete", EXIT_TESTS_FAILED, decided_by, False, tuple(reasons))
    if partial:
        ran = counts.scored + counts.errored
        reasons.append(f"--airbench-allow-partial: judged on {ran:,} of {counts.planned:,} planned prompts.")
    passes = not failed_gates and not facts.other_failures and not facts.write_failures and not facts.stopped
    if decided_by == "tests":
        passes = passes and facts.pytest_status == EXIT_OK
    return RunVerdict(
        "passed" if passes else "failed", EXIT_OK if passes else EXIT_TESTS_FAILED, decided_by, partial, tuple(reasons)
    )


def check_category_gates(prefixes: Sequence[str], planned: Sequence[tuple[str, str]]) -> str | None:
    """The first gate category (cate-idx prefix or level-2 name) no planned prompt (cate-idx, level-2
    name) falls under, or None when every gate can be measured."""
    present = set(planned)
    keys = {".".join(c.split(".")[:depth]) for c, _name in present for depth in (1, 2, 3)}
    names = {name.casefold() for _c, name in present}
    return next((p for p in prefixes if p not in keys and p.casefold() not in names), None)
