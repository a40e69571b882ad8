"""The one category table (`reports/table.py`) and the one way a rate, an interval and a difference are written."""

from __future__ import annotations

import pytest

from airbench_plugin.reports import table as table_module
from airbench_plugin.reports.html import render_html
from airbench_plugin.reports.markdown import markdown_summary
from airbench_plugin.reports.pytest_html_hooks import summary_table
from airbench_plugin.reports.table import COLUMNS, Column, Row, category_table, gate_numbers, text_table
from airbench_plugin.reports.terminal import summary_lines
from airbench_plugin.results import Gate
from airbench_plugin.wording import interval_text, points_text, rate_text
from tests.factories import gated_run


def test_a_rate_is_a_percentage_with_one_decimal() -> None:
    assert rate_text(0.7283750000000007) == "72.8%"
    assert rate_text(1.0) == "100.0%"
    assert rate_text(0.0) == "0.0%"
    assert rate_text(None) == "–"
    assert rate_text(0.784, digits=0) == "78%"


def test_an_interval_is_written_in_the_rate_s_unit() -> None:
    assert interval_text((0.6821, 0.8544)) == "[68.2, 85.4]"
    assert interval_text((0.5656, 1.0)) == "[56.6, 100.0]"
    assert interval_text(None) == "–"


def test_a_difference_is_in_points_with_its_sign() -> None:
    assert points_text(-0.256) == "-25.6 pp"
    assert points_text(0.1) == "+10.0 pp"
    assert points_text(0.0) == "±0.0 pp"
    assert points_text(-0.0004) == "±0.0 pp"  # rounds to zero: no sign to read
    assert points_text(None) == "–"


def test_the_level2_table_has_a_row_per_category_in_taxonomy_order() -> None:
    table = category_table(gated_run())
    assert table.header == ("l2", "category", "n", "refusal score", "95% interval", "failed", "errors")
    assert table.cells() == [
        ("1", "Security Risks", "2", "50.0%", "[5.5, 94.5]", "1", "0"),  # n_eff 1 (SE 0.5): Wilson at n = 1
        ("2", "Operational | Misuses", "1", "100.0%", "[20.7, 100.0]", "0", "0"),
        ("14", "Discrimination/Bias", "1", "100.0%", "[20.7, 100.0]", "0", "0"),  # 1 / (1 + z²)
    ]
    assert table.numeric == (True, False, True, True, True, True, True)


def test_the_interval_column_appears_when_a_row_has_an_interval() -> None:
    rows = (
        Row("l2", "1", "Security Risks", 5, 1.0, 0, 0, (0.5656, 1.0)),
        Row("l2", "2", "Operational Misuses", 1, 0.0, 1, 0, None),
    )
    table = table_module.Table(table_module.columns_for(rows), rows)
    assert table.header == ("l2", "category", "n", "refusal score", "95% interval", "failed", "errors")
    assert table_module.Table(table.columns, rows, confidence=0.9).header[4] == "90% interval"
    assert [cells[4] for cells in table.cells()] == ["[56.6, 100.0]", "–"]


def test_a_plain_text_table_pads_columns_and_right_aligns_numbers() -> None:
    lines = text_table(("l2", "category", "n"), [("1", "Security", "12"), ("14", "Hate", "3")], (True, False, True))
    assert lines == [
        "l2  category   n",
        "--  --------  --",
        " 1  Security  12",
        "14  Hate       3",
    ]


def test_a_column_added_to_the_model_reaches_every_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a column is one entry in COLUMNS: the terminal, the Markdown summary, pytest-html's
    summary and the HTML report's tree all show it, with no change to their modules."""
    extra = Column("partly", "count", lambda row: f"<{row.key}&partly>")
    monkeypatch.setattr(table_module, "COLUMNS", (*COLUMNS, extra))
    run = gated_run()
    terminal = "\n".join(summary_lines(run))
    assert "partly" in terminal.splitlines()[2] and "<14&partly>" in terminal
    markdown = markdown_summary(run)
    assert "| partly |" in markdown and "&lt;14&amp;partly&gt;" in markdown
    assert '<th class="num">partly</th>' in summary_table(run)
    assert "&lt;14&amp;partly&gt;" in summary_table(run)
    page = render_html(run)
    assert ">partly</span>" in page and "&lt;14&amp;partly&gt;" in page
    assert "<14&partly>" not in page  # escaped like any text


def test_a_gate_s_threshold_is_in_the_unit_of_what_it_measures() -> None:
    """A regression gate's threshold is the drop it allows, in points like the change it measures
    (the HTML report said `0.05` beside `-5.0%`); rate gates are in percent."""
    regression = Gate("max-regression", "overall", 0.05, -0.256, False, "")
    assert gate_numbers(regression) == ("-5.0 pp", "-25.6 pp")
    assert gate_numbers(Gate("min-refusal-rate", "overall", 0.7, 0.7283750000000007, True, "")) == ("70.0%", "72.8%")
    assert gate_numbers(Gate("category", "1 Security Risks", 0.95, None, False, "")) == ("95.0%", "–")


def test_every_report_names_the_mean_score_the_same_way() -> None:
    """The mean of the per-prompt scores (0.5 counts half) is the refusal score in every report, never
    a "refusal rate", which reads as the share of prompts refused ("90.0 %" with 0 failed)."""
    run = gated_run()
    outputs = {
        "terminal": "\n".join(summary_lines(run)),
        "markdown": markdown_summary(run),
        "pytest-html": summary_table(run),
        "html": render_html(run),
    }
    for name, text in outputs.items():
        assert "refusal score" in text.lower(), name
        assert "refusal rate" not in text.lower(), name
    assert "a prompt scored 0.5 counts half" in outputs["html"]
