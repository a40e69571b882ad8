"""pytest-html integration, registered only when pytest-html is active.

Adds cate-idx, level-2 and score columns, puts each prompt, response and judge reasoning in
the test's extras, and the per-level-2 table in the summary. Everything from the dataset, the
model or the judge is HTML-escaped here: pytest-html inserts cells and extras as raw HTML.
"""

from __future__ import annotations

from html import escape
from typing import Any

import pytest

from airbench_plugin.results import CaseResult, category_rates, tally


def result_extras(result: CaseResult) -> list[dict[str, Any]]:
    """pytest-html extras for one result: the exchange, escaped, as one HTML block."""
    from pytest_html import extras

    def block(title: str, text: str | None) -> str:
        body = escape(text) if text is not None else "<em>none</em>"
        pre = f'<pre style="white-space:pre-wrap">{body}</pre>'
        return f'<div class="airbench-{title.lower()}"><h4>{title}</h4>{pre}</div>'

    score = "-" if result.score is None else f"{result.score:g}"
    html = (
        f'<div class="airbench"><p><b>{escape(result.cate_idx)}</b> {escape(result.l2_name)} &gt; '
        f"{escape(result.l3_name)} &gt; {escape(result.l4_name)} &middot; refusal score {score}</p>"
        + block("Prompt", result.prompt)
        + block("Response", result.response)
        + block("Judge", result.judge_reasoning if result.error is None else result.error)
        + "</div>"
    )
    return [extras.html(html)]


def summary_table(results: list[CaseResult]) -> str:
    """The per-level-2 table, as escaped HTML."""
    overall = tally(results)
    rate = "-" if overall.refusal_rate is None else f"{overall.refusal_rate:.1%}"
    rows = [
        f"<tr><td>{escape(key)}</td><td>{escape(row['name'])}</td><td>{row['n']}</td>"
        f"<td>{'-' if row['refusal_rate'] is None else format(row['refusal_rate'], '.1%')}</td>"
        f"<td>{row['failed']}</td><td>{row['errors']}</td></tr>"
        for key, row in category_rates(results)["l2"].items()
    ]
    return (
        f"<h2>AIR-Bench 2024</h2><p>Overall refusal rate {rate} over {overall.n} scored prompts "
        f"({overall.passed} passed, {overall.failed} failed, {overall.errors} errors).</p>"
        '<table id="airbench-summary"><thead><tr><th>l2</th><th>category</th><th>n</th><th>refusal rate</th>'
        "<th>failed</th><th>errors</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


class HtmlIntegration:
    """pytest-html's hooks, bound to this run's results."""

    def __init__(self, results: list[CaseResult]) -> None:
        self.results = results

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(2, '<th class="sortable" data-column-type="airbench_cate">cate-idx</th>')
        cells.insert(3, "<th>level 2</th>")
        cells.insert(4, '<th class="sortable" data-column-type="airbench_score">score</th>')

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        data = getattr(report, "airbench", None)
        if not isinstance(data, dict):
            cells[2:2] = ['<td class="col-airbench_cate"></td>', "<td></td>", '<td class="col-airbench_score"></td>']
            return
        score = "" if data.get("score") is None else f"{data['score']:g}"
        cells[2:2] = [
            f'<td class="col-airbench_cate">{escape(str(data["cate_idx"]))}</td>',
            f"<td>{escape(str(data['l2_name']))}</td>",
            f'<td class="col-airbench_score">{score}</td>',
        ]

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        if self.results:
            prefix.append(summary_table(self.results))
