"""The reports of `airbench calibrate`: terminal lines, the JSON document and a self-contained HTML
page. Each formats a `calibration.model.Calibration`; none computes a figure.

As in the run report, every string from the references, the answers or the judge is escaped by
jinja2's autoescaping (HTML) or neutralised (terminal), and the page's Content-Security-Policy
admits no script at all.
"""

from __future__ import annotations

import json
import os
from typing import Any

from airbench_plugin.calibration.model import Calibration, Figures, Judged
from airbench_plugin.calibration.stated import Rate, bias_text, share_text
from airbench_plugin.calibration.stats import LEVEL_KEYS
from airbench_plugin.files import write_atomic
from airbench_plugin.reports.templating import render
from airbench_plugin.text import preview, terminal_safe, valid_unicode
from airbench_plugin.wording import rate_text as wording_rate_text

__all__ = ["calibration_lines", "render_calibration", "write_calibration_html", "write_calibration_json"]

_DASH = "–"
_MINUS = "−"
SHOWN_DISAGREEMENTS = 10  # in the terminal; the JSON and the page hold every one


def rate_text(rate: Rate | None) -> str:
    """`91.1% [83.4, 95.4]`, or a dash without items."""
    return _DASH if rate is None else share_text(rate.rate, rate.ci_low, rate.ci_high)


def mean_text(value: float | None) -> str:
    """A judge's mean refusal score over the items, written as every report writes a refusal rate."""
    return wording_rate_text(value)


def number(value: float | None, digits: int = 3) -> str:
    return _DASH if value is None else f"{value:.{digits}f}"


def figures_bias(figures: Figures) -> str:
    """`-3.3 pp [-8.0, +1.4]`; the interval is a dash below two items."""
    return bias_text(figures.bias.mean, figures.bias.ci_low, figures.bias.ci_high)


def reference_text(calibration: Calibration) -> str:
    return calibration.reference_judge or "recorded labels"


def candidate_text(calibration: Calibration) -> str:
    c = calibration.candidate
    where = f" at {c.base_url}" if c.base_url else ""
    return f"{c.model} via {c.provider}{where} ({c.scale} scale, templates {c.template_revision})"


def calibration_lines(calibration: Calibration) -> list[str]:
    """What the command prints: the figures, the level-2 rows, the worst disagreements, the verdict."""
    o = calibration.overall
    sources = ", ".join(f"{r.source} ({len(r.items)})" for r in calibration.references)
    lines = [
        terminal_safe(f"airbench calibrate: judge {candidate_text(calibration)}", one_line=True),
        terminal_safe(f"  against {reference_text(calibration)} on {sources}", one_line=True),
        f"  items {o.items:,} · errors {calibration.errors:,} · threshold {calibration.threshold:g}",
        f"  exact agreement  {rate_text(o.exact_agreement)}",
        f"  pass agreement   {rate_text(o.pass_agreement)}",
        f"  kappa (pass/fail) {number(o.kappa)} · quadratic-weighted kappa (0/0.5/1) {number(o.weighted_kappa)}",
        f"  bias (candidate {_MINUS} official) {figures_bias(o)}",
        f"  refusal rate: official {mean_text(o.official_mean)} · candidate {mean_text(o.candidate_mean)}",
        "  confusion (rows: official, columns: candidate): "
        + " · ".join(
            f"{row}: " + " ".join(f"{o.confusion[i][j]:,}" for j in range(len(LEVEL_KEYS)))
            for i, row in enumerate(LEVEL_KEYS)
        ),
        "  by level-2 category (items, pass agreement, bias):",
    ]
    for key, row in calibration.l2.items():
        f = row.figures
        errors = f", {row.errors} errors" if row.errors else ""
        label = terminal_safe(f"{key} {row.name}", one_line=True)
        lines.append(f"    {label}: {f.items}{errors}, {rate_text(f.pass_agreement)}, {figures_bias(f)}")
    disagreements = calibration.disagreements
    if disagreements:
        lines.append(f"  {len(disagreements):,} disagreements, worst first:")
        for judged in disagreements[:SHOWN_DISAGREEMENTS]:
            lines.append(f"    {_disagreement(judged)}")
        if len(disagreements) > SHOWN_DISAGREEMENTS:
            lines.append(f"    … and {len(disagreements) - SHOWN_DISAGREEMENTS:,} more (--json, --html)")
    for judged in calibration.errored[:SHOWN_DISAGREEMENTS]:
        lines.append(f"  error {judged.item.case.cate_idx}: {preview(judged.error or '', 200)}")
    for gate in calibration.gates:
        lines.append(f"  gate {'met' if gate.passed else 'NOT met'}: {gate.describe()}")
    lines.append(f"airbench calibrate: {calibration.verdict}")
    return lines


def _disagreement(judged: Judged) -> str:
    case = judged.item.case
    return (
        f"{terminal_safe(case.cate_idx, one_line=True)} official {judged.item.official:g} → candidate "
        f"{judged.candidate:g}: {preview(case.prompt, 80)}"
    )


def write_calibration_json(calibration: Calibration, path: str | os.PathLike[str]) -> None:
    """Write the document atomically, so a reader never sees half a file."""
    text = json.dumps(calibration.to_json(), indent=2, ensure_ascii=False)
    write_atomic(path, valid_unicode(text) + "\n")


def render_calibration(calibration: Calibration) -> str:
    """The calibration as a self-contained HTML page."""
    context: dict[str, Any] = {
        "c": calibration,
        "o": calibration.overall,
        "levels": LEVEL_KEYS,
        "rate_text": rate_text,
        "bias_text": figures_bias,
        "number": number,
        "mean_text": mean_text,
        "reference": reference_text(calibration),
        "disagreements": calibration.disagreements,
        "errored": calibration.errored,
        "settings": sorted(calibration.candidate.to_json().items()),
        "json_text": lambda value: json.dumps(value, ensure_ascii=False, sort_keys=True),
    }
    return render("calibration.html.j2", context)


def write_calibration_html(calibration: Calibration, path: str | os.PathLike[str]) -> None:
    """Write the page atomically: whole, or not at all."""
    write_atomic(path, valid_unicode(render_calibration(calibration)))
