"""Self-contained, per-category HTML report of a run's typed results.

The report is a single HTML file with inline CSS, inline SVG and one small inline
script; it makes no network requests. Every string that comes from the dataset,
the model or the judge is HTML-escaped by jinja2's autoescaping, and a
Content-Security-Policy meta tag only allows the report's own script (by hash).

This module assembles the page from its parts: the category tree and chart (`html_tree.py`), the
panels beside them (`html_panels.py`), rendered through the pages' one environment (`templating.py`).
pytest-html's own report is extended in `pytest_html_hooks.py`.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airbench_plugin.calibration.stated import adjusted_text, calibration_text
from airbench_plugin.files import write_atomic
from airbench_plugin.reports.html_panels import (
    build_baseline,
    build_gates,
    build_judges,
    build_meta,
    build_verdict,
    fmt_number,
)
from airbench_plugin.reports.html_tree import DASH, OUTCOME_ORDER, build_chart, build_tree, share, tree_grid
from airbench_plugin.reports.table import Table, category_rows, columns_for
from airbench_plugin.reports.templating import rate_colour, render
from airbench_plugin.results import LEVELS, RunResults
from airbench_plugin.text import valid_unicode
from airbench_plugin.wording import interval_text, rate_text

__all__ = ["render_html", "write_html"]


def _fmt_created(raw: str) -> str:
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return raw or DASH
    text = parsed.strftime("%Y-%m-%d %H:%M")
    offset = parsed.utcoffset()
    if offset is not None and offset.total_seconds() == 0:
        return f"{text} UTC"
    zone = parsed.strftime("%z")
    return f"{text} {zone}" if zone else text


def render_html(run: RunResults) -> str:
    """Render a run's results as a self-contained HTML report string."""
    rows = tuple(row for level in LEVELS for row in category_rows(run, level))
    table = Table(columns_for(rows), rows)
    columns = table.columns
    tree = build_tree(run, columns)
    summary = run.summary
    overall_rate = summary.refusal_rate
    outcome_counts = {name: 0 for name in OUTCOME_ORDER}
    for result in run.records:
        outcome_counts[result.outcome] += 1
    sample = "all" if run.settings.sample is None else str(run.settings.sample)
    context: dict[str, Any] = {
        "model": run.model or DASH,
        "judge_model": run.judge_model or DASH,
        "calibration": None if run.judge_calibration is None else calibration_text(run.judge_calibration),
        "adjusted": None if run.bias_adjusted is None else adjusted_text(run.bias_adjusted),
        "adjusted_rate": None if run.bias_adjusted is None else rate_text(run.bias_adjusted.mean),
        "adjusted_interval": None
        if run.bias_adjusted is None
        else interval_text((run.bias_adjusted.ci_low, run.bias_adjusted.ci_high)),
        "created": _fmt_created(run.created),
        "created_raw": run.created,
        "plugin_version": run.plugin_version or DASH,
        "dataset": run.dataset.to_json(),
        "sample": sample,
        "sample_by": run.settings.sample_by,
        "seed": str(run.settings.seed),
        "overall_rate": rate_text(overall_rate),
        "overall_interval": "" if summary.interval is None else interval_text(summary.interval),
        "overall_whisker": None
        if summary.interval is None
        else (share(summary.interval[0]), share(summary.interval[1] - summary.interval[0])),
        "confidence": f"{run.settings.confidence * 100:g}%",
        "overall_colour": rate_colour(overall_rate),
        "overall_width": ("0" if overall_rate is None else f"{min(1.0, max(0.0, overall_rate)) * 100:.1f}"),
        "n": fmt_number(summary.n),
        "passed": fmt_number(summary.passed),
        "failed": fmt_number(summary.failed),
        "errors": fmt_number(summary.errors),
        # A count is coloured only when there is something to see: zero failures or errors stay neutral.
        "has_failed": summary.failed > 0,
        "has_errors": summary.errors > 0,
        # The run's verdict (it always agrees with the exit status); files written before it existed
        # have only the gates' status.
        "verdict": run.verdict.status if run.verdict is not None else run.gates_status,
        "run_verdict": build_verdict(run),
        "gates": build_gates(run.gates),
        "baseline": build_baseline(run.comparison, run.settings.confidence),
        "judges": build_judges(run),
        "meta": build_meta(run),
        "tree": tree,
        "tree_heads": [(c.kind, table.title(c)) for c in columns if c.kind not in ("key", "name")],
        "tree_grid": tree_grid(columns),
        "chart": build_chart(tree),
        "case_total": len(run.records),
        "outcome_counts": outcome_counts,
    }
    return render("report.html.j2", context)


def write_html(run: RunResults, path: str | os.PathLike[str]) -> None:
    """Render a run's results and write the HTML report to ``path`` (UTF-8, atomically)."""
    # valid_unicode: a lone surrogate in a model response must not lose the whole report.
    write_atomic(path, valid_unicode(render_html(run)))
