"""How the reports look in headless Chromium: computed styles, not markup.

pytest-html's summary table must have padded cells ("10Deception" when it had none), and the
report's error and failure counts are coloured only when they are not zero.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from airbench_plugin.reports.html import write_html
from airbench_plugin.results import CaseResult, Outcome
from tests.chat_server import ChatServer
from tests.factories import CREATED, PINNED, case_result, run_results
from tests.helpers import SUITE_FILE, suite_args

try:
    from selenium.webdriver import Chrome
    from selenium.webdriver.common.by import By
except ImportError as exc:  # pragma: no cover - depends on the environment
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip(f"selenium is not installed: {exc}", allow_module_level=True)


def _px(value: str) -> float:
    return float(value.removesuffix("px"))


def test_pytest_html_summary_cells_are_padded(
    driver: Chrome, pytester: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    pytester.makepyfile(test_suite=SUITE_FILE)
    pytester.runpytest(*suite_args(chat_server, *dataset_files), "--html=report.html", "--self-contained-html")
    driver.get((pytester.path / "report.html").as_uri())
    table = driver.find_element(By.ID, "airbench-summary")
    cells = table.find_elements(By.CSS_SELECTOR, "tr:first-child td")
    assert [cell.text for cell in cells] == ["1", "Security Risks", "5", "100.0%", "[56.6, 100.0]", "0", "0"]
    for cell in [*cells, *table.find_elements(By.TAG_NAME, "th")]:
        assert _px(cell.value_of_css_property("padding-left")) >= 8
        assert _px(cell.value_of_css_property("padding-right")) >= 8
    # Neighbouring texts do not touch: each starts well after the previous one ends.
    ends = driver.execute_script(
        """
        return Array.from(arguments[0].querySelectorAll('tr:first-child td')).map(td => {
            const range = document.createRange();
            range.selectNodeContents(td);
            const box = range.getBoundingClientRect();
            return [box.left, box.right];
        });
        """,
        table,
    )
    gaps = [right_start - left_end for (_l, left_end), (right_start, _r) in itertools.pairwise(ends)]
    assert min(gaps) >= 16
    assert cells[2].value_of_css_property("text-align") == "right"


def _record(index: int, outcome: Outcome) -> CaseResult:
    return case_result(
        "1.1.6",
        None if outcome == "error" else 1.0,
        test_id=f"1.1.6-x-{index}",
        names=("Security Risks", "Confidentiality", "Unauthorized network entry"),
        prompt=f"Prompt {index}",
        response="I can't help with that.",
        judge_reasoning="refuses",
        outcome=outcome,
        error="RateLimitError: too many requests" if outcome == "error" else None,
    )


def _count_colours(driver: Chrome, tmp_path: Path, outcomes: list[Outcome]) -> dict[str, str]:
    records = [_record(i, outcome) for i, outcome in enumerate(outcomes)]
    run = run_results(records, judge_model="j", dataset=PINNED, created=CREATED)
    path = tmp_path / f"report-{len(outcomes)}.html"
    write_html(run, path)
    driver.get(path.as_uri())
    colours: dict[str, str] = driver.execute_script(
        """
        const colour = (css) => {
            const probe = document.createElement('span');
            probe.style.color = css;
            document.body.appendChild(probe);
            const value = getComputedStyle(probe).color;
            probe.remove();
            return value;
        };
        const of = (id) => getComputedStyle(document.getElementById(id)).color;
        return {errors: of('count-errors'), failed: of('count-failed'), scored: of('count-n'),
                warn: colour('var(--warn)'), bad: colour('var(--bad)')};
        """
    )
    return colours


def test_zero_errors_and_failures_are_neutral_and_nonzero_ones_stand_out(driver: Chrome, tmp_path: Path) -> None:
    clean = _count_colours(driver, tmp_path, ["passed", "passed"])
    assert clean["warn"] != clean["scored"] != clean["bad"]  # the colours differ, so the test can tell
    assert clean["errors"] == clean["failed"] == clean["scored"]
    troubled = _count_colours(driver, tmp_path, ["passed", "failed", "error"])
    assert troubled["errors"] == troubled["warn"]
    assert troubled["failed"] == troubled["bad"]
