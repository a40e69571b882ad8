"""Words and numbers in every report: counted nouns, token counts, gate and summary lines."""

from __future__ import annotations

import dataclasses
import json

from airbench_plugin.judges.airbench import AirbenchReading
from airbench_plugin.judges.granite_guardian import GraniteGuardianReading
from airbench_plugin.reports.html import render_html
from airbench_plugin.reports.pytest_html_hooks import summary_table
from airbench_plugin.reports.terminal import overall_text, summary_lines, tokens_text
from airbench_plugin.results import (
    CaseResult,
    Comparison,
    FlippedPrompt,
    Outcome,
    RunResults,
    RunSettings,
    Tally,
    TokenCount,
)
from airbench_plugin.roles import RECORDED_PROVIDER
from airbench_plugin.wording import plural
from tests.factories import CREATED, PINNED, case_result, run_results


def test_plural() -> None:
    assert plural(1, "prompt") == "1 prompt"
    assert plural(0, "prompt") == "0 prompts"
    assert plural(5694, "prompt") == "5,694 prompts"
    assert plural(1, "category", "categories") == "1 category"
    assert plural(2, "category", "categories") == "2 categories"


def test_overall_text() -> None:
    assert overall_text(Tally(1, 1.0, 1, 0, 1)) == (
        "refusal score 100.0% over 1 scored prompt (1 passed, 0 failed, 1 error)"
    )
    assert overall_text(Tally(1234, 0.5, 617, 617, 2)) == (
        "refusal score 50.0% over 1,234 scored prompts (617 passed, 617 failed, 2 errors)"
    )
    assert overall_text(Tally(0, None, 0, 0, 3)) == "no prompt was scored (0 passed, 0 failed, 3 errors)"


def test_tokens_text_shows_what_cached_answers_cost() -> None:
    assert tokens_text(TokenCount(1234, 567)) == "1,234 prompt + 567 completion"
    assert tokens_text(TokenCount(1234, 567, 1234, 567)) == "1,234 prompt + 567 completion (all from cache)"
    assert tokens_text(TokenCount(1234, 567, 1000, 500)) == "1,234 prompt + 567 completion (1,000 + 500 from cache)"
    assert tokens_text(TokenCount()) == "0 prompt + 0 completion"


def _record(cate: str, outcome: Outcome, cached: bool) -> CaseResult:
    names = {"1": "Security Risks", "2": "Operational Misuses"}
    return case_result(
        cate,
        {"passed": 1.0, "failed": 0.0, "error": None}[outcome],
        test_id=f"{cate}-x-0",
        names=(names[cate.split(".")[0]], "L3", "L4"),
        outcome=outcome,
        error="boom" if outcome == "error" else None,
        target_tokens=(1200, 500),
        judge_tokens=(34, 67),
        target_cached=cached,
        judge_cached=cached,
    )


def _run(records: list[CaseResult], comparison: Comparison | None = None) -> RunResults:
    return run_results(
        records,
        judge_model="j",
        dataset=PINNED,
        comparison=comparison,
        created=CREATED,
    )


def test_a_fully_cached_rerun_says_what_its_answers_cost() -> None:
    lines = summary_lines(_run([_record("1.1.1", "passed", cached=True), _record("2.5.1", "error", cached=True)]))
    assert lines[0] == (
        "model m  judge j  refusal score 100.0% [20.7, 100.0] over 1 scored prompt (1 passed, 0 failed, 1 error)"
    )
    assert lines[-1] == (
        "tokens: model under test 2,400 prompt + 1,000 completion (all from cache); "
        "judge 68 prompt + 134 completion (all from cache)"
    )


def test_one_flipped_prompt_is_singular() -> None:
    comparison = Comparison("old.json", "m", 1, -1.0, {}, (FlippedPrompt("t.py::x", "1.1.1", "p"),))
    lines = summary_lines(_run([_record("1.1.1", "failed", cached=False)], comparison))
    assert "against baseline old.json: overall -100.0 pp, 1 prompt flipped from passed to failed" in lines


def test_pytest_html_summary_sentence() -> None:
    html = summary_table(_run([_record("1.1.1", "passed", cached=False), _record("2.5.1", "error", cached=False)]))
    assert "<p>Refusal score 100.0% [20.7, 100.0] over 1 scored prompt (1 passed, 0 failed, 1 error).</p>" in html


def _judged(cate: str, tokens: tuple[tuple[int, int], tuple[int, int]]) -> CaseResult:
    record = _record(cate, "passed", cached=False)
    verdicts = (
        AirbenchReading("gpt-4o", 1.0, "##the_score: 1", "refuses", tokens=tokens[0]),
        GraniteGuardianReading("granite", 1.0, "No", "No", prob_of_risk=0.0, label="No", tokens=tokens[1]),
    )
    return dataclasses.replace(record, judges=verdicts, judge_tokens=(700, 3))


def test_the_token_line_gives_each_judge_its_own_count() -> None:
    """Two judges are two bills: the line named one 'judge' and added them together."""
    records = [_judged("1.1.1", ((600, 2), (100, 1))), _judged("2.5.1", ((500, 2), (90, 1)))]
    run = dataclasses.replace(
        _run(records), settings=RunSettings(second_judge="granite-guardian", second_judge_model="granite")
    )
    expected = (
        "tokens: model under test 2,400 prompt + 1,000 completion; judge airbench 1,100 prompt + 4 completion; "
        "second judge granite-guardian 190 prompt + 2 completion"
    )
    assert summary_lines(run)[-1] == expected
    # Each verdict's tokens cross the xdist boundary and the JSON file, so merge and reports agree.
    again = RunResults.from_json(json.loads(json.dumps(run.to_json())))
    assert summary_lines(again)[-1] == expected
    assert run.to_json()["judges"]["granite-guardian"]["usage"]["prompt_tokens"] == 190


def test_a_judge_only_run_has_no_model_under_test_to_bill() -> None:
    """Answers recorded elsewhere (--airbench-responses) cost this run nothing: no '0 prompt + 0 completion'."""
    record = dataclasses.replace(_record("1.1.1", "passed", cached=False), target_tokens=(0, 0))
    run = dataclasses.replace(_run([record]), settings=RunSettings(provider=RECORDED_PROVIDER))
    assert summary_lines(run)[-1] == "tokens: judge 34 prompt + 67 completion"
    assert "model under test" not in render_html(run).split('id="run-details"')[1].split("</dl>")[0]
