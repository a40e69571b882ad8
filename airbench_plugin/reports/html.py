"""Self-contained, per-category HTML report for an AIR-Bench results document.

The report is a single HTML file with inline CSS, inline SVG and one small inline
script; it makes no network requests. Every string that comes from the dataset,
the model or the judge is HTML-escaped by jinja2's autoescaping, and a
Content-Security-Policy meta tag only allows the report's own script (by hash).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

__all__ = ["render_html", "write_html"]

_OUTCOME_ORDER = {"failed": 0, "error": 1, "passed": 2}
_KNOWN_OUTCOMES = frozenset(_OUTCOME_ORDER)
_DASH = "–"
_MINUS = "−"

# Colour stops of the red -> amber -> green refusal-rate scale (rate, (r, g, b)).
_SCALE: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.0, (220, 38, 38)),
    (0.45, (234, 88, 12)),
    (0.7, (234, 179, 8)),
    (0.85, (101, 163, 13)),
    (1.0, (22, 163, 74)),
)
_NULL_COLOUR = "#9ca3af"

# Geometry of the level-2 SVG chart (user units of its viewBox).
_CHART_WIDTH = 960
_CHART_LABEL_WIDTH = 250
_CHART_VALUE_WIDTH = 70
_CHART_ROW = 30
_CHART_BAR = 18
_CHART_TOP = 8
_CHART_AXIS = 26


# --------------------------------------------------------------------------- view model


@dataclass(frozen=True, slots=True)
class _Stats:
    n: int
    refusal_rate: float | None
    passed: int
    failed: int
    errors: int


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
    score: str
    error: str
    provider_refusal: bool
    order: int


@dataclass(slots=True)
class _Group:
    key: str
    level: int
    name: str
    stats: _Stats
    rate_text: str = ""
    colour: str = _NULL_COLOUR
    width: str = "0"
    children: list[_Group] = field(default_factory=list)
    cases: list[_Case] = field(default_factory=list)


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
    passed: bool | None
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


# --------------------------------------------------------------------------- helpers


def _num(value: object) -> float | None:
    """Return a finite float for int/float values (not bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: object) -> int:
    number = _num(value)
    return int(number) if number is not None else 0


def _text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _fmt_rate(value: object) -> str:
    number = _num(value)
    return _DASH if number is None else f"{number * 100:.1f}%"


def _fmt_number(value: object) -> str:
    if value is None:
        return _DASH
    if isinstance(value, bool):
        return "true" if value else "false"
    number = _num(value)
    if number is None:
        return _text(value)
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    return f"{number:.3f}".rstrip("0").rstrip(".")


def _fmt_setting(value: object) -> str:
    if value is None:
        return _DASH
    if isinstance(value, list | tuple):
        return ", ".join(_text(item) for item in value) if value else "all"
    number = _num(value)
    if number is not None and number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return _fmt_number(value)


def _fmt_delta(value: object) -> tuple[str, str]:
    number = _num(value)
    if number is None:
        return _DASH, "flat"
    points = number * 100
    if round(points, 1) == 0:
        return "±0.0 pp", "flat"
    sign = "+" if points > 0 else _MINUS
    return f"{sign}{abs(points):.1f} pp", "up" if points > 0 else "down"


def _fmt_created(value: object) -> str:
    raw = _text(value)
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


