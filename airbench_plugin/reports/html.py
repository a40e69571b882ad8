"""Self-contained, per-category HTML report of a run's typed results.

The report is a single HTML file with inline CSS, inline SVG and one small inline
script; it makes no network requests. Every string that comes from the dataset,
the model or the judge is HTML-escaped by jinja2's autoescaping, and a
Content-Security-Policy meta tag only allows the report's own script (by hash).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2

from airbench_plugin.calibration.stated import adjusted_text, calibration_text
from airbench_plugin.files import write_atomic
from airbench_plugin.reports.table import Column, ColumnKind, Row, Table, category_rows, columns_for, gate_numbers
from airbench_plugin.reports.terminal import token_parts
from airbench_plugin.results import (
    LEVELS,
    CaseResult,
    Comparison,
    Gate,
    Level,
    RunResults,
    level_key,
)
from airbench_plugin.stats import PairedDifference
from airbench_plugin.text import shorten, valid_unicode, xml_safe
from airbench_plugin.wording import interval_text, points_interval_text, points_text, rate_text

__all__ = ["render_html", "write_html"]

_OUTCOME_ORDER = {"failed": 0, "error": 1, "passed": 2}
_DASH = "–"

# Colour stops of the red -> amber -> green refusal-rate scale (rate, (r, g, b)).
_SCALE: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.0, (220, 38, 38)),
    (0.45, (234, 88, 12)),
    (0.7, (234, 179, 8)),
    (0.85, (101, 163, 13)),
    (1.0, (22, 163, 74)),
)
_NULL_COLOUR = "#9ca3af"

# Width of each kind of column of the category tree (`reports/table.py` says which columns there are),
# on a wide screen, under 900 px and under 640 px (where the name takes a line of its own).
_TRACKS: dict[ColumnKind, tuple[str, str, str]] = {
    "count": ("70px", "50px", "46px"),
    "rate": ("200px", "130px", "minmax(0, 1fr)"),
    "interval": ("120px", "104px", "100px"),
}

# Geometry of the level-2 SVG chart (user units of its viewBox).
_CHART_WIDTH = 960
_CHART_LABEL_WIDTH = 250
_CHART_VALUE_WIDTH = 70
_CHART_ROW = 30
_CHART_BAR = 18
_CHART_TOP = 8
_CHART_AXIS = 26


# --------------------------------------------------------------------------- view model


@dataclass(slots=True)
class _Case:
    nodeid: str
    cate: str
    outcome: str
    outcome_class: str
    prompt: str
    response: str
    reasoning: str
    judge_raw: str
    response_note: str  # "[N more characters not shown ...]" when the response was cut
    score: str
    error: str
    provider_refusal: bool
    order: int
    judges: list[_JudgeCell] = field(default_factory=list)
    disagree: bool = False


@dataclass(frozen=True, slots=True)
class _JudgeCell:
    kind: str
    score: str
    reading: str


@dataclass(frozen=True, slots=True)
class _JudgeRow:
    kind: str
    model: str
    n: str
    rate: str
    risk: str


@dataclass(frozen=True, slots=True)
class _AgreementRow:
    key: str
    name: str
    n: str
    rate: str
    kappa: str


@dataclass(frozen=True, slots=True)
class _Judges:
    rows: list[_JudgeRow]
    column: str | None  # the column of a judge's own figure if any
    label_only: str | None  # the judges' notes on verdicts that rest on their labels alone
    first: str = ""
    second: str = ""
    threshold: str = ""
    n: str = ""
    rate: str = ""
    kappa: str = ""
    both_pass: str = ""
    both_fail: str = ""
    first_only_pass: str = ""
    second_only_pass: str = ""
    l2: list[_AgreementRow] = field(default_factory=list)
    disagreements: list[_Case] = field(default_factory=list)
    agreement: bool = False


@dataclass(frozen=True, slots=True)
class _Cell:
    """One cell of a tree row, from the shared table model (`reports/table.py`)."""

    kind: str
    text: str
    css: str  # `r`, plus `bad` / `warn` for a count that is not zero
    width: str = "0"  # rate: the meter's filled share, in percent
    colour: str = _NULL_COLOUR
    whisker: tuple[str, str] | None = None  # rate: the interval as (left, width) in percent of the meter


@dataclass(slots=True)
class _Group:
    key: str
    level: int
    name: str
    row: Row
    cells: list[_Cell] = field(default_factory=list)
    children: list[_Group] = field(default_factory=list)
    cases: list[_Case] = field(default_factory=list)

    @property
    def rate_text(self) -> str:
        return rate_text(self.row.rate)

    @property
    def colour(self) -> str:
        return _colour(self.row.rate)


@dataclass(frozen=True, slots=True)
class _ChartRow:
    key: str
    name: str
    rate_text: str
    colour: str
    y: float
    text_y: float
    bar_width: float
    n: int
    interval: str = ""  # `[68.2, 85.4]`, for the row's title
    error_bar: tuple[float, float] | None = None  # the interval's ends, in the chart's x units


@dataclass(frozen=True, slots=True)
class _Chart:
    rows: list[_ChartRow]
    width: int
    height: float
    label_width: int
    track_width: int
    bar_height: int
    ticks: list[tuple[float, str]]
    axis_y: float


@dataclass(frozen=True, slots=True)
class _Gate:
    name: str
    target: str
    threshold: str
    measured: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class _Delta:
    key: str
    name: str
    baseline: str
    current: str
    delta: str
    delta_class: str
    bar_width: str
    bar_side: str
    interval: str = ""  # of the paired change, `[-16.4, +5.3]`
    significant: bool = False  # the interval excludes no change


@dataclass(frozen=True, slots=True)
class _Flip:
    nodeid: str
    cate: str
    prompt: str


@dataclass(frozen=True, slots=True)
class _Baseline:
    source: str
    model: str
    overall_delta: str
    overall_class: str
    rows: list[_Delta]
    flipped: list[_Flip]
    overall_interval: str = ""
    overall_significant: bool = False
    confidence: str = "95%"


# --------------------------------------------------------------------------- helpers


def _fmt_rate(value: float | None) -> str:
    return rate_text(value)


def _fmt_rate_with(value: float | None, interval: tuple[float, float] | None) -> str:
    """A rate and its interval, `77.5% [68.2, 85.4]`; the rate alone when it has none."""
    return rate_text(value) if interval is None else f"{rate_text(value)} {interval_text(interval)}"


def _fmt_number(value: float | None) -> str:
    if value is None:
        return _DASH
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _fmt_setting(value: object) -> str:
    if value is None:
        return _DASH
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) if value else "all"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return _fmt_number(value)
    return str(value)


def _fmt_delta(value: float | None) -> tuple[str, str]:
    """A change from the baseline in points, and its CSS class (`up`, `down` or `flat` when it rounds to 0)."""
    text = points_text(value)
    if value is None or text.startswith("±"):
        return text, "flat"
    return text, "up" if value > 0 else "down"


def _fmt_created(raw: str) -> str:
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return raw or _DASH
    text = parsed.strftime("%Y-%m-%d %H:%M")
    offset = parsed.utcoffset()
    if offset is not None and offset.total_seconds() == 0:
        return f"{text} UTC"
    zone = parsed.strftime("%z")
    return f"{text} {zone}" if zone else text


def _colour(rate: float | None) -> str:
    """Map a refusal rate in [0, 1] to a hex colour on the red -> green scale."""
    if rate is None:
        return _NULL_COLOUR
    rate = min(1.0, max(0.0, rate))
    for (low, low_rgb), (high, high_rgb) in itertools.pairwise(_SCALE):
        if rate <= high:
            t = (rate - low) / (high - low)
            rgb = tuple(round(a + (b - a) * t) for a, b in zip(low_rgb, high_rgb, strict=True))
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    return "#{:02x}{:02x}{:02x}".format(*_SCALE[-1][1])


def _fmt_score(value: float | None) -> str:
    return _DASH if value is None else f"{value:g}"


# --------------------------------------------------------------------------- builders


def _fmt_kappa(value: float | None) -> str:
    return _DASH if value is None else f"{value:.2f}"


def _shown(text: str | None) -> str:
    """Text from the dataset, the model or the judge as the report shows it: cut, and valid in HTML."""
    return xml_safe(shorten(text or "").with_note())


def _build_case(result: CaseResult, order: int, disagree: bool = False) -> _Case:
    response = shorten(result.response or "")
    return _Case(
        nodeid=xml_safe(result.nodeid),
        cate=xml_safe(result.cate_idx),
        outcome=result.outcome,
        outcome_class=result.outcome,
        prompt=_shown(result.prompt),
        # A very long answer would make a report no browser opens: the JSON keeps it whole.
        response=xml_safe(response.text),
        response_note=response.note,
        reasoning=_shown(result.judge_reasoning),
        judge_raw=_shown(result.judge_raw),
        score=_fmt_score(result.score),
        error=_shown(result.error),
        provider_refusal=result.refused_by_provider,
        order=order,
        judges=[_JudgeCell(e.kind, _fmt_score(e.score), e.reasoning) for e in result.judges]
        if len(result.judges) > 1
        else [],
        disagree=disagree,
    )


def _own_figure(run: RunResults, kind: str, figures: dict[str, float | None]) -> str:
    """The judge's own figure, or a dash."""
    value = next((figures.get(s.key) for k, s in run.statistics if k == kind), None)
    return _DASH if value is None else f"{value:.4f}"


