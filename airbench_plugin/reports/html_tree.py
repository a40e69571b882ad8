"""The HTML report's view of the categories: the level 2 -> 3 -> 4 tree with each prompt's card, and
the level-2 chart.

Plain values the template lays out (`report.html.j2`); every string from the dataset, the model or
the judge is cut and made valid here, and escaped by the template's autoescaping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airbench_plugin.reports.table import Column, ColumnKind, Row, category_rows
from airbench_plugin.reports.templating import NULL_COLOUR, rate_colour
from airbench_plugin.results import LEVELS, CaseResult, Level, RunResults, level_key
from airbench_plugin.text import shorten, xml_safe
from airbench_plugin.wording import interval_text, rate_text

__all__ = [
    "DASH",
    "OUTCOME_ORDER",
    "CaseCard",
    "Chart",
    "Group",
    "build_case",
    "build_chart",
    "build_tree",
    "share",
    "tree_grid",
]

OUTCOME_ORDER = {"failed": 0, "error": 1, "passed": 2}
DASH = "–"

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


@dataclass(slots=True)
class CaseCard:
    """One prompt as its card shows it: in its level-4 group, or among the judges' disagreements."""

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
class _Cell:
    """One cell of a tree row, from the shared table model (`reports/table.py`)."""

    kind: str
    text: str
    css: str  # `r`, plus `bad` / `warn` for a count that is not zero
    width: str = "0"  # rate: the meter's filled share, in percent
    colour: str = NULL_COLOUR
    whisker: tuple[str, str] | None = None  # rate: the interval as (left, width) in percent of the meter


@dataclass(slots=True)
class Group:
    """One category of the tree: its row of the shared table, and its subcategories or its prompts."""

    key: str
    level: int
    name: str
    row: Row
    cells: list[_Cell] = field(default_factory=list)
    children: list[Group] = field(default_factory=list)
    cases: list[CaseCard] = field(default_factory=list)

    @property
    def rate_text(self) -> str:
        return rate_text(self.row.rate)

    @property
    def colour(self) -> str:
        return rate_colour(self.row.rate)


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
class Chart:
    """The level-2 bar chart, laid out in the SVG's user units."""

    rows: list[_ChartRow]
    width: int
    height: float
    label_width: int
    track_width: int
    bar_height: int
    ticks: list[tuple[float, str]]
    axis_y: float


def _fmt_score(value: float | None) -> str:
    return DASH if value is None else f"{value:g}"


def _shown(text: str | None) -> str:
    """Text from the dataset, the model or the judge as the report shows it: cut, and valid in HTML."""
    return xml_safe(shorten(text or "").with_note())


def share(value: float) -> str:
    """A share in [0, 1] as a CSS percentage (clipped), `77.5`."""
    return f"{min(1.0, max(0.0, value)) * 100:.1f}"


def build_case(result: CaseResult, order: int, disagree: bool = False) -> CaseCard:
    """One record's card; `order` is its place in the run, `disagree` whether the judges split on it."""
    response = shorten(result.response or "")
    return CaseCard(
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
                whisker = (share(low), f"{max(0.0, min(1.0, high) - max(0.0, low)) * 100:.1f}")
            width = "0" if row.rate is None else share(row.rate)
            cells.append(_Cell(column.kind, text, "rate", width, rate_colour(row.rate), whisker))
            continue
        marked = column.tone is not None and text not in ("0", DASH)
        cells.append(_Cell(column.kind, text, f"r {column.tone}" if marked else "r"))
    return cells


def tree_grid(columns: tuple[Column, ...]) -> tuple[str, str, str]:
    """The tree rows' CSS grid columns (wide, under 900 px, under 640 px): the name takes what the
    numbers leave; under 640 px it has a line of its own above them."""
    kinds = [c.kind for c in columns if c.kind not in ("key", "name")]
    wide, medium, narrow = (" ".join(_TRACKS[kind][size] for kind in kinds) for size in range(3))
    return f"minmax(0, 1fr) {wide}", f"minmax(0, 1fr) {medium}", narrow


def build_tree(run: RunResults, columns: tuple[Column, ...]) -> list[Group]:
    """The level 2 -> 3 -> 4 tree of the run's categories; within each level 4, the prompts the
    judges disagree on first, then failures."""
    levels = run.aggregates.levels
    rows = {level: {row.key: row for row in category_rows(run, level)} for level in LEVELS}
    by_l4: dict[str, list[CaseCard]] = {}
    split = {id(r) for r in run.disagreements()}
    for order, result in enumerate(run.records):
        by_l4.setdefault(result.key("l4"), []).append(build_case(result, order, id(result) in split))
    children: dict[Level, dict[str, list[str]]] = {"l2": {}, "l3": {}}
    pairs: tuple[tuple[Level, Level], ...] = (("l3", "l2"), ("l4", "l3"))
    for child_level, parent_level in pairs:
        for key in levels[child_level]:
            children[parent_level].setdefault(level_key(key, parent_level), []).append(key)

    def make(level: Level, key: str) -> Group:
        row = rows[level][key]
        group = Group(key=key, level=LEVELS.index(level) + 2, name=row.name, row=row, cells=_tree_cells(row, columns))
        if level == "l4":
            # Prompts the two judges disagree on first, then failures first.
            group.cases = sorted(
                by_l4.get(row.key, []), key=lambda c: (not c.disagree, OUTCOME_ORDER[c.outcome], c.order)
            )
        else:
            below: Level = "l3" if level == "l2" else "l4"
            group.children = [make(below, child) for child in children[level].get(key, [])]
        return group

    return [make("l2", key) for key in rows["l2"]]


def build_chart(tree: list[Group]) -> Chart:
    """The level-2 chart of the tree's top rows: a bar per category, with its interval's error bar."""
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
    return Chart(
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
