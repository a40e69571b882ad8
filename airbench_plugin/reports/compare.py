"""The model-by-model comparison page (`airbench compare --report`): one self-contained HTML file.

A heat map of models × level-2 categories (refusal score over the prompts every run scored, the
AIR-Bench paper's figure), each level-2 category expandable to its level-3 and level-4 columns,
the overall rate per model and, for two runs, the prompts whose outcome flipped. As in the run
report, every string from the runs is escaped by jinja2's autoescaping, and the
Content-Security-Policy admits no script at all (the page needs none: `<details>` expands).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from airbench_plugin import __version__
from airbench_plugin.files import write_atomic
from airbench_plugin.leaderboard import Category, ComparedRun, FlippedPrompt, ModelComparison
from airbench_plugin.reports.templating import rate_colour, render
from airbench_plugin.results import Level
from airbench_plugin.stats import PairedDifference, RateEstimate
from airbench_plugin.text import valid_unicode
from airbench_plugin.wording import RATE_NAME, interval_text, plural, points_text, rate_text

__all__ = ["render_compare", "write_compare"]


@dataclass(frozen=True, slots=True)
class _Cell:
    text: str
    colour: str
    title: str
    mark: str = ""  # `up` / `down`: differs from the first run beyond noise (its paired interval excludes 0)


def _estimate_text(estimate: RateEstimate | None) -> str:
    return "" if estimate is None else f" {interval_text((estimate.ci_low, estimate.ci_high))}"


def _difference_text(difference: PairedDifference | None, first: str) -> tuple[str, str]:
    """`-25.0 pp [-40.1, -9.9] against FIRST, beyond noise` and the cell's mark; empty for the first run."""
    if difference is None or difference.mean is None:
        return "", ""
    interval = ""
    if difference.ci_low is not None and difference.ci_high is not None:
        interval = f" [{difference.ci_low * 100:+.1f}, {difference.ci_high * 100:+.1f}]"
    significant = difference.significant()
    noise = "beyond noise" if significant else "within noise"
    mark = ("up" if difference.mean > 0 else "down") if significant else ""
    return f"{points_text(difference.mean)}{interval} against {first}, {noise}", mark


@dataclass(frozen=True, slots=True)
class _Heat:
    """One heat map: its column categories and one row of cells per run."""

    columns: tuple[Category, ...]
    rows: list[tuple[ComparedRun, list[_Cell]]]


def _rate(value: float | None) -> str:
    return rate_text(value, digits=0)


def _heat(comparison: ModelComparison, level: Level, columns: tuple[Category, ...]) -> _Heat:
    rows = []
    first = comparison.runs[0].label
    for run in comparison.runs:
        cells = []
        for column in columns:
            rate = run.rates[level].get(column.key)
            interval = _estimate_text(run.estimates.get(level, {}).get(column.key))
            against, mark = _difference_text(run.differences.get(level, {}).get(column.key), first)
            title = (
                f"{run.label} · {column.key} {column.name}: {RATE_NAME} {rate_text(rate)}{interval} over "
                f"{plural(column.prompts, 'prompt')}{'; ' + against if against else ''}"
            )
            cells.append(_Cell(_rate(rate), rate_colour(rate), title, mark))
        rows.append((run, cells))
    return _Heat(columns, rows)


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def render_compare(comparison: ModelComparison, created: dt.datetime | None = None) -> str:
    """The comparison as a self-contained HTML page."""
    l2 = comparison.categories["l2"]
    expand = [
        (
            category,
            _heat(comparison, "l3", comparison.children(category.key, "l3")),
            _heat(comparison, "l4", comparison.children(category.key, "l4")),
        )
        for category in l2
    ]
    flipped: tuple[FlippedPrompt, ...] = comparison.flipped or ()
    context = {
        "runs": comparison.runs,
        "labels": " vs ".join(run.label for run in comparison.runs),
        "shared": comparison.shared_prompts,
        "overall": [
            (
                run,
                rate_text(run.overall),
                rate_colour(run.overall),
                _estimate_text(run.overall_estimate).strip() or "–",
                _difference_text(run.difference, comparison.runs[0].label),
            )
            for run in comparison.runs
        ],
        "confidence": f"{comparison.confidence * 100:g}%",
        "heat": _heat(comparison, "l2", l2),
        "expand": expand,
        "two_runs": comparison.flipped is not None,
        "flipped": flipped,
        "regressed": sum(1 for flip in flipped if flip.regressed),
        "score": _score,
        "plugin_version": __version__,
        "created": (created or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
    }
    return render("compare.html.j2", context)


def write_compare(comparison: ModelComparison, path: str | os.PathLike[str]) -> None:
    """Write the page atomically: whole, or not at all (no `.partial` left behind)."""
    write_atomic(path, valid_unicode(render_compare(comparison)))
