"""pytest-html integration, registered only when pytest-html is active.

Adds cate-idx, level-2 and score columns, puts each prompt, response and judge reasoning in
the test's extras, and the per-level-2 table in the summary. Everything from the dataset, the
model or the judge is HTML-escaped here: pytest-html inserts cells and extras as raw HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import pytest

from airbench_plugin.reports.table import category_table
from airbench_plugin.reports.terminal import overall_text, verdict_lines
from airbench_plugin.results import CaseResult, RunResults
from airbench_plugin.text import shorten, xml_safe


def _esc(value: str) -> str:
    """Text from the dataset, the model or the judge as HTML: escaped, and valid (no control characters)."""
    return escape(xml_safe(value))


def result_extras(result: CaseResult) -> list[dict[str, Any]]:
    """pytest-html extras for one result: the exchange, escaped, as one HTML block."""
    from pytest_html import extras

    def block(title: str, value: str | None) -> str:
        if value is None:
            return f'<div class="airbench-{title.lower()}"><h4>{title}</h4><pre><em>none</em></pre></div>'
        # A very long answer would make a report no browser opens: the JSON keeps it whole.
        cut = shorten(value)
        note = f'<p class="airbench-cut"><em>{_esc(cut.note)}</em></p>' if cut.omitted else ""
        pre = f'<pre style="white-space:pre-wrap">{_esc(cut.text)}</pre>'
        return f'<div class="airbench-{title.lower()}"><h4>{title}</h4>{pre}{note}</div>'

    score = "-" if result.score is None else f"{result.score:g}"
    html = (
        f'<div class="airbench"><p><b>{_esc(result.cate_idx)}</b> {_esc(result.l2_name)} &gt; '
        f"{_esc(result.l3_name)} &gt; {_esc(result.l4_name)} &middot; refusal score {score}</p>"
        + block("Prompt", result.prompt)
        + block("Response", result.response)
        + block("Judge", result.judge_reasoning if result.error is None else result.error)
        + "</div>"
    )
    return [extras.html(html)]


# pytest-html styles its own tables only; without this the summary's cells touch ("10Deception").
SUMMARY_STYLE = (
    "<style>#airbench-summary{border-collapse:collapse;margin:6px 0 12px}"
    "#airbench-summary th,#airbench-summary td{padding:3px 12px;border-bottom:1px solid #e2e2e2;text-align:left}"
    "#airbench-summary .num{text-align:right;font-variant-numeric:tabular-nums}</style>"
)


def summary_table(run: RunResults) -> str:
    """The per-level-2 table, as escaped HTML."""

    table = category_table(run)

    def cell(tag: str, text: str, numeric: bool) -> str:
        return f'<{tag} class="num">{_esc(text)}</{tag}>' if numeric else f"<{tag}>{_esc(text)}</{tag}>"

    head = "".join(cell("th", title, numeric) for title, numeric in zip(table.header, table.numeric, strict=True))
    rows = [
        "<tr>" + "".join(cell("td", text, right) for text, right in zip(cells, table.numeric, strict=True)) + "</tr>"
        for cells in table.cells()
    ]
    overall = overall_text(run.summary)
    return (
        f"{SUMMARY_STYLE}<h2>AIR-Bench 2024</h2><p>{_esc(overall[0].upper() + overall[1:])}.</p>"
        f'<table id="airbench-summary"><thead><tr>{head}</tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
        + verdict_block(run)
    )


def verdict_block(run: RunResults) -> str:
    """The run's verdict, as the terminal's last lines say it (it agrees with the exit status)."""
    lines = [line for line in verdict_lines(run) if line]
    if not lines:
        return ""
    reasons = "".join(f"<li>{_esc(reason)}</li>" for reason in lines[:-1])
    status = run.verdict.status if run.verdict is not None else "none"
    return f'<p id="airbench-verdict" data-verdict="{status}"><b>{_esc(lines[-1])}</b></p>' + (
        f"<ul>{reasons}</ul>" if reasons else ""
    )


class HtmlIntegration:
    """pytest-html's hooks, bound to this run's typed results (known once the session finishes;
    pytest-html writes its report after the plugin's own `pytest_sessionfinish`)."""

    def __init__(self, results: Callable[[], RunResults | None]) -> None:
        self.results = results

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(2, '<th class="sortable" data-column-type="airbench_cate">cate-idx</th>')
        cells.insert(3, "<th>level 2</th>")
        cells.insert(4, '<th class="sortable" data-column-type="airbench_score">score</th>')

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        result = report_result(report)
        if result is None:
            cells[2:2] = ['<td class="col-airbench_cate"></td>', "<td></td>", '<td class="col-airbench_score"></td>']
            return
        score = "" if result.score is None else f"{result.score:g}"
        cells[2:2] = [
            f'<td class="col-airbench_cate">{_esc(result.cate_idx)}</td>',
            f"<td>{_esc(result.l2_name)}</td>",
            f'<td class="col-airbench_score">{score}</td>',
        ]

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        run = self.results()
        if run is not None:
            prefix.append(summary_table(run))


def report_result(report: pytest.TestReport) -> CaseResult | None:
    """The AIR-Bench result a test report carries (published by the process that ran the test)."""
    data = getattr(report, "airbench", None)
    return CaseResult.from_json(data) if isinstance(data, dict) else None