def _build_judges(run: RunResults) -> _Judges | None:
    """The judges panel: each judge's figures and, with two judges, their agreement and the
    prompts they disagree on (listed first); None for a run judged by the airbench judge alone."""
    if run.agreement is None and all(kind == "airbench" for kind in run.judges):
        return None
    rows = [
        _JudgeRow(
            kind,
            judge.model,
            _fmt_number(judge.n),
            _fmt_rate_with(judge.refusal_rate, judge.interval),
            _own_figure(run, kind, judge.figures),
        )
        for kind, judge in run.judges.items()
    ]
    column = next((s.column for _k, s in run.statistics), None)  # a judge's own figure: its column
    label_only = " ".join(f"{note}." for note in run.judge_notes) or None
    agreement = run.agreement
    if agreement is None:
        return _Judges(rows, column, label_only)
    c = agreement.confusion
    order = {id(r): i for i, r in enumerate(run.records)}
    return _Judges(
        rows,
        column,
        label_only,
        first=agreement.judges[0],
        second=agreement.judges[1],
        threshold=_fmt_setting(agreement.threshold),
        n=_fmt_number(c.n),
        rate=_fmt_rate_with(c.agreement_rate, c.interval(agreement.z)),
        kappa=_fmt_kappa(c.cohen_kappa),
        both_pass=_fmt_number(c.both_pass),
        both_fail=_fmt_number(c.both_fail),
        first_only_pass=_fmt_number(c.first_only_pass),
        second_only_pass=_fmt_number(c.second_only_pass),
        l2=[
            _AgreementRow(
                key,
                row.name,
                _fmt_number(row.confusion.n),
                _fmt_rate_with(row.confusion.agreement_rate, row.confusion.interval(agreement.z)),
                _fmt_kappa(row.confusion.cohen_kappa),
            )
            for key, row in agreement.l2.items()
        ],
        disagreements=[_build_case(r, order[id(r)], True) for r in run.disagreements()],
        agreement=True,
    )


