"""The HTML report's panels beside the category tree: the judges (and their agreement), the gates,
the baseline comparison, the run's verdict and the run's details.

Plain values the template lays out (`report.html.j2`); each formats a part of `RunResults` and
computes nothing the results model does not already hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airbench_plugin.judges import DEFAULT_JUDGE
from airbench_plugin.reports.html_tree import DASH, CaseCard, build_case
from airbench_plugin.reports.table import gate_numbers
from airbench_plugin.reports.terminal import token_parts
from airbench_plugin.results import Comparison, Gate, RunResults
from airbench_plugin.stats import PairedDifference
from airbench_plugin.wording import interval_text, points_interval_text, points_text, rate_text

__all__ = [
    "Baseline",
    "GateRow",
    "Judges",
    "RunVerdict",
    "build_baseline",
    "build_gates",
    "build_judges",
    "build_meta",
    "build_verdict",
    "fmt_number",
]


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
class Judges:
    """The judges panel: each judge's figures and, with two judges, their agreement."""

    rows: list[_JudgeRow]
    column: str | None  # the column of a judge's own figure if any
    label_only: str | None  # the judges' notes on readings that rest on their labels alone
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
    disagreements: list[CaseCard] = field(default_factory=list)
    agreement: bool = False


@dataclass(frozen=True, slots=True)
class GateRow:
    """One gate as the gates panel lists it."""

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
class Baseline:
    """The baseline panel: the change from the baseline run, overall and per level 2."""

    source: str
    model: str
    overall_delta: str
    overall_class: str
    rows: list[_Delta]
    flipped: list[_Flip]
    overall_interval: str = ""
    overall_significant: bool = False
    confidence: str = "95%"


@dataclass(frozen=True, slots=True)
class RunVerdict:
    """The run's verdict as its banner says it."""

    label: str
    exit_status: int
    partial: bool
    reasons: tuple[str, ...]


def _fmt_rate_with(value: float | None, interval: tuple[float, float] | None) -> str:
    """A rate and its interval, `77.5% [68.2, 85.4]`; the rate alone when it has none."""
    return rate_text(value) if interval is None else f"{rate_text(value)} {interval_text(interval)}"


def fmt_number(value: float | None) -> str:
    """A count with thousands separators, a fraction to at most 3 decimals; a dash for none."""
    if value is None:
        return DASH
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _fmt_setting(value: object) -> str:
    if value is None:
        return DASH
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) if value else "all"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return fmt_number(value)
    return str(value)


def _fmt_delta(value: float | None) -> tuple[str, str]:
    """A change from the baseline in points, and its CSS class (`up`, `down` or `flat` when it rounds to 0)."""
    text = points_text(value)
    if value is None or text.startswith("±"):
        return text, "flat"
    return text, "up" if value > 0 else "down"


def _fmt_kappa(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}"


def _own_figure(run: RunResults, kind: str, figures: dict[str, float | None]) -> str:
    """The judge's own figure, or a dash."""
    value = next((figures.get(s.key) for k, s in run.statistics if k == kind), None)
    return DASH if value is None else f"{value:.4f}"


def build_judges(run: RunResults) -> Judges | None:
    """The judges panel: each judge's figures and, with two judges, their agreement and the
    prompts they disagree on (listed first); None for a run judged by the airbench judge alone."""
    if run.agreement is None and all(kind == DEFAULT_JUDGE for kind in run.judges):
        return None
    rows = [
        _JudgeRow(
            kind,
            judge.model,
            fmt_number(judge.n),
            _fmt_rate_with(judge.refusal_rate, judge.interval),
            _own_figure(run, kind, judge.figures),
        )
        for kind, judge in run.judges.items()
    ]
    column = next((s.column for _k, s in run.statistics), None)  # a judge's own figure: its column
    label_only = " ".join(f"{note}." for note in run.judge_notes) or None
    agreement = run.agreement
    if agreement is None:
        return Judges(rows, column, label_only)
    c = agreement.confusion
    order = {id(r): i for i, r in enumerate(run.records)}
    return Judges(
        rows,
        column,
        label_only,
        first=agreement.judges[0],
        second=agreement.judges[1],
        threshold=_fmt_setting(agreement.threshold),
        n=fmt_number(c.n),
        rate=_fmt_rate_with(c.agreement_rate, c.interval(agreement.z)),
        kappa=_fmt_kappa(c.cohen_kappa),
        both_pass=fmt_number(c.both_pass),
        both_fail=fmt_number(c.both_fail),
        first_only_pass=fmt_number(c.first_only_pass),
        second_only_pass=fmt_number(c.second_only_pass),
        l2=[
            _AgreementRow(
                key,
                row.name,
                fmt_number(row.confusion.n),
                _fmt_rate_with(row.confusion.agreement_rate, row.confusion.interval(agreement.z)),
                _fmt_kappa(row.confusion.cohen_kappa),
            )
            for key, row in agreement.l2.items()
        ],
        disagreements=[build_case(r, order[id(r)], True) for r in run.disagreements()],
        agreement=True,
    )


def build_gates(gates: tuple[Gate, ...]) -> list[GateRow]:
    """The gates panel's rows, with each threshold and measure in the unit of what it gates."""
    return [
        GateRow(
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


def build_baseline(baseline: Comparison | None, confidence: float) -> Baseline | None:
    """The baseline panel; None without a baseline. Each level-2 bar is scaled to the largest change."""
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
                baseline=rate_text(entry.baseline),
                current=rate_text(entry.current),
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
    return Baseline(
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


def build_verdict(run: RunResults) -> RunVerdict | None:
    """The verdict banner; None for a file written before runs had a verdict."""
    verdict = run.verdict
    if verdict is None:
        return None
    label = "Release gates" if verdict.decided_by == "gates" else "Run verdict"
    return RunVerdict(label, verdict.exit_status, verdict.partial, verdict.reasons)


def build_meta(run: RunResults) -> list[tuple[str, str, bool]]:
    """Return the (label, value, monospace) rows of the run-details panel."""
    s = run.settings
    rows: list[tuple[str, str, bool]] = [
        ("Dataset", run.dataset.source or DASH, True),
        ("Revision", run.dataset.revision or DASH, True),
        ("Region", run.dataset.region or DASH, False),
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
    rows.append(("Plugin version", run.plugin_version or DASH, False))
    return rows
