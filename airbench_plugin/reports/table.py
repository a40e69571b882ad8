"""The category table every report renders, and the one way a rate or a difference is written.

A run's categories are typed `Row`s; the columns are `COLUMNS`, each saying what it is called and
what kind of value it holds, so the terminal, the Markdown summary, pytest-html's summary, the HTML
report and `airbench merge` lay out the same table. Adding a column is one entry here (and, if it
shows a new number, that number in the results model); the renderers follow.

Rates are written by `rate_text`, their intervals by `interval_text` and differences of rates, in
points, by `points_text` (`wording.py`, so gate lines use them too), in every report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from airbench_plugin.results import Gate, Level, RunResults, Tally
from airbench_plugin.wording import RATE_NAME, interval_text, points_text, rate_text

ColumnKind = Literal["key", "name", "count", "rate", "interval"]
NUMERIC: frozenset[ColumnKind] = frozenset({"key", "count", "rate", "interval"})  # right-aligned


@dataclass(frozen=True)
class Row:
    """One category (or the whole run) as every report shows it."""

    level: Level | None  # None: the overall row
    key: str
    name: str
    n: int  # scored prompts: the rate's denominator
    rate: float | None
    failed: int
    errors: int
    interval: tuple[float, float] | None = None  # the rate's confidence interval, when the model has one

    @classmethod
    def of(cls, level: Level | None, key: str, name: str, tally: Tally) -> Row:
        return cls(level, key, name, tally.n, tally.refusal_rate, tally.failed, tally.errors, tally.interval)


@dataclass(frozen=True)
class Column:
    """One column of the category table: its heading, the kind of value, and its text in a row."""

    title: str
    kind: ColumnKind
    text: Callable[[Row], str]
    optional: bool = False  # shown only when some row has a value for it
    tone: Literal["bad", "warn"] | None = None  # how a page marks a count that is not zero

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC


COLUMNS: tuple[Column, ...] = (
    Column("l2", "key", lambda row: row.key),
    Column("category", "name", lambda row: row.name),
    Column("n", "count", lambda row: f"{row.n:,}"),
    Column(RATE_NAME, "rate", lambda row: rate_text(row.rate)),
    Column("interval", "interval", lambda row: interval_text(row.interval), optional=True),
    Column("failed", "count", lambda row: f"{row.failed:,}", tone="bad"),
    Column("errors", "count", lambda row: f"{row.errors:,}", tone="warn"),
)


@dataclass(frozen=True)
class Table:
    """Rows of one level with the columns they fill."""

    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    confidence: float = 0.95  # of the intervals

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(self.title(column) for column in self.columns)

    def title(self, column: Column) -> str:
        """A column's heading; an interval's says its confidence (`95% interval`)."""
        return f"{self.confidence * 100:g}% {column.title}" if column.kind == "interval" else column.title

    @property
    def numeric(self) -> tuple[bool, ...]:
        return tuple(column.numeric for column in self.columns)

    def cells(self) -> list[tuple[str, ...]]:
        """Every row's texts, one per column."""
        return [tuple(column.text(row) for column in self.columns) for row in self.rows]


def columns_for(rows: tuple[Row, ...]) -> tuple[Column, ...]:
    """The columns these rows fill: an optional column only when some row has its value."""
    has_interval = any(row.interval is not None for row in rows)
    return tuple(c for c in COLUMNS if not c.optional or (c.kind == "interval" and has_interval))


def category_rows(run: RunResults, level: Level) -> tuple[Row, ...]:
    """Every category of `run` at `level`, in taxonomy order."""
    return tuple(Row.of(level, key, row.name, row.tally) for key, row in run.aggregates.levels[level].items())


def overall_row(run: RunResults) -> Row:
    return Row.of(None, "", "overall", run.summary)


def category_table(run: RunResults, level: Level = "l2") -> Table:
    """The table of `run`'s categories at `level`, as every report shows it."""
    rows = category_rows(run, level)
    return Table(columns_for(rows), rows, run.settings.confidence)


def gate_numbers(gate: Gate) -> tuple[str, str]:
    """A gate's threshold and measured value in the unit of what it gates: a rate in percent, a change
    from the baseline in points (the threshold as the drop allowed: `-5.0 pp`)."""
    if gate.name == "max-regression":
        return points_text(-gate.threshold), points_text(gate.measured)
    return rate_text(gate.threshold), rate_text(gate.measured)


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> list[str]:
    """A plain-text table for a terminal: columns padded, numbers right-aligned, a rule under the header."""
    widths = [max(len(line[i]) for line in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    return [line(header), "  ".join("-" * width for width in widths), *(line(cells) for cells in rows)]