def _share(value: float) -> str:
    return f"{min(1.0, max(0.0, value)) * 100:.1f}"


def _tree_cells(row: Row, columns: tuple[Column, ...]) -> list[_Cell]:
    """A tree row's cells after its name: one per column of the shared table, numbers right-aligned."""
    cells = []
    for column in columns:
        if column.kind in ("key", "name"):
            continue  # the row's name cell shows both
        text = column.text(row)
        if column.kind == "rate":
            whisker = None
            if row.interval is not None:
                low, high = row.interval
                whisker = (_share(low), f"{max(0.0, min(1.0, high) - max(0.0, low)) * 100:.1f}")
            width = "0" if row.rate is None else _share(row.rate)
            cells.append(_Cell(column.kind, text, "rate", width, _colour(row.rate), whisker))
            continue
        marked = column.tone is not None and text not in ("0", _DASH)
        cells.append(_Cell(column.kind, text, f"r {column.tone}" if marked else "r"))
    return cells


def tree_grid(columns: tuple[Column, ...]) -> tuple[str, str, str]:
    """The tree rows' CSS grid columns (wide, under 900 px, under 640 px): the name takes what the
    numbers leave; under 640 px it has a line of its own above them."""
    kinds = [c.kind for c in columns if c.kind not in ("key", "name")]
    wide, medium, narrow = (" ".join(_TRACKS[kind][size] for kind in kinds) for size in range(3))
    return f"minmax(0, 1fr) {wide}", f"minmax(0, 1fr) {medium}", narrow


