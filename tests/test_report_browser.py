"""Browser test of the HTML report: headless Chromium via selenium, opened from file://."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.reports.html import write_html
from airbench_plugin.results import CaseResult, RunResults, categories, tally
from tests.chat_server import TARGET_MODEL, ChatServer, Reply
from tests.factories import record_entry
from tests.helpers import SUITE_FILE, displayed, suite_args

ON_CI = os.environ.get("CI", "").lower() == "true"

try:
    from selenium.webdriver import Chrome
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
except ImportError as exc:  # pragma: no cover - depends on the environment
    if ON_CI:
        raise
    pytest.skip(f"selenium is not installed: {exc}", allow_module_level=True)

TITLE = "AIR-Bench report · evil-model-7b"

# Payloads that set document.title = 'pwned' and window.__xss = 1 if they ever execute.
P_SCRIPT = "<script>document.title='pwned';window.__xss=1</script>"
P_IMG = "<img src=x onerror=\"document.title='pwned';window.__xss=1\">"
P_SVG = '"><svg onload="document.title=\'pwned\';window.__xss=1">'
P_TEXTAREA = "</textarea><script>window.__xss=1</script><textarea>"
P_BREAKOUT = "</script><script>document.title='pwned';window.__xss=1</script>"
PAYLOADS = (P_SCRIPT, P_IMG, P_SVG, P_TEXTAREA, P_BREAKOUT)

NAMES = {
    "1": ("Security Risks", "Confidentiality", "Unauthorized network entry"),
    "2": ("Operational Misuses", "Automated decision-making", "Financing eligibility"),
    "14": ("Hate/Toxicity", "Hate speech", "Race"),
}


def _result(cate: str, outcome: str, index: int, **texts: str) -> dict[str, Any]:
    l2, l3, l4 = NAMES[cate.split(".")[0]]
    return record_entry(
        cate,
        {"passed": 1.0, "failed": 0.0, "error": None}[outcome],
        file="tests_airbench/test_airbench.py",
        test_id=f"{cate}-x-{index}",
        names=(l2, l3, l4),
        prompt=texts.get("prompt", f"Prompt {cate} number {index}"),
        response=texts.get("response", "I can't help with that. " * 20),
        judge_reasoning=texts.get("reasoning", "The model declined the request."),
        judge_raw="##short_reasoning: ...\n##the_score: 1",
        outcome=outcome,
        error="RateLimitError: too many requests" if outcome == "error" else None,
    )


def make_document() -> dict[str, Any]:
    results = [
        _result("1.1.6", "failed", 0, prompt=P_SCRIPT, response=P_IMG, reasoning=P_SVG),
        _result("1.1.6", "passed", 1, response=P_TEXTAREA),
        _result("1.1.6", "error", 2, prompt=P_BREAKOUT),
        _result("1.1.6", "passed", 3),
        _result("2.5.1", "failed", 0, response=P_SVG, reasoning=P_SCRIPT),
        _result("2.5.1", "failed", 1, reasoning=P_IMG),
        _result("2.5.1", "passed", 2),
        _result("14.3940.21", "passed", 0),
        _result("14.3940.21", "failed", 1, response=P_BREAKOUT),
        _result("14.3940.21", "passed", 2, prompt=P_TEXTAREA),
    ]
    records = [CaseResult.from_json(r) for r in results]
    return {
        "plugin_version": "0.1.0",
        "created": "2026-11-22T21:40:00+00:00",
        "model": "evil-model-7b",
        "judge_model": "gpt-4o-2024-05-13",
        "dataset": {
            "source": "hf:stanford-crfm/air-bench-2024",
            "revision": "976d9fbb0f52bce704dcbef5bd7a2652e65f2a21",
            "region": "default",
        },
        "settings": {"sample": 5, "sample_by": "l2", "seed": 0, "categories": []},
        "summary": tally(records).to_json(),
        "categories": {
            level: {k: row.to_json() for k, row in rows.items()} for level, rows in categories(records).items()
        },
        "gates": [
            {
                "name": "min-refusal-rate",
                "target": "overall",
                "threshold": 0.9,
                "measured": 0.62,
                "passed": False,
                "detail": P_IMG,
            }
        ],
        "gate_verdict": "failed",
        "baseline": {
            "source": "old.json",
            "model": P_SVG,
            "overall_delta": -0.1,
            "l2": {"1": {"name": "Security Risks", "baseline": 0.8, "current": 0.6, "delta": -0.2}},
            "flipped": [{"nodeid": "x", "cate_idx": "1.1.6", "prompt": P_SCRIPT}],
        },
        "usage": {},
        "results": results,
    }


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_html(RunResults.from_json(make_document()), path)
    return path


@pytest.fixture(scope="module")
def page(driver: Chrome, report_path: Path) -> Chrome:
    driver.get(report_path.as_uri())
    # give failed image loads / onload handlers a chance to run if anything was injected
    driver.execute_async_script("var done = arguments[0]; setTimeout(done, 300);")
    return driver


def _not_pwned(driver: Chrome) -> None:
    assert driver.title == TITLE
    assert driver.execute_script("return typeof window.__xss") == "undefined"


def _expand_everything(driver: Chrome) -> None:
    driver.execute_script("document.querySelectorAll('details').forEach(function (d) { d.open = true; });")


def _case_visibility(driver: Chrome) -> list[tuple[str, str, bool]]:
    """(outcome, cate, displayed) of every .case, using selenium's own visibility check."""
    _expand_everything(driver)
    return [
        (outcome or "", cate or "", shown)
        for outcome, cate, shown in displayed(driver, ".case", "data-outcome", "data-cate")
    ]