def _sort_key(key: str) -> tuple[tuple[int, int, str], ...]:
    """Sort cate-idx keys numerically by their dot-separated parts."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in key.split("."))


def _split_cate(cate: str) -> tuple[str, str, str]:
    """The level-2, level-3 and level-4 keys of a cate-idx such as ``14.3940.21``."""
    parts = cate.split(".")
    return parts[0], ".".join(parts[:2]), ".".join(parts[:3])


def _stats_from(entry: Mapping[str, Any]) -> _Stats:
    return _Stats(
        n=_int(entry.get("n")),
        refusal_rate=_num(entry.get("refusal_rate")),
        passed=_int(entry.get("passed")),
        failed=_int(entry.get("failed")),
        errors=_int(entry.get("errors")),
    )


def _stats_from_cases(cases: Iterable[_Case], scores: Mapping[int, float]) -> _Stats:
    passed = failed = errors = 0
    values: list[float] = []
    for case in cases:
        if case.outcome == "passed":
            passed += 1
        elif case.outcome == "failed":
            failed += 1
        elif case.outcome == "error":
            errors += 1
        score = scores.get(case.order)
        if score is not None and case.outcome != "error":
            values.append(score)
    rate = sum(values) / len(values) if values else None
    return _Stats(n=len(values), refusal_rate=rate, passed=passed, failed=failed, errors=errors)


def _fmt_score(value: object) -> str:
    number = _num(value)
    if number is None:
        return _DASH
    return f"{number:g}"


# --------------------------------------------------------------------------- builders


def _build_cases(results: object) -> tuple[list[_Case], dict[int, float]]:
    cases: list[_Case] = []
    scores: dict[int, float] = {}
    if not isinstance(results, list):
        return cases, scores
    for order, item in enumerate(results):
        result = _mapping(item)
        outcome = _text(result.get("outcome")) or "error"
        score = _num(result.get("score"))
        if score is not None:
            scores[order] = score
        cases.append(
            _Case(
                nodeid=_text(result.get("nodeid")),
                cate=_text(result.get("cate_idx")),
                outcome=outcome,
                outcome_class=outcome if outcome in _KNOWN_OUTCOMES else "other",
                prompt=_text(result.get("prompt")),
                response=_text(result.get("response")),
                reasoning=_text(result.get("judge_reasoning")),
                judge_raw=_text(result.get("judge_raw")),
                score=_fmt_score(result.get("score")),
                error=_text(result.get("error")),
                provider_refusal=result.get("refused_by_provider") is True,
                order=order,
            )
        )
    return cases, scores


def _finish_group(group: _Group) -> _Group:
    rate = group.stats.refusal_rate
    group.rate_text = _fmt_rate(rate)
    group.colour = _colour(rate)
    group.width = "0" if rate is None else f"{min(1.0, max(0.0, rate)) * 100:.1f}"
    return group


def _build_tree(
    categories: Mapping[str, Any], results: list[Any], cases: list[_Case], scores: dict[int, float]
) -> list[_Group]:
    levels = {level: _mapping(categories.get(level)) for level in ("l2", "l3", "l4")}
    names: dict[str, dict[str, str]] = {"l2": {}, "l3": {}, "l4": {}}
    by_l4: dict[str, list[_Case]] = {}
    for case in cases:
        l2, l3, l4 = _split_cate(case.cate)
        by_l4.setdefault(l4, []).append(case)
        result = _mapping(results[case.order])
        names["l2"].setdefault(l2, _text(result.get("l2_name")))
        names["l3"].setdefault(l3, _text(result.get("l3_name")))
        names["l4"].setdefault(l4, _text(result.get("l4_name")))

    l2_keys = set(levels["l2"]) | set(names["l2"])
    l3_keys = set(levels["l3"]) | set(names["l3"])
    l4_keys = set(levels["l4"]) | set(names["l4"])
    l2_keys |= {_split_cate(key)[0] for key in l3_keys | l4_keys}
    l3_keys |= {_split_cate(key)[1] for key in l4_keys}

    l3_children: dict[str, list[str]] = {}
    for key in l4_keys:
        l3_children.setdefault(_split_cate(key)[1], []).append(key)
    l2_children: dict[str, list[str]] = {}
    for key in l3_keys:
        l2_children.setdefault(_split_cate(key)[0], []).append(key)

    def make(level: str, key: str, members: list[_Case]) -> _Group:
        entry = levels[level].get(key)
        if isinstance(entry, Mapping):
            stats = _stats_from(entry)
            name = _text(entry.get("name")) or names[level].get(key, "")
        else:
            stats = _stats_from_cases(members, scores)
            name = names[level].get(key, "")
        return _Group(key=key, level=int(level[1]), name=name, stats=stats)

    tree: list[_Group] = []
    for l2 in sorted(l2_keys, key=_sort_key):
        l2_cases: list[_Case] = []
        l3_groups: list[_Group] = []
        for l3 in sorted(l2_children.get(l2, []), key=_sort_key):
            l3_cases: list[_Case] = []
            l4_groups: list[_Group] = []
            for l4 in sorted(l3_children.get(l3, []), key=_sort_key):
                members = sorted(by_l4.get(l4, []), key=lambda c: (_OUTCOME_ORDER.get(c.outcome, 3), c.order))
                group = make("l4", l4, members)
                group.cases = members
                l4_groups.append(_finish_group(group))
                l3_cases.extend(members)
            l3_group = make("l3", l3, l3_cases)
            l3_group.children = l4_groups
            l3_groups.append(_finish_group(l3_group))
            l2_cases.extend(l3_cases)
        l2_group = make("l2", l2, l2_cases)
        l2_group.children = l3_groups
        tree.append(_finish_group(l2_group))
    return tree


def _build_chart(tree: list[_Group]) -> _Chart:
    track = _CHART_WIDTH - _CHART_LABEL_WIDTH - _CHART_VALUE_WIDTH
    rows: list[_ChartRow] = []
    for index, group in enumerate(tree):
        y = _CHART_TOP + index * _CHART_ROW
        rate = group.stats.refusal_rate
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
                n=group.stats.n,
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


def _build_gates(gates: object) -> list[_Gate]:
    if not isinstance(gates, list):
        return []
    built: list[_Gate] = []
    for item in gates:
        gate = _mapping(item)
        passed = gate.get("passed")
        built.append(
            _Gate(
                name=_text(gate.get("name")),
                target=_text(gate.get("target")),
                threshold=_fmt_number(gate.get("threshold")),
                measured=_fmt_number(gate.get("measured")),
                passed=passed if isinstance(passed, bool) else None,
                detail=_text(gate.get("detail")),
            )
        )
    return built


def _build_baseline(baseline: object, tree: list[_Group]) -> _Baseline | None:
    if not isinstance(baseline, Mapping):
        return None
    per_l2 = _mapping(baseline.get("l2"))
    names = {group.key: group.name for group in tree}
    deltas = [_num(_mapping(entry).get("delta")) for entry in per_l2.values()]
    scale = max([abs(d) for d in deltas if d is not None] + [0.05])
    rows: list[_Delta] = []
    for key in sorted(per_l2, key=_sort_key):
        entry = _mapping(per_l2[key])
        delta = _num(entry.get("delta"))
        text, css = _fmt_delta(delta)
        rows.append(
            _Delta(
                key=key,
                name=_text(entry.get("name")) or names.get(key, ""),
                baseline=_fmt_rate(entry.get("baseline")),
                current=_fmt_rate(entry.get("current")),
                delta=text,
                delta_class=css,
                bar_width="0" if delta is None else f"{abs(delta) / scale * 50:.1f}",
                bar_side="right" if delta is not None and delta > 0 else "left",
            )
        )
    flipped_raw = baseline.get("flipped")
    flipped = [
        _Flip(
            nodeid=_text(_mapping(item).get("nodeid")),
            cate=_text(_mapping(item).get("cate_idx")),
            prompt=_text(_mapping(item).get("prompt")),
        )
        for item in (flipped_raw if isinstance(flipped_raw, list) else [])
    ]
    overall_text, overall_class = _fmt_delta(baseline.get("overall_delta"))
    return _Baseline(
        source=_text(baseline.get("source")),
        model=_text(baseline.get("model")),
        overall_delta=overall_text,
        overall_class=overall_class,
        rows=rows,
        flipped=flipped,
    )


def _build_meta(document: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """Return the (label, value, monospace) rows of the run-details panel."""
    dataset = _mapping(document.get("dataset"))
    settings = _mapping(document.get("settings"))
    usage = _mapping(document.get("usage"))
    rows: list[tuple[str, str, bool]] = [
        ("Dataset", _text(dataset.get("source")) or _DASH, True),
        ("Revision", _text(dataset.get("revision")) or _DASH, True),
        ("Region", _text(dataset.get("region")) or _DASH, False),
        ("Sample", _fmt_setting(settings.get("sample")), False),
        ("Sample by", _fmt_setting(settings.get("sample_by")), False),
        ("Seed", _fmt_setting(settings.get("seed")), False),
        ("Categories", _fmt_setting(settings.get("categories", [])), False),
        ("Provider", _fmt_setting(settings.get("provider")), False),
        ("Base URL", _fmt_setting(settings.get("base_url")), True),
        ("Temperature", _fmt_setting(settings.get("temperature")), False),
        ("Max tokens", _fmt_setting(settings.get("max_tokens")), False),
        ("System prompt", _fmt_setting(settings.get("system_prompt")), False),
        ("Judge provider", _fmt_setting(settings.get("judge_provider")), False),
        ("Judge base URL", _fmt_setting(settings.get("judge_base_url")), True),
        ("Judge scale", _fmt_setting(settings.get("judge_scale")), False),
        ("Pass threshold", _fmt_setting(settings.get("threshold")), False),
    ]
    for role in ("target", "judge"):
        tokens = _mapping(usage.get(role))
        if tokens:
            value = (
                f"{_fmt_number(tokens.get('prompt_tokens'))} prompt / "
                f"{_fmt_number(tokens.get('completion_tokens'))} completion"
            )
            rows.append((f"Tokens ({role})", value, False))
    rows.append(("Plugin version", _text(document.get("plugin_version")) or _DASH, False))
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


def render_html(document: Mapping[str, Any]) -> str:
    """Render a results document as a self-contained HTML report string."""
    results_raw = document.get("results")
    results: list[Any] = results_raw if isinstance(results_raw, list) else []
    cases, scores = _build_cases(results)
    tree = _build_tree(_mapping(document.get("categories")), results, cases, scores)
    summary = _mapping(document.get("summary"))
    settings = _mapping(document.get("settings"))
    overall_rate = _num(summary.get("refusal_rate"))
    verdict_raw = document.get("gate_verdict")
    verdict = verdict_raw if verdict_raw in ("passed", "failed") else None
    outcome_counts = {name: 0 for name in _OUTCOME_ORDER}
    for case in cases:
        if case.outcome in outcome_counts:
            outcome_counts[case.outcome] += 1
    context: dict[str, Any] = {
        "model": _text(document.get("model")) or _DASH,
        "judge_model": _text(document.get("judge_model")) or _DASH,
        "created": _fmt_created(document.get("created")),
        "created_raw": _text(document.get("created")),
        "plugin_version": _text(document.get("plugin_version")) or _DASH,
        "dataset": _mapping(document.get("dataset")),
        "sample": _fmt_setting(settings.get("sample")),
        "sample_by": _fmt_setting(settings.get("sample_by")),
        "seed": _fmt_setting(settings.get("seed")),
        "overall_rate": _fmt_rate(overall_rate),
        "overall_colour": _colour(overall_rate),
        "overall_width": ("0" if overall_rate is None else f"{min(1.0, max(0.0, overall_rate)) * 100:.1f}"),
        "n": _fmt_number(_int(summary.get("n"))),
        "passed": _fmt_number(_int(summary.get("passed"))),
        "failed": _fmt_number(_int(summary.get("failed"))),
        "errors": _fmt_number(_int(summary.get("errors"))),
        "verdict": verdict,
        "gates": _build_gates(document.get("gates")),
        "baseline": _build_baseline(document.get("baseline"), tree),
        "meta": _build_meta(document),
        "tree": tree,
        "chart": _build_chart(tree),
        "case_total": len(cases),
        "outcome_counts": outcome_counts,
    }
    return _environment().get_template("report.html.j2").render(context)


def write_html(document: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Render a results document and write the HTML report to ``path`` (UTF-8, atomically)."""
    html = render_html(document)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    # errors="replace": a lone surrogate in a model response must not lose the whole report
    with partial.open("w", encoding="utf-8", errors="replace", newline="\n") as handle:
        handle.write(html)
    os.replace(partial, target)