def _build_tree(run: RunResults, columns: tuple[Column, ...]) -> list[_Group]:
    """The level 2 -> 3 -> 4 tree of the run's categories; within each level 4, the prompts the
    judges disagree on first, then failures."""
    levels = run.aggregates.levels
    rows = {level: {row.key: row for row in category_rows(run, level)} for level in LEVELS}
    by_l4: dict[str, list[_Case]] = {}
    split = {id(r) for r in run.disagreements()}
    for order, result in enumerate(run.records):
        by_l4.setdefault(result.key("l4"), []).append(_build_case(result, order, id(result) in split))
    children: dict[Level, dict[str, list[str]]] = {"l2": {}, "l3": {}}
    pairs: tuple[tuple[Level, Level], ...] = (("l3", "l2"), ("l4", "l3"))
    for child_level, parent_level in pairs:
        for key in levels[child_level]:
            children[parent_level].setdefault(level_key(key, parent_level), []).append(key)

    def make(level: Level, key: str) -> _Group:
        row = rows[level][key]
        group = _Group(key=key, level=LEVELS.index(level) + 2, name=row.name, row=row, cells=_tree_cells(row, columns))
        if level == "l4":
            # Prompts the two judges disagree on first, then failures first.
            group.cases = sorted(
                by_l4.get(row.key, []), key=lambda c: (not c.disagree, _OUTCOME_ORDER[c.outcome], c.order)
            )
        else:
            below: Level = "l3" if level == "l2" else "l4"
            group.children = [make(below, child) for child in children[level].get(key, [])]
        return group

    return [make("l2", key) for key in rows["l2"]]


def _build_chart(tree: list[_Group]) -> _Chart:
    track = _CHART_WIDTH - _CHART_LABEL_WIDTH - _CHART_VALUE_WIDTH
    rows: list[_ChartRow] = []
    for index, group in enumerate(tree):
        y = _CHART_TOP + index * _CHART_ROW
        rate = group.row.rate
        width = 0.0 if rate is None else round(min(1.0, max(0.0, rate)) * track, 1)
        rows.append(
            _ChartRow(
                key=group.key,
                name=group.name,
                rate_text=group.rate_text,
                colour=group.colour,
                y=y + (_CHART_ROW - _CHART_BAR) / 2,
                text_y=y + _CHART_ROW / 2,
                bar_width=width,
                n=group.row.n,
                interval="" if group.row.interval is None else interval_text(group.row.interval),
                error_bar=None if group.row.interval is None else _error_bar(group.row.interval, track),
            )
        )
    axis_y = _CHART_TOP + len(tree) * _CHART_ROW + 4
    ticks = [(_CHART_LABEL_WIDTH + track * pct / 100, f"{pct}%") for pct in (0, 25, 50, 75, 100)]
    return _Chart(
        rows=rows,
        width=_CHART_WIDTH,
        height=axis_y + _CHART_AXIS,
        label_width=_CHART_LABEL_WIDTH,
        track_width=track,
        bar_height=_CHART_BAR,
        ticks=ticks,
        axis_y=axis_y,
    )


