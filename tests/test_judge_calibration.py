"""`--airbench-judge-calibration FILE`: a run judged by a calibrated judge states the calibration and a
bias-adjusted refusal rate in every report, and a calibration of another judge is refused in one
sentence before any call."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.calibration.stated import (
    ADJUSTED_LABEL,
    CalibrationFileError,
    JudgeCalibration,
    bias_adjusted,
    check_calibration,
    load_judge_calibration,
    template_revision,
)
from airbench_plugin.dataset import load_templates
from airbench_plugin.reports.markdown import escape
from tests.chat_server import COMPLIANCE, JUDGE_MODEL, ChatServer, Reply
from tests.factories import case_result, configured_run, write_document
from tests.helpers import assert_usage_error, run_suite

Z95 = 1.959963984540054


def document(revision: str, **changes: Any) -> dict[str, Any]:
    """An `airbench calibrate --json` document, as far as a run reads it."""
    candidate = {"judge": "airbench", "model": JUDGE_MODEL, "scale": "refusal", "template_revision": revision}
    candidate.update(changes.pop("candidate", {}))
    data: dict[str, Any] = {
        "schema": "airbench-calibration/1",
        "created": "2026-12-03T12:00:00+00:00",
        "candidate": candidate,
        "reference_judge": "gpt-4o-2024-05-13",
        "items": 90,
        "pass_agreement": {"rate": 0.9, "ci_low": 0.82, "ci_high": 0.95},
        "bias": {"mean": 0.05, "ci_low": 0.01, "ci_high": 0.09, "sd": 0.19, "stderr": 0.02},
    }
    data.update(changes)
    return data


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_bias_adjusted_rate_is_the_observed_mean_minus_the_bias_with_both_errors(tmp_path: Path) -> None:
    calibration = load_judge_calibration(str(write(tmp_path / "c.json", document("sha256:x"))))
    scores = [1.0, 1.0, 0.0, 0.5, 1.0, 0.0, 1.0, 1.0]
    adjusted = bias_adjusted(calibration, scores, [f"1.1.{i}" for i in range(len(scores))])  # one prompt per cluster
    assert adjusted is not None
    mean = statistics.fmean(scores)
    observed_se = statistics.stdev(scores) / math.sqrt(len(scores))
    se = math.sqrt(observed_se**2 + 0.02**2)
    assert adjusted.observed == pytest.approx(mean)
    assert adjusted.observed_stderr == pytest.approx(observed_se)
    assert adjusted.mean == pytest.approx(mean - 0.05)
    assert adjusted.stderr == pytest.approx(se)
    assert (adjusted.ci_low, adjusted.ci_high) == pytest.approx((mean - 0.05 - Z95 * se, mean - 0.05 + Z95 * se))
    assert adjusted.to_json()["label"] == ADJUSTED_LABEL
    assert bias_adjusted(calibration, [], []) is None


def test_the_bias_adjusted_rate_stays_a_rate(tmp_path: Path) -> None:
    calibration = load_judge_calibration(str(write(tmp_path / "c.json", document("sha256:x", bias={
        "mean": -0.1, "ci_low": -0.3, "ci_high": 0.1, "sd": 0.9, "stderr": 0.1}))))  # fmt: skip
    adjusted = bias_adjusted(calibration, [1.0] * 10, [f"1.1.{i}" for i in range(10)])
    assert adjusted is not None and (adjusted.mean, adjusted.ci_high) == (1.0, 1.0) and adjusted.ci_low < 1.0


def test_a_calibration_of_another_judge_is_refused_in_one_sentence(tmp_path: Path) -> None:
    path = str(write(tmp_path / "c.json", document("sha256:aaaa")))
    calibration = load_judge_calibration(path)
    check_calibration(calibration, "airbench", JUDGE_MODEL, "refusal", "sha256:aaaa")
    cases = [
        (
            ("airbench", "gpt-5", "harm", "sha256:bbbb"),
            f"--airbench-judge-calibration: {path!r} was made for another judge than this run's (judge model "
            f"{JUDGE_MODEL}, not gpt-5; refusal scale, not harm; templates sha256:aaaa, not sha256:bbbb); calibrate "
            "this judge with airbench calibrate --judge-model gpt-5 and the run's --judge-prompts, or drop the option.",
        ),
        (
            ("granite-guardian", JUDGE_MODEL, "refusal", "sha256:aaaa"),
            f"--airbench-judge-calibration: {path!r} calibrates an airbench judge, and this run's judge is "
            "granite-guardian; drop the option.",
        ),
    ]
    for arguments, message in cases:
        with pytest.raises(CalibrationFileError) as raised:
            check_calibration(calibration, *arguments)
        assert str(raised.value) == message


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("{", "invalid JSON at line 1"),
        (
            json.dumps({"schema": 2}),
            'it has no "schema": "airbench-calibration/1" (write it with airbench calibrate --json)',
        ),
        (json.dumps(document("r", items=1)), "items is a whole number outside 2 to 1,000,000,000,000,000"),
        (
            json.dumps(document("r", bias={"mean": 0.1, "ci_low": None, "ci_high": None, "stderr": None})),
            "bias.stderr is null (fewer than two items were measured)",
        ),
    ],
)
def test_a_file_that_is_no_calibration_is_one_sentence(tmp_path: Path, content: str, detail: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CalibrationFileError) as raised:
        load_judge_calibration(str(path))
    assert str(raised.value) == (
        f"--airbench-judge-calibration: {str(path)!r} is not a calibration written by airbench calibrate --json "
        f"({detail})."
    )


def test_the_summary_round_trips_through_a_runs_document(tmp_path: Path) -> None:
    calibration = load_judge_calibration(str(write(tmp_path / "c.json", document("sha256:x"))))
    assert JudgeCalibration.from_json(calibration.to_json()) == calibration


def test_a_run_with_a_calibration_of_another_scale_stops_before_any_call(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path]
) -> None:
    revision = template_revision(load_templates(str(dataset_files[1])))
    path = write(suite.path / "c.json", document(revision, candidate={"scale": "harm"}))
    result = run_suite(suite, chat_server, dataset_files, f"--airbench-judge-calibration={path}")
    assert_usage_error(
        result,
        f"--airbench-judge-calibration: {str(path)!r} was made for another judge than this run's (harm scale, not "
        f"refusal); calibrate this judge with airbench calibrate --judge-model {JUDGE_MODEL} and the run's "
        "--judge-prompts, or drop the option.",
    )
    assert chat_server.calls() == []


def clustered_stderr(scores: list[float], clusters: list[str]) -> float:
    """The standard error of the mean clustered by level-4 category, written out (Miller 2024, eq. 4)."""
    n, mean = len(scores), statistics.fmean(scores)
    sums: dict[str, float] = {}
    for score, cluster in zip(scores, clusters, strict=True):
        sums[cluster] = sums.get(cluster, 0.0) + score - mean
    c = len(sums)
    return math.sqrt(c / (c - 1) * sum(total**2 for total in sums.values())) / n


def test_a_calibrated_run_states_its_calibration_and_the_bias_adjusted_rate(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path]
) -> None:
    revision = template_revision(load_templates(str(dataset_files[1])))
    path = write(suite.path / "c.json", document(revision))
    chat_server.inject(Reply(COMPLIANCE), times=5, prompt_contains="Prompt 1 ")  # the judge scores these 0
    out = suite.path / "run.json"
    result = run_suite(
        suite,
        chat_server,
        dataset_files,
        f"--airbench-judge-calibration={path}",
        f"--airbench-json={out}",
        f"--airbench-markdown={suite.path / 'summary.md'}",
        f"--airbench-report={suite.path / 'report.html'}",
    )
    stated = (
        f"judge {JUDGE_MODEL} calibrated against gpt-4o-2024-05-13 on 90 answers: pass agreement 90.0% "
        "[82.0, 95.0], bias +5.0 pp [+1.0, +9.0]"
    )
    result.stdout.fnmatch_lines([f"airbench: {stated} ({path})"])
    run = json.loads(out.read_text(encoding="utf-8"))
    scored = [r for r in run["results"] if r["outcome"] != "error"]
    scores, clusters = [r["score"] for r in scored], [r["cate_idx"] for r in scored]
    assert 0.0 in scores and 1.0 in scores
    mean, observed_se = statistics.fmean(scores), clustered_stderr(scores, clusters)
    se = math.sqrt(observed_se**2 + 0.02**2)
    calibration = run["judge_calibration"]
    assert calibration["source"] == str(path) and calibration["judge_model"] == JUDGE_MODEL
    adjusted = calibration.pop("bias_adjusted")
    assert adjusted == pytest.approx(
        {
            "label": ADJUSTED_LABEL,
            "observed": mean,
            "observed_stderr": observed_se,
            "mean": mean - 0.05,
            "stderr": se,
            "ci_low": mean - 0.05 - Z95 * se,
            "ci_high": mean - 0.05 + Z95 * se,
            "confidence": 0.95,
        },
        abs=5e-7,  # the document presents its figures to 6 decimals
    )
    # The gates and the summary keep the observed rate.
    assert run["summary"]["refusal_rate"] == pytest.approx(mean)
    markdown = (suite.path / "summary.md").read_text(encoding="utf-8")
    line = next(line for line in markdown.splitlines() if line.startswith("Judge "))
    low, high = mean - 0.05 - Z95 * se, mean - 0.05 + Z95 * se
    assert line == escape(
        f"Judge{stated[5:]}; bias-adjusted refusal score (estimate: observed minus the calibrated judge bias) "
        f"{mean - 0.05:.1%} [{low * 100:.1f}, {high * 100:.1f}]."
    )
    report = (suite.path / "report.html").read_text(encoding="utf-8")
    assert f'<span class="card-value" id="bias-adjusted-rate">{(mean - 0.05) * 100:.1f}%</span>' in report
    assert f'<p class="sub" id="judge-calibration">{stated}; ' in report.replace("&#43;", "+")


def test_merge_keeps_the_shards_calibration_and_refuses_shards_of_different_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses

    from airbench_plugin.cli import main
    from airbench_plugin.options import parse_values
    from airbench_plugin.shards import Shard

    base = parse_values({"model": "m", "judge_model": JUDGE_MODEL, "sample": "all", "no_cache": True})
    calibration = load_judge_calibration(str(write(tmp_path / "c.json", document("sha256:x"))))
    records = [
        case_result(test_id=f"1.1.1-x-{i}", names=("S", "C", "N"), prompt=f"p{i}", response="No.", judge_reasoning="r")
        for i in range(4)
    ]

    def shard(name: str, index: int, stated: JudgeCalibration) -> str:
        run = configured_run(records[index - 1 :: 2], base.replace(shard=Shard(index, 2)))
        return write_document(dataclasses.replace(run, judge_calibration=stated), tmp_path / name)

    moved = dataclasses.replace(calibration, source="/elsewhere/c.json")  # the same file, another machine's path
    one, two = shard("1.json", 1, calibration), shard("2.json", 2, moved)
    assert main(["merge", one, two, "--json", str(tmp_path / "m.json"), "--no-step-summary"]) == 0
    merged = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))["judge_calibration"]
    assert merged["bias"] == calibration.to_json()["bias"] and merged["bias_adjusted"]["mean"] == pytest.approx(0.95)
    capsys.readouterr()
    other = shard("3.json", 2, dataclasses.replace(calibration, items=40))
    assert main(["merge", one, other, "--json", str(tmp_path / "m.json")]) == 2
    assert capsys.readouterr().err == (
        f"airbench merge: cannot merge {one!r} and {other!r}: they were run with different judge calibrations; "
        "merge only the shards of one run.\n"
    )
