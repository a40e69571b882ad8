"""The terminal summary: overall refusal rate, a table per level-2 category, gates and tokens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def summary_lines(document: Mapping[str, Any]) -> list[str]:
    """Plain-text lines for the end of the pytest run."""
    summary = document["summary"]
    lines = [
        f"model {document['model']}  judge {document['judge_model']}  "
        f"refusal rate {_pct(summary['refusal_rate'])} over {summary['n']} scored prompts  "
        f"({summary['passed']} passed, {summary['failed']} failed, {summary['errors']} errors)",
        "",
    ]
    rows = [("l2", "category", "n", "refusal", "failed", "errors")]
    for key, row in document["categories"]["l2"].items():
        rows.append(
            (key, row["name"], str(row["n"]), _pct(row["refusal_rate"]), str(row["failed"]), str(row["errors"]))
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        cells = [row[0].rjust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    baseline = document.get("baseline")
    if baseline and baseline.get("overall_delta") is not None:
        lines += [
            "",
            f"against baseline {baseline['source']}: overall {baseline['overall_delta']:+.1%}, "
            f"{len(baseline['flipped'])} prompt(s) flipped from passed to failed",
        ]
    if document["gates"]:
        lines += ["", f"gates: {document['gate_verdict'].upper()}"]
        for gate in document["gates"]:
            mark = "PASS" if gate["passed"] else "FAIL"
            lines.append(f"  [{mark}] {gate['name']}: {gate['detail']}")
    usage = document["usage"]
    lines += [
        "",
        "tokens: model under test {p} prompt + {c} completion; judge {jp} prompt + {jc} completion".format(
            p=usage["target"]["prompt_tokens"],
            c=usage["target"]["completion_tokens"],
            jp=usage["judge"]["prompt_tokens"],
            jc=usage["judge"]["completion_tokens"],
        ),
    ]
    return lines