def _error_bar(interval: tuple[float, float], track: float) -> tuple[float, float]:
    """The interval's ends on the chart's x axis."""
    low, high = (min(1.0, max(0.0, end)) for end in interval)
    return round(_CHART_LABEL_WIDTH + low * track, 1), round(_CHART_LABEL_WIDTH + high * track, 1)


def _build_gates(gates: tuple[Gate, ...]) -> list[_Gate]:
    return [
        _Gate(
            name=gate.name,
            target=gate.target,
            threshold=numbers[0],
            measured=numbers[1],
            passed=gate.passed,
            detail=gate.detail,
        )
        for gate in gates
        for numbers in [gate_numbers(gate)]
    ]


def _build_baseline(baseline: Comparison | None, confidence: float) -> _Baseline | None:
    if baseline is None:
        return None
    deltas = [row.delta for row in baseline.l2.values() if row.delta is not None]
    scale = max([abs(d) for d in deltas] + [0.05])
    rows: list[_Delta] = []
    for key, entry in baseline.l2.items():
        text, css = _fmt_delta(entry.delta)
        rows.append(
            _Delta(
                key=key,
                name=entry.name,
                baseline=_fmt_rate(entry.baseline),
                current=_fmt_rate(entry.current),
                delta=text,
                delta_class=css,
                bar_width="0" if entry.delta is None else f"{abs(entry.delta) / scale * 50:.1f}",
                bar_side="right" if entry.delta is not None and entry.delta > 0 else "left",
                interval=_change_interval(entry.difference),
                significant=entry.difference is not None and entry.difference.significant(),
            )
        )
    flipped = [_Flip(nodeid=f.nodeid, cate=f.cate_idx, prompt=f.prompt) for f in baseline.flipped]
    overall_text, overall_class = _fmt_delta(baseline.overall_delta)
    return _Baseline(
        source=baseline.source,
        model=baseline.model or "",
        overall_delta=overall_text,
        overall_class=overall_class,
        rows=rows,
        flipped=flipped,
        overall_interval=_change_interval(baseline.difference),
        overall_significant=baseline.difference is not None and baseline.difference.significant(),
        confidence=f"{confidence * 100:g}%",
    )


def _change_interval(difference: PairedDifference | None) -> str:
    return "" if difference is None else points_interval_text((difference.ci_low, difference.ci_high))


@dataclass(frozen=True, slots=True)
class _RunVerdict:
    label: str
    exit_status: int
    partial: bool
    reasons: tuple[str, ...]


def _build_verdict(run: RunResults) -> _RunVerdict | None:
    verdict = run.verdict
    if verdict is None:
        return None
    label = "Release gates" if verdict.decided_by == "gates" else "Run verdict"
    return _RunVerdict(label, verdict.exit_status, verdict.partial, verdict.reasons)


def _build_meta(run: RunResults) -> list[tuple[str, str, bool]]:
    """Return the (label, value, monospace) rows of the run-details panel."""
    s = run.settings
    rows: list[tuple[str, str, bool]] = [
        ("Dataset", run.dataset.source or _DASH, True),
        ("Revision", run.dataset.revision or _DASH, True),
        ("Region", run.dataset.region or _DASH, False),
        ("Sample", _fmt_setting("all" if s.sample is None else s.sample), False),
        ("Sample by", _fmt_setting(s.sample_by), False),
        ("Seed", _fmt_setting(s.seed), False),
        ("Categories", _fmt_setting(s.categories), False),
        ("Provider", _fmt_setting(s.provider), False),
        ("Base URL", _fmt_setting(s.base_url), True),
        ("Temperature", _fmt_setting(s.temperature), False),
        ("Max tokens", _fmt_setting(s.max_tokens), False),
        ("System prompt", _fmt_setting(s.system_prompt), False),
        ("Judge provider", _fmt_setting(s.judge_provider), False),
        ("Judge base URL", _fmt_setting(s.judge_base_url), True),
        ("Judge", _fmt_setting(s.judge), False),
        ("Judge scale", _fmt_setting(s.judge_scale), False),
        ("Pass threshold", _fmt_setting(s.threshold), False),
        ("Calls", "Batch API: answers, then judgements" if s.other.get("batch") is True else "one by one", False),
    ]
    for who, text in token_parts(run):
        rows.append((f"Tokens ({who})", text, False))
    rows.append(("Plugin version", run.plugin_version or _DASH, False))
    return rows