def _set_category(driver: Chrome, text: str) -> None:
    box = driver.find_element(By.ID, "filter-category")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE)
    if text:
        box.send_keys(text)


# --------------------------------------------------------------------------- tests


def test_title_and_no_script_injection(page: Chrome) -> None:
    _not_pwned(page)
    counts = page.execute_script(
        "return [document.scripts.length, document.images.length,"
        " document.querySelectorAll('textarea').length, document.querySelectorAll('svg').length]"
    )
    assert counts == [1, 0, 0, 1]


def test_own_script_runs_and_nothing_is_blocked(page: Chrome) -> None:
    """The CSP hash admits the report's own script: the filter counter is live."""
    select = Select(page.find_element(By.ID, "filter-outcome"))
    select.select_by_value("error")
    assert page.find_element(By.ID, "filter-count").text == "1 of 10 prompts match"
    select.select_by_value("all")
    assert page.find_element(By.ID, "filter-count").text == "10 prompts"
    log: list[dict[str, Any]] = page.get_log("browser")  # type: ignore[no-untyped-call]  # untyped in selenium
    violations = [
        entry["message"]
        for entry in log
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]
    assert violations == []


def test_chart_has_one_bar_per_level2(page: Chrome) -> None:
    chart = page.find_element(By.ID, "l2-chart")
    assert chart.is_displayed()
    assert chart.size["width"] > 300
    bars = chart.find_elements(By.CSS_SELECTOR, ".bar")
    assert [bar.get_attribute("data-l2") for bar in bars] == ["1", "2", "14"]
    assert all(bar.is_displayed() for bar in bars)
    widths = [float(bar.get_attribute("width") or 0) for bar in bars]
    # refusal rates: 1 -> 2/3 (the error is not scored), 2 -> 1/3, 14 -> 2/3
    assert widths[1] < widths[0] == widths[2]
    assert widths[0] == pytest.approx(2 * widths[1], abs=0.2)


def test_filter_by_outcome(page: Chrome) -> None:
    _set_category(page, "")
    Select(page.find_element(By.ID, "filter-outcome")).select_by_value("failed")
    rows = _case_visibility(page)
    assert len(rows) == 10
    assert {(outcome, shown) for outcome, _, shown in rows} == {
        ("failed", True),
        ("passed", False),
        ("error", False),
    }
    hidden = page.execute_script(
        "return Array.from(document.querySelectorAll('.case')).map(function (el) {"
        " return [el.dataset.outcome, getComputedStyle(el).display === 'none']; });"
    )
    assert all(is_hidden == (outcome != "failed") for outcome, is_hidden in hidden)
    Select(page.find_element(By.ID, "filter-outcome")).select_by_value("all")
    assert all(shown for _, _, shown in _case_visibility(page))
    _not_pwned(page)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("1", {"1.1.6"}),  # a cate-idx prefix: 1 must not match 14
        ("14", {"14.3940.21"}),
        ("2.5", {"2.5.1"}),
        ("HATE", {"14.3940.21"}),  # a level-2 name substring, case-insensitive
        ("misuse", {"2.5.1"}),
    ],
)
def test_filter_by_category(page: Chrome, query: str, expected: set[str]) -> None:
    Select(page.find_element(By.ID, "filter-outcome")).select_by_value("all")
    _set_category(page, query)
    rows = _case_visibility(page)
    assert {cate for _, cate, shown in rows if shown} == expected
    assert all(shown == (cate in expected) for _, cate, shown in rows)
    visible = {key for key, shown in displayed(page, "details.grp.l2", "data-key") if shown}
    assert visible == {cate.split(".")[0] for cate in expected}
    _set_category(page, "")
    assert all(shown for _, _, shown in _case_visibility(page))


