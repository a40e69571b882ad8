"""`airbench compare`: models side by side over the prompts every run scored."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import pytest

from airbench_plugin.cli import main
from airbench_plugin.leaderboard import CompareError, compare_runs
from airbench_plugin.options import Settings
from airbench_plugin.reports.compare import render_compare
from airbench_plugin.reports.document import write_json
from airbench_plugin.results import CaseResult, RunResults
from airbench_plugin.stats import wilson_interval
from tests.factories import case_result, configured_run

# (cate-idx, l2, l3, l4) of the prompts the runs are made of.
TAXONOMY = {
    "1.1.1": ("Security Risks", "Confidentiality", "Network intrusion"),
    "1.2.9": ("Security Risks", "Integrity", "Data tampering"),
    "2.5.1": ("Operational Misuses", "Automated Decision-Making", "Financing eligibility"),
    "14.3940.21": ("Discrimination/Bias", "Protected Characteristics Combinations", "Race"),
    "16.1.1": ("Criminal Activities", "Illegal services", "Smuggling"),
}


def case(cate: str, index: int, score: float | None, response: str = "I can't help with that.") -> CaseResult:
    return case_result(
        cate,
        score,
        test_id=f"{cate}-x-{index}",
        names=TAXONOMY[cate],
        prompt=f"prompt {cate} #{index}",
        response=response,
        judge_reasoning="judged",
    )


def make_run(model: str, scores: Mapping[tuple[str, int], float | None], **texts: str) -> RunResults:
    records = [
        case(cate, index, score, texts.get(f"{cate}#{index}", "I can't help with that."))
        for (cate, index), score in scores.items()
    ]
    return configured_run(records, Settings().with_model(model))


ALPHA = {
    ("1.1.1", 0): 1.0,
    ("1.1.1", 1): 1.0,
    ("1.2.9", 0): 0.0,
    ("2.5.1", 0): 1.0,
    ("2.5.1", 1): 0.5,
    ("14.3940.21", 0): 1.0,
    ("14.3940.21", 9): 1.0,  # only alpha has it
}
BETA = {
    ("1.1.1", 0): 0.0,  # flipped: passed with alpha
    ("1.1.1", 1): 1.0,
    ("1.2.9", 0): 1.0,  # flipped the other way
    ("2.5.1", 0): 1.0,
    ("2.5.1", 1): None,  # errored: not shared
    ("14.3940.21", 0): 1.0,
    ("16.1.1", 0): 1.0,
}


def test_runs_are_compared_over_the_prompts_every_run_scored() -> None:
    comparison = compare_runs([("a.json", make_run("alpha", ALPHA)), ("b.json", make_run("beta", BETA))])
    assert comparison.shared_prompts == 5
    alpha, beta = comparison.runs
    assert (alpha.label, alpha.scored, beta.scored) == ("alpha", 7, 6)
    assert alpha.overall == pytest.approx(4 / 5)
    assert beta.overall == pytest.approx(4 / 5)
    assert [c.key for c in comparison.categories["l2"]] == ["1", "2", "14"]
    assert [c.prompts for c in comparison.categories["l2"]] == [3, 1, 1]
    assert alpha.rates["l2"] == {"1": pytest.approx(2 / 3), "2": 1.0, "14": 1.0}
    assert beta.rates["l3"]["1.2"] == 1.0
    assert beta.rates["l4"]["1.1.1"] == 0.5
    assert [c.key for c in comparison.children("1", "l3")] == ["1.1", "1.2"]
    assert comparison.flipped is not None
    assert [(f.cate_idx, f.regressed) for f in comparison.flipped] == [("1.1.1", True), ("1.2.9", False)]


def test_each_run_after_the_first_is_paired_with_it() -> None:
    gamma = {**ALPHA, ("1.1.1", 0): 0.0, ("1.1.1", 1): 0.0}
    runs = [("a.json", make_run("alpha", ALPHA)), ("b.json", make_run("beta", BETA)), ("c.json", make_run("c", gamma))]
    comparison = compare_runs(runs)
    alpha, beta, third = comparison.runs
    assert (alpha.difference, alpha.differences) == (None, {})
    # d = [-1, 0, +1, 0, 0] in clusters 1.1.1, 1.1.1, 1.2.9, 2.5.1, 14.3940.21: cluster sums -1, +1, 0, 0,
    # SE = sqrt(4/3 * 2) / 5
    assert beta.difference is not None
    assert (beta.difference.shared, beta.difference.mean) == (5, 0.0)
    assert beta.difference.stderr == pytest.approx(math.sqrt(8 / 3) / 5)
    assert not beta.significant("l2", "1") and not beta.significant("l4", "1.1.1")
    # Both prompts of 1.1.1 dropped from 1 to 0: no doubt in that cell, but not enough for level 2.
    assert third.differences["l4"]["1.1.1"].to_json() | {"correlation": None} == {
        "shared": 2,
        "mean": -1.0,
        "stderr": 0.0,
        "ci_low": -1.0,
        "ci_high": -1.0,
        "p_value": 0.0,
        "correlation": None,
        "min_detectable_drop": 0.0,
    }
    assert third.significant("l4", "1.1.1") and not third.significant("l2", "1")
    # Every cell's rate has its interval, the overall one too.
    assert alpha.overall_estimate is not None and alpha.overall_estimate.n == 5
    estimate = alpha.estimates["l4"]["1.1.1"]
    assert estimate is not None and (estimate.ci_low, estimate.ci_high) == pytest.approx(
        wilson_interval(1.0, 2, 1.959964)
    )


def test_the_same_model_twice_is_told_apart_by_file() -> None:
    comparison = compare_runs([("old.json", make_run("m", ALPHA)), ("new.json", make_run("m", ALPHA))])
    assert [run.label for run in comparison.runs] == ["m (old.json)", "m (new.json)"]
    assert comparison.flipped == ()


def test_three_runs_have_no_flips_and_one_run_is_its_own_heat_map() -> None:
    runs = [(f"{name}.json", make_run(name, ALPHA)) for name in ("a", "b", "c")]
    assert compare_runs(runs).flipped is None
    single = compare_runs(runs[:1])
    assert single.shared_prompts == 7
    assert single.flipped is None


def test_runs_without_a_shared_prompt_are_refused() -> None:
    with pytest.raises(CompareError) as info:
        compare_runs([("a", make_run("a", {("1.1.1", 0): 1.0})), ("b", make_run("b", {("1.1.1", 1): 1.0}))])
    assert str(info.value) == (
        "cannot compare: the runs share no scored prompt (same cate-idx and text); compare runs of the same dataset."
    )


def write(tmp_path: Path, name: str, run: RunResults) -> str:
    path = tmp_path / name
    write_json(run, path)
    return str(path)


def test_the_command_writes_the_page_and_the_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, "a.json", make_run("alpha", ALPHA))
    b = write(tmp_path, "b.json", make_run("beta", BETA))
    page, markdown = tmp_path / "compare.html", tmp_path / "compare.md"
    assert main(["compare", a, b, "--report", str(page), "--markdown", str(markdown)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "compared 2 runs over 5 shared prompts",
        "  alpha: refusal score 80.0% [30.9, 97.3]",
        "  beta: refusal score 80.0% [37.6, 96.4]; against alpha ±0.0 pp [-64.0, +64.0] (within noise)",
        "intervals at 95 %; each run after the first is paired with it, prompt by prompt",
    ]
    html = page.read_text(encoding="utf-8")
    assert "Compared over <b>5</b> prompts that every run scored" in html
    assert markdown.read_text(encoding="utf-8").splitlines() == [
        "### AIR-Bench 2024 comparison",
        "",
        "Refusal scores over the **5** prompts every run scored.",
        "",
        "| model | overall | 1 Security Risks | 2 Operational Misuses | 14 Discrimination/Bias |",
        "| --- | ---: | ---: | ---: | ---: |",
        "| alpha | 80.0% | 66.7% | 100.0% | 100.0% |",
        "| beta | 80.0% | 66.7% | 100.0% | 100.0% |",
        "",
        "2 shared prompts flipped: 1 passed with alpha and failed with beta, 1 the other way.",
    ]


def test_compare_refusals_are_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, "a.json", make_run("alpha", {("1.1.1", 0): 1.0}))
    b = write(tmp_path, "b.json", make_run("beta", {("1.1.1", 1): 1.0}))
    out = str(tmp_path / "c.html")
    assert main(["compare", a, b, "--report", out]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "airbench compare: cannot compare: the runs share no scored prompt (same cate-idx and text); "
        "compare runs of the same dataset."
    ]
    assert main(["compare", a]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "airbench compare: nothing to write: pass --report OUT.html, --markdown OUT.md or both."
    ]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": "x"}), encoding="utf-8")
    assert main(["compare", a, str(bad), "--report", out]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"airbench compare: {str(bad)!r} is not a usable --airbench-json file: it has no 'judge_model' field."
    ]


def test_the_page_escapes_and_admits_no_script() -> None:
    hostile = "<script>alert(1)</script>"
    comparison = compare_runs(
        [("a.json", make_run(hostile, ALPHA, **{"1.1.1#0": hostile})), ("b.json", make_run("beta", BETA))]
    )
    html = render_compare(comparison)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "script-src 'none'" in html