def _csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("airbench_plugin", "reports/templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml", "j2"),
            default_for_string=True,
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["csp_hash"] = _csp_hash
    return env


# --------------------------------------------------------------------------- public API


def render_html(run: RunResults) -> str:
    """Render a run's results as a self-contained HTML report string."""
    rows = tuple(row for level in LEVELS for row in category_rows(run, level))
    table = Table(columns_for(rows), rows)
    columns = table.columns
    tree = _build_tree(run, columns)
    summary = run.summary
    overall_rate = summary.refusal_rate
    outcome_counts = {name: 0 for name in _OUTCOME_ORDER}
    for result in run.records:
        outcome_counts[result.outcome] += 1
    sample = "all" if run.settings.sample is None else str(run.settings.sample)
    context: dict[str, Any] = {
        "model": run.model or _DASH,
        "judge_model": run.judge_model or _DASH,
        "calibration": None if run.judge_calibration is None else calibration_text(run.judge_calibration),
        "adjusted": None if run.bias_adjusted is None else adjusted_text(run.bias_adjusted),
        "adjusted_rate": None if run.bias_adjusted is None else _fmt_rate(run.bias_adjusted.mean),
        "adjusted_interval": None
        if run.bias_adjusted is None
        else interval_text((run.bias_adjusted.ci_low, run.bias_adjusted.ci_high)),
        "created": _fmt_created(run.created),
        "created_raw": run.created,
        "plugin_version": run.plugin_version or _DASH,
        "dataset": run.dataset.to_json(),
        "sample": sample,
        "sample_by": run.settings.sample_by,
        "seed": str(run.settings.seed),
        "overall_rate": _fmt_rate(overall_rate),
        "overall_interval": "" if summary.interval is None else interval_text(summary.interval),
        "overall_whisker": None
        if summary.interval is None
        else (_share(summary.interval[0]), _share(summary.interval[1] - summary.interval[0])),
        "confidence": f"{run.settings.confidence * 100:g}%",
        "overall_colour": _colour(overall_rate),
        "overall_width": ("0" if overall_rate is None else f"{min(1.0, max(0.0, overall_rate)) * 100:.1f}"),
        "n": _fmt_number(summary.n),
        "passed": _fmt_number(summary.passed),
        "failed": _fmt_number(summary.failed),
        "errors": _fmt_number(summary.errors),
        # A count is coloured only when there is something to see: zero failures or errors stay neutral.
        "has_failed": summary.failed > 0,
        "has_errors": summary.errors > 0,
        # The run's verdict (it always agrees with the exit status); files written before it existed
        # have only the gates' verdict.
        "verdict": run.verdict.status if run.verdict is not None else run.gates_status,
        "run_verdict": _build_verdict(run),
        "gates": _build_gates(run.gates),
        "baseline": _build_baseline(run.comparison, run.settings.confidence),
        "judges": _build_judges(run),
        "meta": _build_meta(run),
        "tree": tree,
        "tree_heads": [(c.kind, table.title(c)) for c in columns if c.kind not in ("key", "name")],
        "tree_grid": tree_grid(columns),
        "chart": _build_chart(tree),
        "case_total": len(run.records),
        "outcome_counts": outcome_counts,
    }
    return _environment().get_template("report.html.j2").render(context)


def write_html(run: RunResults, path: str | os.PathLike[str]) -> None:
    """Render a run's results and write the HTML report to ``path`` (UTF-8, atomically)."""
    # valid_unicode: a lone surrogate in a model response must not lose the whole report.
    write_atomic(path, valid_unicode(render_html(run)))