def test_filters_combine(page: Chrome) -> None:
    Select(page.find_element(By.ID, "filter-outcome")).select_by_value("failed")
    _set_category(page, "1.1")
    rows = _case_visibility(page)
    assert [(o, c) for o, c, shown in rows if shown] == [("failed", "1.1.6")]
    assert page.find_element(By.ID, "filter-count").text == "1 of 10 prompts match"
    Select(page.find_element(By.ID, "filter-outcome")).select_by_value("all")
    _set_category(page, "")


def test_chart_bar_click_filters_category(page: Chrome) -> None:
    page.find_element(By.CSS_SELECTOR, '#l2-chart .crow[data-l2="14"]').click()
    assert page.find_element(By.ID, "filter-category").get_attribute("value") == "14"
    rows = _case_visibility(page)
    assert {cate for _, cate, shown in rows if shown} == {"14.3940.21"}
    _set_category(page, "")


def test_hostile_text_is_shown_literally(page: Chrome, tmp_path: Path) -> None:
    _expand_everything(page)
    results_text = page.find_element(By.ID, "results").text
    for payload in PAYLOADS:
        assert payload in results_text, payload
    first = page.find_element(By.CSS_SELECTOR, '.case[data-cate="1.1.6"]')
    assert first.get_attribute("data-outcome") == "failed"
    assert P_SCRIPT in first.find_element(By.CSS_SELECTOR, "summary .prompt").text
    texts = [el.text for el in first.find_elements(By.CSS_SELECTOR, ".tx")]
    assert texts == [P_IMG, P_SVG]
    assert P_SCRIPT in page.find_element(By.ID, "flipped").text
    assert P_IMG in page.find_element(By.ID, "gates-table").text
    _not_pwned(page)
    page.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "report.png"
    assert page.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


# --------------------------------------------------------------------------- pytest-html's report


def test_pytest_html_report_shows_hostile_answers_as_text(
    driver: Chrome, pytester: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    """Our columns and extras in pytest-html's own report, rendered by its JavaScript, run nothing."""
    pytester.makepyfile(test_suite=SUITE_FILE)
    with ChatServer() as server:
        server.inject(Reply(P_IMG + P_SCRIPT), times=3, model=TARGET_MODEL, prompt_contains="for Race")
        pytester.runpytest(
            *suite_args(server, *dataset_files),
            "--airbench-categories=14",
            "--html=pytest-html.html",
            "--self-contained-html",
        )
    driver.get((pytester.path / "pytest-html.html").as_uri())
    driver.execute_async_script("var done = arguments[0]; setTimeout(done, 500);")
    assert driver.execute_script("return typeof window.__xss") == "undefined"
    assert driver.title != "pwned"
    text = driver.execute_script("return document.body.textContent")
    assert "<script>document.title='pwned';window.__xss=1</script>" in text
    assert "cate-idx" in text
    assert driver.find_element(By.ID, "airbench-summary").is_displayed()


def test_every_level2_bar_carries_its_error_bar_and_the_tree_its_interval(page: Chrome, report_path: Path) -> None:
    """The chart draws each level-2 interval as an error bar around the bar's end; the tree shows the
    interval as a column and a whisker inside each meter; the hostile names stay text."""
    page.get(report_path.as_uri())
    _not_pwned(page)
    chart = page.find_element(By.ID, "l2-chart")
    boxes = page.execute_script(
        """
        return Array.from(arguments[0].querySelectorAll('.crow')).map(row => {
            const bar = row.querySelector('.bar').getBBox();
            const err = row.querySelector('.err');
            if (!err) { return null; }
            const box = err.getBBox();
            return [bar.x + bar.width, box.x, box.x + box.width, box.width];
        });
        """,
        chart,
    )
    assert len(boxes) == 3 and all(box is not None for box in boxes)
    for end, low, high, width in boxes:
        assert width > 0  # a visible bar: 3 to 6 prompts leave wide intervals
        assert low - 0.5 <= end <= high + 0.5  # the interval holds the estimate
    _expand_everything(page)
    whiskers = page.find_elements(By.CSS_SELECTOR, "#tree .l2 > summary .mb .ci")
    assert len(whiskers) == 3 and all(w.size["width"] > 0 for w in whiskers)
    heads = [span.text for span in page.find_elements(By.CSS_SELECTOR, "#tree .thead > span")]
    assert "95% interval" in heads
