"""Browser test of the comparison page: headless Chromium via selenium, opened from file://.

The same checks as the run report's: a hostile model name and a hostile answer render as text and
never run, the Content-Security-Policy reports no violation, and the page works without a script.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.cli import main
from airbench_plugin.options import Settings
from airbench_plugin.results import CaseResult
from tests.factories import case_result, configured_run, write_document

ON_CI = os.environ.get("CI", "").lower() == "true"

try:
    from selenium.webdriver import Chrome
    from selenium.webdriver.common.by import By
except ImportError as exc:  # pragma: no cover - depends on the environment
    if ON_CI:
        raise
    pytest.skip(f"selenium is not installed: {exc}", allow_module_level=True)

# Payloads that set document.title = 'pwned' and window.__xss = 1 if they ever execute.
EVIL_MODEL = "<img src=x onerror=\"document.title='pwned';window.__xss=1\">evil-7b"
EVIL_ANSWER = "</textarea></td></tr></table><script>document.title='pwned';window.__xss=1</script>"
EVIL_PROMPT = '"><svg onload="document.title=\'pwned\';window.__xss=1">'

CATEGORIES = {
    "1.1.1": ("Security Risks", "Confidentiality", "Network intrusion"),
    "1.2.9": ("Security Risks", "Integrity", "Data tampering"),
    "2.5.1": ("Operational Misuses", "Automated Decision-Making", "Financing eligibility"),
    "14.3940.21": ("Discrimination/Bias", "Protected Characteristics Combinations", EVIL_PROMPT),
}


def record(cate: str, index: int, score: float, response: str = "I can't help with that.") -> CaseResult:
    prompt = EVIL_PROMPT if index == 0 else f"prompt {cate} {index}"
    return case_result(
        cate,
        score,
        test_id=f"{cate}-x-{index}",
        names=CATEGORIES[cate],
        prompt=prompt,
        response=response,
        judge_reasoning=EVIL_ANSWER,
    )


@pytest.fixture(scope="module")
def page_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("compare")
    evil = [record(cate, i, 1.0) for cate in CATEGORIES for i in range(2)]
    evil[0] = record("1.1.1", 0, 0.0, EVIL_ANSWER)  # fails where the other model passes
    good = [record(cate, i, 1.0) for cate in CATEGORIES for i in range(2)] + [record("2.5.1", 7, 0.0)]
    write_document(configured_run(evil, Settings().with_model(EVIL_MODEL)), folder / "evil.json")
    write_document(configured_run(good, Settings().with_model("good-model")), folder / "good.json")
    out = folder / "compare.html"
    assert main(["compare", str(folder / "good.json"), str(folder / "evil.json"), "--report", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def page(driver: Chrome, page_path: Path) -> Chrome:
    driver.get(page_path.as_uri())
    # give failed image loads / onload handlers a chance to run if anything was injected
    driver.execute_async_script("var done = arguments[0]; setTimeout(done, 300);")
    return driver


def test_nothing_from_the_runs_executes(page: Chrome) -> None:
    assert page.title == f"AIR-Bench comparison · good-model vs {EVIL_MODEL}"
    assert page.execute_script("return typeof window.__xss") == "undefined"
    counts = page.execute_script(
        "return [document.scripts.length, document.images.length, document.querySelectorAll('svg').length]"
    )
    assert counts == [0, 0, 0]
    log: list[dict[str, Any]] = page.get_log("browser")  # type: ignore[no-untyped-call]  # untyped in selenium
    assert [e["message"] for e in log if "Content Security Policy" in e["message"] or "Refused" in e["message"]] == []


def test_the_page_says_over_how_many_shared_prompts(page: Chrome) -> None:
    shared = page.find_element(By.ID, "shared").text
    assert shared == (
        f"Compared over 8 prompts that every run scored (same cate-idx and text): good-model scored 9, "
        f"{EVIL_MODEL} scored 8."
    )
    rows = page.find_elements(By.CSS_SELECTOR, "#overall tbody tr")
    assert [row.find_element(By.CSS_SELECTOR, "td").text for row in rows] == ["good-model", EVIL_MODEL]
    assert [row.find_element(By.CSS_SELECTOR, "b").text for row in rows] == ["100.0%", "87.5%"]


def test_the_heat_map_is_models_by_level2_and_expands_to_levels_3_and_4(page: Chrome) -> None:
    heat = page.find_element(By.CSS_SELECTOR, "#heatmap > table.heat")
    columns = heat.find_elements(By.CSS_SELECTOR, "thead th[scope=col] .k")
    assert [c.text for c in columns] == ["1", "2", "14"]
    rows = heat.find_elements(By.CSS_SELECTOR, "tbody tr")
    cells = [[td.text for td in row.find_elements(By.CSS_SELECTOR, "td")] for row in rows]
    assert cells == [["100%", "100%", "100%"], ["75%", "100%", "100%"]]
    security = page.find_element(By.CSS_SELECTOR, "details.l2[data-l2='1']")
    nested = security.find_elements(By.CSS_SELECTOR, "table.heat")
    assert len(nested) == 2 and not any(table.is_displayed() for table in nested)
    security.find_element(By.TAG_NAME, "summary").click()
    assert all(table.is_displayed() for table in nested)
    level3 = [c.text for c in nested[0].find_elements(By.CSS_SELECTOR, "thead th[scope=col] .k")]
    level4 = [c.text for c in nested[1].find_elements(By.CSS_SELECTOR, "thead th[scope=col] .k")]
    assert (level3, level4) == (["1.1", "1.2"], ["1.1.1", "1.2.9"])
    evil_row = nested[1].find_elements(By.CSS_SELECTOR, "tbody tr")[1]
    assert [td.text for td in evil_row.find_elements(By.CSS_SELECTOR, "td")] == ["50%", "100%"]


def test_the_flipped_prompt_is_listed_with_its_answers_as_text(page: Chrome) -> None:
    flips = page.find_elements(By.CSS_SELECTOR, "#flipped tr.flip")
    assert len(flips) == 1
    cells = flips[0].find_elements(By.TAG_NAME, "td")
    assert cells[1].text == EVIL_PROMPT
    assert cells[2].text.startswith("passed · score 1")
    assert cells[3].text.startswith("failed · score 0")
    page.execute_script("document.querySelectorAll('#flipped details').forEach(function (d) { d.open = true; });")
    assert EVIL_ANSWER in cells[3].text
    assert page.execute_script("return typeof window.__xss") == "undefined"
