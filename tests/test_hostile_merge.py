"""`airbench merge` verifies every shard against its own plan before it merges, and local datasets
and judge templates are told apart by their content, on merge and against a baseline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.cli import main
from airbench_plugin.dataset import content_revision
from airbench_plugin.shards import Shard
from tests.chat_server import ChatServer
from tests.factories import SHARDED, suite_record, write_run, write_shards
from tests.helpers import assert_usage_error, suite_args
from tests.test_merge import refused

NODE = "tests_airbench/test_airbench.py::test_airbench[1.1.1-network-intrusion-{}]"
ADVICE = "merge the unedited --airbench-json files of the shards."


@pytest.fixture
def shards(tmp_path: Path) -> list[str]:
    """Two shard files of a four-prompt run; prompt 3 (in shard 2) failed."""
    records = [suite_record(i, 0.0 if i == 3 else 1.0) for i in range(4)]
    return write_shards(tmp_path, records, 2, SHARDED, name="shard{k}.json", json_option=True)


def edit(path: str, change: Any) -> None:
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    change(document)
    Path(path).write_text(json.dumps(document), encoding="utf-8")


def merge(shards: list[str], tmp_path: Path) -> list[str]:
    return ["merge", *shards, "--json", str(tmp_path / "merged.json")]


def test_the_honest_shards_merge_and_fail_as_their_tests_did(shards: list[str], tmp_path: Path) -> None:
    assert main(merge(shards, tmp_path)) == 1


def test_a_record_repeated_40_times_is_refused(
    shards: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(shards[0], lambda d: d["results"].extend([d["results"][0]] * 40))
    assert refused(capsys, merge(shards, tmp_path)) == (
        f"airbench merge: cannot merge: {shards[0]!r} does not hold what its run wrote: result 2 "
        f"({NODE.format(0)}) appears more than once; {ADVICE}"
    )


def test_a_record_outside_the_plan_is_refused(
    shards: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def add(document: dict[str, Any]) -> None:
        extra = dict(document["results"][0], nodeid=NODE.format(99), prompt="prompt 99")
        document["results"].append(extra)

    edit(shards[0], add)
    assert refused(capsys, merge(shards, tmp_path)) == (
        f"airbench merge: cannot merge: {shards[0]!r} does not hold what its run wrote: result 3 "
        f"({NODE.format(99)}) is not a prompt its plan ran; {ADVICE}"
    )


def test_a_deleted_failing_record_is_refused(
    shards: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(shards[1], lambda d: d["results"].pop())  # prompt 3, the failure
    assert refused(capsys, merge(shards, tmp_path)) == (
        f"airbench merge: cannot merge: {shards[1]!r} does not hold what its run wrote: its plan ran "
        f"{NODE.format(3)} but it holds no result for it; {ADVICE}"
    )


@pytest.mark.parametrize(
    ("outcome", "score", "said"),
    [
        ("passed", 0.0, "is 'passed' with score 0 and threshold 0.5, not 'failed'"),
        ("failed", 1.0, "is 'failed' with score 1 and threshold 0.5, not 'passed'"),
        ("passed", None, "is 'passed' with no score and threshold 0.5, not 'error'"),
        ("error", 0.0, "is 'error' with score 0 and threshold 0.5, not 'failed'"),
    ],
)
def test_an_outcome_its_score_does_not_give_is_refused(
    shards: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    outcome: str,
    score: float | None,
    said: str,
) -> None:
    edit(shards[1], lambda d: d["results"][1].update(outcome=outcome, score=score))
    assert refused(capsys, merge(shards, tmp_path)) == (
        f"airbench merge: cannot merge: {shards[1]!r} does not hold what its run wrote: result 2 "
        f"({NODE.format(3)}) {said}; {ADVICE}"
    )


def test_two_contents_of_one_local_dataset_are_two_benchmarks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = tmp_path / "prompts.csv"
    records = [suite_record(i) for i in range(4)]
    paths = []
    for k, content in ((1, "cate-idx,prompt\n1.1.1,a\n"), (2, "cate-idx,prompt\n1.1.1,b\n")):
        dataset.write_text(content, encoding="utf-8")
        changes = {"shard": Shard(k, 2), "dataset": str(dataset), "judge_prompts": str(dataset)}
        paths.append(write_run(tmp_path / f"s{k}.json", records[k - 1 :: 2], SHARDED, **changes))
    first = json.loads(Path(paths[0]).read_text(encoding="utf-8"))
    assert first["dataset"]["revision"].startswith("sha256:")
    assert first["settings"]["judge_prompts_revision"] == first["dataset"]["revision"]
    assert refused(capsys, merge(paths, tmp_path)) == (
        f"airbench merge: cannot merge {paths[0]!r} and {paths[1]!r}: they were run with different dataset "
        "revisions; merge only the shards of one run."
    )


def test_judge_templates_of_another_content_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    templates = tmp_path / "judge.csv"
    records = [suite_record(i) for i in range(4)]
    paths = []
    for k in (1, 2):
        templates.write_text(f"cate-idx,judge_prompt\n1.1.1,version {k}\n", encoding="utf-8")
        paths.append(
            write_run(
                tmp_path / f"s{k}.json", records[k - 1 :: 2], SHARDED, shard=Shard(k, 2), judge_prompts=str(templates)
            )
        )
    assert refused(capsys, merge(paths, tmp_path)) == (
        f"airbench merge: cannot merge {paths[0]!r} and {paths[1]!r}: they were run with different judge "
        "templates; merge only the shards of one run."
    )


def test_a_baseline_judged_with_other_templates_is_refused(
    suite: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    prompts, templates = dataset_files
    baseline = suite.path / "baseline.json"
    write_run(baseline, [suite_record(0)], SHARDED, judge_prompts=str(templates))
    recorded = content_revision(templates)
    with templates.open("a", encoding="utf-8") as handle:
        handle.write('9.9.9,"a template added since"\n')
    with ChatServer() as server:
        result = suite.runpytest(*suite_args(server, prompts, templates, f"--airbench-baseline={baseline}"))
        assert server.calls() == []
    assert_usage_error(
        result,
        f"--airbench-baseline: {str(baseline)!r} was judged with other judge templates ({recorded}; this run's "
        f"{str(templates)!r} is {content_revision(templates)}); compare runs judged with the same templates.",
    )
