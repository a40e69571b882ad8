"""`airbench export`: a run in the authors' formats, read back by `--airbench-responses` with the same scores."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.cli import main
from airbench_plugin.export import pipeline1, pipeline2
from airbench_plugin.responses import read_responses
from airbench_plugin.results import RunResults, load_results
from tests.chat_server import COMPLIANCE, JUDGE_MODEL, REFUSAL, TARGET_MODEL, ChatServer, Reply, default_handler
from tests.helpers import DATA, suite_args

AIRBENCH = DATA / "responses" / "airbench_run.json"


def scores(path: Path) -> dict[str, float | None]:
    return {r.prompt: r.score for r in load_results(path).records}


def varied_handler(request: dict[str, Any]) -> Reply:
    """The model complies with every third prompt, answers two with markup, and refuses the rest."""
    content = request["messages"][-1]["content"]
    if request.get("model") == TARGET_MODEL:
        if content.startswith("Prompt 2 for"):
            return Reply(COMPLIANCE)
        if "Race" in content:
            return Reply('She said "no", then: <b>|a|b|</b>,\nline two')
        return Reply(REFUSAL)
    return default_handler(request)


@pytest.fixture
def varied_server() -> Iterator[ChatServer]:
    with ChatServer(varied_handler) as server:
        yield server


@pytest.mark.parametrize("fmt", ["pipeline1", "pipeline2"])
def test_export_then_responses_gives_the_same_scores(
    suite: pytest.Pytester,
    varied_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    fmt: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = suite.path / "run.json"
    suite.runpytest(*suite_args(varied_server, *dataset_files, "--airbench-sample=all", f"--airbench-json={run}"))
    exported = suite.path / f"answers.{fmt}"
    capsys.readouterr()
    assert main(["export", str(run), "--to", fmt, "-o", str(exported)]) == 0
    assert capsys.readouterr().out == f"wrote 18 prompts of {TARGET_MODEL} to {exported} ({fmt}, refusal scale)\n"
    varied_server.requests.clear()
    rejudged = suite.path / "rejudged.json"
    suite.runpytest(
        f"--airbench-responses={exported}",
        f"--airbench-judge-model={JUDGE_MODEL}",
        f"--airbench-judge-base-url={varied_server.v1_url}",
        f"--airbench-judge-prompts={dataset_files[1]}",
        f"--airbench-json={rejudged}",
        "--airbench-no-cache",
        "-p",
        "no:cacheprovider",
    )
    assert len(varied_server.calls(JUDGE_MODEL)) == len(varied_server.calls()) == 18  # only the judge
    assert scores(rejudged) == scores(run)
    assert (
        sorted(score or 0.0 for score in scores(run).values()) == [0.0] * 8 + [1.0] * 10
    )  # 6 complied, 2 marked-up answers


def test_the_exported_scores_are_on_the_refusal_scale() -> None:
    run = load_results(AIRBENCH)
    entries = json.loads(pipeline1(run))
    assert [(e["cate_idx"], e["score"]) for e in entries] == [(r.cate_idx, r.score) for r in run.records]
    assert entries[0]["prompt"] == [{"prompt": run.records[0].prompt}]
    assert entries[0]["reason"] == run.records[0].judge_reasoning
    assert entries[0]["score"] == 1.0  # a refusal
    rows = list(csv.DictReader(pipeline2(run).splitlines(keepends=True)))
    assert list(rows[0]) == [
        "cate-idx",
        "l2-name",
        "l3-name",
        "l4-name",
        "prompt",
        "response",
        "score_reason",
        "score",
    ]
    assert [(row["cate-idx"], float(row["score"])) for row in rows] == [(r.cate_idx, r.score) for r in run.records]
    assert [row["response"] for row in rows] == [r.response for r in run.records]


def test_errored_prompts_are_exported_without_a_score(tmp_path: Path) -> None:
    document = json.loads(AIRBENCH.read_text(encoding="utf-8"))
    document["results"][0].update(outcome="error", score=None, error="the judge failed")
    run = RunResults.from_json(document)
    entries = json.loads(pipeline1(run))
    assert (entries[0]["score"], entries[0]["reason"]) == (None, None)
    assert entries[0]["response"] == run.records[0].response
    path = tmp_path / "p2.csv"
    path.write_text(pipeline2(run), encoding="utf-8")
    with path.open(newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert (row["score_reason"], row["score"]) == ("", "")
    # The answers are still there, so the prompt can be judged again.
    assert read_responses(path).answer(run.records[0].prompt) == run.records[0].response


def test_export_refusals_are_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "none.json")
    assert main(["export", missing, "--to", "pipeline1", "-o", str(tmp_path / "x.json")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"airbench export: {missing!r} is not a usable --airbench-json file: "
        "it cannot be read (No such file or directory)."
    ]
    with pytest.raises(SystemExit) as info:
        main(["export", str(AIRBENCH), "--to", "pipeline3", "-o", "x"])
    assert info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("airbench export: error: argument --to: invalid choice: 'pipeline3' (choose from")
    blocked = tmp_path / "file"
    blocked.write_text("", encoding="utf-8")
    assert main(["export", str(AIRBENCH), "--to", "pipeline2", "-o", str(blocked / "x.csv")]) == 2
    assert capsys.readouterr().err.splitlines()[0].startswith(f"airbench export: -o: could not write {blocked}/x.csv:")


@pytest.mark.parametrize("fmt", ["pipeline1", "pipeline2"])
def test_the_exported_files_are_recognised_by_content(tmp_path: Path, fmt: str) -> None:
    run = load_results(AIRBENCH)
    path = tmp_path / "export.out"
    assert main(["export", str(AIRBENCH), "--to", fmt, "-o", str(path)]) == 0
    recorded = read_responses(path)
    assert recorded.format == fmt
    assert {c.prompt: recorded.answer(c.prompt) for c in recorded.cases} == {r.prompt: r.response for r in run.records}
