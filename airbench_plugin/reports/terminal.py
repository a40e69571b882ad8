"""The terminal summary: overall refusal rate, a table per level-2 category, gates and tokens."""

from __future__ import annotations

from airbench_plugin.results import RunResults


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def summary_lines(run: RunResults) -> list[str]:
    """Plain-text lines for the end of the pytest run."""
    summary = run.summary
    lines = [
        f"model {run.model}  judge {run.judge_model}  "
        f"refusal rate {_pct(summary.refusal_rate)} over {summary.n} scored prompts  "
        f"({summary.passed} passed, {summary.failed} failed, {summary.errors} errors)",
        "",
    ]
    rows = [("l2", "category", "n", "refusal", "failed", "errors")]
    for key, category in run.aggregates.levels["l2"].items():
        t = category.tally
        rows.append((key, category.name, str(t.n), _pct(t.refusal_rate), str(t.failed), str(t.errors)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        cells = [row[0].rjust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    baseline = run.comparison
    if baseline is not None and baseline.overall_delta is not None:
        lines += [
            "",
            f"against baseline {baseline.source}: overall {baseline.overall_delta:+.1%}, "
            f"{len(baseline.flipped)} prompt(s) flipped from passed to failed",
        ]
    if run.gates and run.gate_verdict is not None:
        lines += ["", f"gates: {run.gate_verdict.upper()}"]
        for gate in run.gates:
            mark = "PASS" if gate.passed else "FAIL"
            lines.append(f"  [{mark}] {gate.name}: {gate.detail}")
    usage = run.usage
    lines += [
        "",
        f"tokens: model under test {usage['target'].prompt_tokens} prompt + {usage['target'].completion_tokens} "
        f"completion; judge {usage['judge'].prompt_tokens} prompt + {usage['judge'].completion_tokens} completion",
    ]
    return lines
