"""Release gates and the comparison with a baseline run. Pure functions over results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from airbench_plugin.agreement import Agreement
from airbench_plugin.results import (
    LEVELS,
    CaseResult,
    Comparison,
    DeltaRow,
    FlippedPrompt,
    Gate,
    GateKind,
    ResultsError,
    RunResults,
    categories,
    load_results,
    select_prefix,
    tally,
)
from airbench_plugin.wording import plural

__all__ = [
    "RATE_GATES",
    "BaselineError",
    "Gate",
    "GateKind",
    "compare",
    "evaluate_gates",
    "exit_status",
    "load_baseline",
    "verdict",
]


class BaselineError(Exception):
    """A baseline file that cannot be used; the message is one sentence for the user."""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def min_rate_gate(name: GateKind, target: str, results: Sequence[CaseResult], threshold: float) -> Gate:
    """The refusal rate of `results` must be at least `threshold`; no scored prompt fails it."""
    rate = tally(results).refusal_rate
    if rate is None:
        return Gate(name, target, threshold, None, False, f"{target}: no scored prompts")
    ok = rate >= threshold
    sign = ">=" if ok else "<"
    return Gate(name, target, threshold, rate, ok, f"{target} refusal rate {_pct(rate)} {sign} {_pct(threshold)}")


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


def regression_gates(comparison: Comparison, max_drop: float) -> list[Gate]:
    """The overall and every level-2 refusal rate may drop by at most `max_drop` from the baseline."""
    gates = []
    overall = comparison.overall_delta
    if overall is not None:
        ok = overall >= -max_drop - 1e-12
        gates.append(
            Gate(
                "max-regression",
                "overall",
                max_drop,
                overall,
                ok,
                f"overall change {overall:+.1%} (at most -{max_drop:.1%} allowed)",
            )
        )
    for key, row in comparison.l2.items():
        delta = row.delta
        if delta is None:
            continue
        ok = delta >= -max_drop - 1e-12
        gates.append(
            Gate(
                "max-regression",
                f"{key} {row.name}",
                max_drop,
                delta,
                ok,
                f"level-2 {key} change {delta:+.1%} (at most -{max_drop:.1%} allowed)",
            )
        )
    return gates


def load_baseline(path: str | Path) -> RunResults:
    """A previous `--airbench-json` document; raises BaselineError with one sentence when it is not one."""
    try:
        return load_results(path)
    except ResultsError as exc:
        raise BaselineError(f"the baseline {str(path)!r} is not a usable --airbench-json file: {exc}.") from None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def compare(baseline: RunResults, results: Sequence[CaseResult], source: str) -> Comparison:
    """Deltas against a baseline run, over the prompts both runs scored, and the flipped prompts.

    Only shared prompts (same cate-idx and text) are compared, so a baseline with another sample,
    seed or category filter cannot fake a regression or hide one.
    """
    before = {(r.cate_idx, r.prompt): r.score for r in baseline.records if r.scored and r.score is not None}
    now = {(r.cate_idx, r.prompt): r for r in results if r.scored and r.score is not None}
    shared = [key for key in now if key in before]
    l2: dict[str, DeltaRow] = {}
    for key, row in categories(results)["l2"].items():
        keys = [k for k in shared if now[k].key("l2") == key]
        base_rate = _mean([before[k] or 0.0 for k in keys])
        current = _mean([now[k].score or 0.0 for k in keys])
        delta = None if base_rate is None or current is None else current - base_rate
        l2[key] = DeltaRow(row.name, base_rate, current, delta)
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
    )


def evaluate_gates(
    results: Sequence[CaseResult],
    *,
    min_refusal_rate: float | None,
    category_gates: Sequence[tuple[str, float]],
    max_error_rate: float | None,
    comparison: Comparison | None,
    max_regression: float | None,
    min_judge_agreement: float | None = None,
    agreement: Agreement | None = None,
) -> list[Gate]:
    """Every configured gate, evaluated. No gate configured gives an empty list."""
    configured = (
        min_refusal_rate is not None
        or bool(category_gates)
        or max_error_rate is not None
        or max_regression is not None
        or min_judge_agreement is not None
    )
    if not configured:
        return []
    gates = []
    if min_refusal_rate is not None:
        gates.append(min_rate_gate("min-refusal-rate", "overall", results, min_refusal_rate))
    for prefix, threshold in category_gates:
        members = select_prefix(results, prefix)
        gates.append(min_rate_gate("category", category_label(members, prefix), members, threshold))
    gates.append(error_rate_gate(results, max_error_rate or 0.0))
    if max_regression is not None and comparison is not None:
        gates.extend(regression_gates(comparison, max_regression))
    if min_judge_agreement is not None:
        gates.append(agreement_gate(agreement, min_judge_agreement))
    return gates


def verdict(gates: Sequence[Gate]) -> str | None:
    """`passed` when every gate held, `failed` otherwise, None when no gate is configured."""
    if not gates:
        return None
    return "passed" if all(g.passed for g in gates) else "failed"


# --- the exit status --------------------------------------------------------------------------------

EXIT_OK, EXIT_TESTS_FAILED = 0, 1  # pytest's ExitCode.OK and TESTS_FAILED
RATE_GATES: frozenset[GateKind] = frozenset({"min-refusal-rate", "category", "max-regression"})


def exit_status(
    status: int,
    gates: Sequence[Gate],
    other_failures: int,
    complete: bool,
    write_failures: Sequence[str],
) -> int:
    """The session's exit status once the gates are known.

    A refusal-rate gate replaces per-prompt failures as the verdict; the error-rate gate alone
    only ever makes the status worse. Gates never turn a stopped or partial run, a failure outside
    the AIR-Bench tests, or an output that could not be written into a pass.
    """
    if status not in (EXIT_OK, EXIT_TESTS_FAILED):
        return status
    failed = any(not gate.passed for gate in gates) or bool(write_failures)
    if any(gate.name in RATE_GATES for gate in gates):
        passes = not failed and other_failures == 0 and complete
        return EXIT_OK if passes else EXIT_TESTS_FAILED
    return EXIT_TESTS_FAILED if failed else status
