"""Release gates and the comparison with a baseline run. Pure functions over results."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from airbench_plugin.results import CaseResult, category_rates, select_prefix, tally


class BaselineError(Exception):
    """A baseline file that cannot be used; the message is one sentence for the user."""


@dataclass(frozen=True)
class Gate:
    """One configured gate with what was measured and whether it held."""

    name: str
    target: str
    threshold: float
    measured: float | None
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def min_rate_gate(name: str, target: str, results: Sequence[CaseResult], threshold: float) -> Gate:
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
    rate = errors / total if total else 1.0
    ok = total > 0 and rate <= threshold
    detail = f"{errors} of {total} prompts errored ({_pct(rate)}; at most {_pct(threshold)} allowed)"
    return Gate("max-error-rate", "overall", threshold, rate, ok, detail)


def regression_gates(comparison: Mapping[str, Any], max_drop: float) -> list[Gate]:
    """The overall and every level-2 refusal rate may drop by at most `max_drop` from the baseline."""
    gates = []
    overall = comparison["overall_delta"]
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
    for key, row in comparison["l2"].items():
        delta = row["delta"]
        if delta is None:
            continue
        ok = delta >= -max_drop - 1e-12
        gates.append(
            Gate(
                "max-regression",
                f"{key} {row['name']}",
                max_drop,
                delta,
                ok,
                f"level-2 {key} change {delta:+.1%} (at most -{max_drop:.1%} allowed)",
            )
        )
    return gates


def load_baseline(path: str | Path) -> dict[str, Any]:
    """A previous `--airbench-json` document; raises BaselineError when it is not one."""
    try:
        document: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"cannot read the baseline {str(path)!r}: {exc}") from None
    if not _is_results_document(document):
        raise BaselineError(f"the baseline {str(path)!r} is not a file written by --airbench-json.")
    return document


def _is_rate(value: object) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _is_results_document(document: object) -> bool:
    """Whether `document` has the shape `compare` reads, down to the types of the rates."""
    if not isinstance(document, dict):
        return False
    summary, categories, results = document.get("summary"), document.get("categories", {}), document.get("results")
    if not isinstance(summary, dict) or not _is_rate(summary.get("refusal_rate")):
        return False
    l2 = categories.get("l2", {}) if isinstance(categories, dict) else None
    if not isinstance(l2, dict) or not all(
        isinstance(r, dict) and _is_rate(r.get("refusal_rate")) for r in l2.values()
    ):
        return False
    return isinstance(results, list) and all(isinstance(r, dict) for r in results)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def compare(baseline: Mapping[str, Any], results: Sequence[CaseResult], source: str) -> dict[str, Any]:
    """Deltas against a baseline document, over the prompts both runs scored, and the flipped prompts.

    Only shared prompts (same cate-idx and text) are compared, so a baseline with another sample,
    seed or category filter cannot fake a regression or hide one.
    """
    before = {
        (r.get("cate_idx"), r.get("prompt")): float(r["score"])
        for r in baseline.get("results", [])
        if r.get("outcome") != "error" and isinstance(r.get("score"), (int, float))
    }
    now = {(r.cate_idx, r.prompt): r for r in results if r.outcome != "error" and r.score is not None}
    shared = [key for key in now if key in before]
    l2: dict[str, dict[str, Any]] = {}
    for key, row in category_rates(results)["l2"].items():
        keys = [k for k in shared if now[k].key("l2") == key]
        base_rate = _mean([before[k] for k in keys])
        current = _mean([now[k].score or 0.0 for k in keys])
        delta = None if base_rate is None or current is None else current - base_rate
        l2[key] = {"name": row["name"], "baseline": base_rate, "current": current, "delta": delta}
    base_overall = _mean([before[k] for k in shared])
    current_overall = _mean([now[k].score or 0.0 for k in shared])
    passed_before = {
        (r.get("cate_idx"), r.get("prompt")) for r in baseline.get("results", []) if r.get("outcome") == "passed"
    }
    flipped = [
        {"nodeid": r.nodeid, "cate_idx": r.cate_idx, "prompt": r.prompt}
        for r in results
        if r.outcome == "failed" and (r.cate_idx, r.prompt) in passed_before
    ]
    return {
        "source": source,
        "model": baseline.get("model"),
        "shared_prompts": len(shared),
        "overall_delta": None if base_overall is None or current_overall is None else current_overall - base_overall,
        "l2": l2,
        "flipped": flipped,
    }


def evaluate_gates(
    results: Sequence[CaseResult],
    *,
    min_refusal_rate: float | None,
    category_gates: Sequence[tuple[str, float]],
    max_error_rate: float | None,
    comparison: Mapping[str, Any] | None,
    max_regression: float | None,
) -> list[Gate]:
    """Every configured gate, evaluated. No gate configured gives an empty list."""
    configured = (
        min_refusal_rate is not None or bool(category_gates) or max_error_rate is not None or max_regression is not None
    )
    if not configured:
        return []
    gates = []
    if min_refusal_rate is not None:
        gates.append(min_rate_gate("min-refusal-rate", "overall", results, min_refusal_rate))
    for prefix, threshold in category_gates:
        gates.append(min_rate_gate("category", prefix, select_prefix(results, prefix), threshold))
    gates.append(error_rate_gate(results, max_error_rate or 0.0))
    if max_regression is not None and comparison is not None:
        gates.extend(regression_gates(comparison, max_regression))
    return gates


def verdict(gates: Sequence[Gate]) -> str | None:
    """`passed` when every gate held, `failed` otherwise, None when no gate is configured."""
    if not gates:
        return None
    return "passed" if all(g.passed for g in gates) else "failed"
