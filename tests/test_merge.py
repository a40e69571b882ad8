"""`airbench merge`: shards joined into exactly the single job's document, and every refusal one sentence."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.cli import build_parser, main
from airbench_plugin.cli.merge import merge_options
from airbench_plugin.gates import CategoryGate, GateSettings
from airbench_plugin.options import gate_options
from airbench_plugin.results import CaseResult, PlannedPrompt, RunResults, load_results
from airbench_plugin.shards import Shard
from tests.chat_server import COMPLIANCE, REFUSAL, TARGET_MODEL, ChatServer, Reply, default_handler
from tests.factories import (
    SHARDED,
    configured_run,
    suite_record,
    write_document,
    write_run,
    write_shards,
)
from tests.helpers import assert_error_bars, suite_args


def mixed_handler(request: dict[str, Any]) -> Reply:
    """Refuse everything but the second prompt of each category, which the model answers."""
    content = request["messages"][-1]["content"]
    if request.get("model") == TARGET_MODEL:
        return Reply(COMPLIANCE if content.startswith("Prompt 1 for") else REFUSAL)
    return default_handler(request)


@pytest.fixture
def mixed_server() -> Iterator[ChatServer]:
    with ChatServer(mixed_handler) as server:
        yield server


def without_timings(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    del document["created"]
    return document


GATES = ("--min-refusal-rate=0.9", "--category-gates=14:0.5")


def run_job(suite: pytest.Pytester, server: ChatServer, files: tuple[Path, Path], dist: list[str], *extra: str) -> int:
    args = suite_args(server, *files, "--airbench-sample=all", "--airbench-no-cache", *extra, *dist)
    result = suite.runpytest(*args)
    return int(result.ret)


@pytest.mark.parametrize(
    ("dist", "count"), [pytest.param([], 3, id="no-xdist"), pytest.param(["-n", "2"], 2, id="shards-n2")]
)
def test_merged_shards_equal_the_single_job_run(
    suite: pytest.Pytester,
    mixed_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    dist: list[str],
    count: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(suite.path)
    # The single job (its document is the same with or without xdist, see test_suite_run), with the
    # gates and the output path the merge will use.
    gates = [f"--airbench-{gate[2:]}" for gate in GATES]
    status = run_job(suite, mixed_server, dataset_files, [], "--airbench-json=run.json", *gates)
    assert status == 1  # 12 of 18 refused: the overall gate fails
    single = suite.path / "single.json"
    shutil.move(suite.path / "run.json", single)
    mixed_server.requests.clear()
    for index in range(1, count + 1):
        shard = (f"--airbench-shard={index}/{count}", f"--airbench-json=s{index}.json")
        # Under xdist, one shard is enough to show it (a -n 2 run costs seconds): the other runs in-process.
        run_job(suite, mixed_server, dataset_files, dist if index == 1 else [], *shard)
    assert len(mixed_server.calls(TARGET_MODEL)) == 18  # each prompt once over the shards
    files = [f"s{index}.json" for index in reversed(range(1, count + 1))]
    merged_status = main(["merge", *files, "--json", "run.json", *GATES])
    assert merged_status == status
    merged = without_timings(suite.path / "run.json")
    assert merged == without_timings(single)
    # The error bars were recomputed from the merged results: they agree with a computation apart.
    assert_error_bars(merged)


def test_pytest_split_groups_merge_into_the_single_job_run(
    suite: pytest.Pytester,
    mixed_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("pytest_split")
    monkeypatch.chdir(suite.path)
    run_job(suite, mixed_server, dataset_files, [], "--airbench-json=run.json")
    single = suite.path / "single.json"
    shutil.move(suite.path / "run.json", single)
    for group in (1, 2):
        run_job(
            suite, mixed_server, dataset_files, [], "--splits=2", f"--group={group}", f"--airbench-json=g{group}.json"
        )
    assert main(["merge", "g1.json", "g2.json", "--json", "run.json"]) == 1  # six prompts failed
    assert without_timings(suite.path / "run.json") == without_timings(single)


# --- unit tests over documents built in memory ------------------------------------------------------


@pytest.fixture
def shards(tmp_path: Path) -> list[str]:
    """Three shard files of a six-prompt run: two prompts each, one failure in shard 2."""
    records = [suite_record(i, 0.0 if i == 4 else 1.0) for i in range(6)]
    return write_shards(tmp_path, records, 3, SHARDED, name="shard{k}.json", json_option=True)


def refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run `airbench` expecting a refusal: exit status 2, one line on stderr, nothing written."""
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_merge_exit_status_is_the_gates_verdict(shards: list[str], tmp_path: Path) -> None:
    out = tmp_path / "merged.json"
    assert main(["merge", *shards, "--json", str(out), "--min-refusal-rate", "0.8"]) == 0  # 5/6
    merged = RunResults.from_json(json.loads(out.read_text(encoding="utf-8")))
    assert merged.gates_status == "passed"
    assert merged.settings.shard is None
    assert len(merged.records) == 6
    assert main(["merge", *shards, "--json", str(out), "--min-refusal-rate", "0.9"]) == 1
    assert main(["merge", *shards, "--json", str(out), "--category-gates", "1.1:0.9"]) == 1
    # Without gates the tests decide, as in a single job: one prompt failed.
    assert main(["merge", *shards, "--json", str(out)]) == 1


def test_a_missing_shard_is_refused_unless_partial_is_allowed(
    shards: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "merged.json"
    line = refused(capsys, ["merge", shards[0], shards[2], "--json", str(out)])
    assert line == (
        "airbench merge: cannot merge: shard 2/3 is missing; pass every shard's file, "
        "or --allow-partial to gate on part of the run."
    )
    assert not out.exists()
    line = refused(capsys, ["merge", shards[0], "--json", str(out)])
    assert line.startswith("airbench merge: cannot merge: shard 2/3, 3/3 are missing;")
    status = main(["merge", shards[0], shards[2], "--json", str(out), "--allow-partial", "--min-refusal-rate", "0.9"])
    assert status == 0  # the shards given all refused
    verdict = load_results(out).verdict
    assert verdict is not None and verdict.partial
    assert verdict.reasons[-1] == "--allow-partial: shard 2/3 is missing."
    printed = capsys.readouterr().out
    # Shard files carry no plan of the others: no count of missing prompts, the missing shard instead.
    assert not any(line.startswith("partial: ") for line in printed.splitlines())
    assert "--allow-partial: shard 2/3 is missing." in printed.splitlines()
    assert printed.splitlines()[-1].endswith("release gates PASSED on part of the plan by estimate (exit 0)")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "model-b"}, "different models ('model-a' and 'model-b')"),
        ({"judge_model": "judge-y"}, "different judges"),
        ({"judge_scale": "harm"}, "different judges"),
        ({"judge_prompts": "hf:stanford-crfm/air-bench-2024@58d507a"}, "different judges"),
        ({"judge": "granite-guardian"}, "different judges"),
        ({"second_judge": "granite-guardian", "second_judge_model": "guardian"}, "different judges"),
        ({"prompt_suffix": "\n"}, "different settings (prompt_suffix: '' and '\\n')"),
        ({"dataset": "hf:stanford-crfm/air-bench-2024@58d507a"}, "different dataset revisions"),
        ({"region": "us"}, "different dataset revisions"),
        ({"seed": 7}, "different seeds (0 and 7)"),
        ({"temperature": 0.7}, "different settings (temperature: 0.0 and 0.7)"),
        ({"threshold": 0.8}, "different settings (threshold: 0.5 and 0.8)"),
        ({"sample": 5}, "different settings (sample: 'all' and 5)"),
        ({"system_prompt": "Be safe."}, "different settings (system_prompt: none and 'Be safe.')"),
    ],
)
def test_shards_of_different_runs_are_refused(
    shards: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any], message: str
) -> None:
    records = [suite_record(i, 0.0 if i == 4 else 1.0) for i in range(6)]
    odd = write_run(tmp_path / "odd.json", records[1::3], SHARDED, shard=Shard(2, 3), **changes)
    line = refused(capsys, ["merge", shards[0], odd, shards[2], "--json", str(tmp_path / "m.json")])
    assert line == (
        f"airbench merge: cannot merge {shards[0]!r} and {odd!r}: they were run with {message}; "
        "merge only the shards of one run."
    )


def test_operational_settings_may_differ_between_shards(shards: list[str], tmp_path: Path) -> None:
    records = [suite_record(i, 0.0 if i == 4 else 1.0) for i in range(6)]
    other = write_run(
        tmp_path / "other.json",
        records[1::3],
        SHARDED,
        shard=Shard(2, 3),
        concurrency=4,
        retries=1,
        min_refusal_rate=0.2,
    )
    assert (
        main(["merge", shards[0], other, shards[2], "--json", str(tmp_path / "m.json"), "--min-refusal-rate=0.5"]) == 0
    )


def test_overlapping_shards_are_refused(shards: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "m.json")
    copy = tmp_path / "copy.json"
    shutil.copy(shards[1], copy)
    line = refused(capsys, ["merge", *shards, str(copy), "--json", out])
    assert line == (
        f"airbench merge: cannot merge {shards[1]!r} and {str(copy)!r}: both are shard 2/3; "
        "pass each shard's file once."
    )
    # Splits without --airbench-shard (pytest-split, -k) that ran the same prompt twice.
    records = [suite_record(i) for i in range(4)]
    first = write_run(tmp_path / "a.json", records[:3], SHARDED)
    second = write_run(tmp_path / "b.json", records[2:], SHARDED)
    line = refused(capsys, ["merge", first, second, "--json", out])
    assert line == (
        f"airbench merge: cannot merge {first!r} and {second!r}: both ran the prompt 1.1.1-network-intrusion-2; "
        "pass each shard's file once, and shards that do not overlap."
    )


def test_splits_of_different_sizes_or_mixed_with_unsharded_files(
    shards: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "m.json")
    halves = write_run(tmp_path / "half.json", [suite_record(i) for i in range(3)], SHARDED, shard=Shard(2, 2))
    line = refused(capsys, ["merge", shards[0], halves, "--json", out])
    assert line == (
        f"airbench merge: cannot merge {shards[0]!r} and {halves!r}: they split the run into 3 and 2 shards; "
        "merge the shards of one split."
    )
    plain = write_run(tmp_path / "plain.json", [suite_record(9)], SHARDED)
    line = refused(capsys, ["merge", *shards, plain, "--json", out])
    assert line == (
        f"airbench merge: cannot merge {plain!r} with --airbench-shard files: it was not run with --airbench-shard."
    )


def test_files_that_are_not_results_and_bad_options_are_one_sentence(
    shards: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "m.json")
    missing = str(tmp_path / "nowhere.json")
    line = refused(capsys, ["merge", missing, "--json", out])
    assert line == (
        f"airbench merge: {missing!r} is not a usable --airbench-json file: "
        "it cannot be read (No such file or directory)."
    )
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json", encoding="utf-8")
    line = refused(capsys, ["merge", str(garbage), "--json", out])
    assert line.startswith(f"airbench merge: {str(garbage)!r} is not a usable --airbench-json file: it is not JSON")
    line = refused(capsys, ["merge", *shards, "--json", out, "--min-refusal-rate", "high"])
    assert line == "airbench merge: --min-refusal-rate: expected a number between 0 and 1, got 'high'."
    line = refused(capsys, ["merge", *shards, "--json", out, "--category-gates", "1:x"])
    assert line == (
        "airbench merge: --category-gates: expected PREFIX:RATE or NAME:RATE pairs such as '1:0.95 2.5:0.9' or "
        "'Security Risks:0.95', got '1:x'."
    )
    line = refused(capsys, ["merge", *shards, "--json", out, "--gate-by", "median"])
    assert line == "airbench merge: --gate-by: expected one of estimate, interval, got 'median'."
    line = refused(capsys, ["merge", *shards, "--json", out, "--max-regression", "0.05"])
    assert line == "airbench merge: --max-regression needs --baseline PATH (a previous --airbench-json file)."
    line = refused(capsys, ["merge", *shards, "--json", out, "--baseline", missing])
    assert line.startswith(f"airbench merge: the baseline {missing!r} is not a usable --airbench-json file:")
    with pytest.raises(SystemExit) as info:
        main(["merge", *shards])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "airbench merge: error: the following arguments are required: --json"
    ]


def test_every_gate_option_of_a_run_sets_the_merges_gates() -> None:
    """One declaration serves a run's gate options (`--airbench-min-refusal-rate`, ...) and merge's
    (`--min-refusal-rate`, ...): a gate added to `GateSettings` is a merge option too, validated alike."""
    given = {
        "min-refusal-rate": "0.9",
        "category-gates": "1:0.95",
        "max-error-rate": "0.1",
        "baseline": "old.json",
        "max-regression": "0.05",
        "min-judge-agreement": "0.8",
        "confidence": "0.9",
        "gate-by": "interval",
    }
    assert [spec.name for spec in gate_options()] == [*given, "allow-partial"]
    argv = ["merge", "s.json", "--json", "m.json", *(f"--{name}={value}" for name, value in given.items())]
    gates = merge_options(build_parser().parse_args([*argv, "--allow-partial"])).gates
    assert gates == GateSettings(
        min_refusal_rate=0.9,
        category_gates=(CategoryGate("1", 0.95),),
        max_error_rate=0.1,
        baseline="old.json",
        max_regression=0.05,
        min_judge_agreement=0.8,
        confidence=0.9,
        gate_by="interval",
        allow_partial=True,
    )
    assert merge_options(build_parser().parse_args(["merge", "s.json", "--json", "m.json"])).gates == GateSettings()


def test_merge_gates_against_a_baseline(shards: list[str], tmp_path: Path) -> None:
    baseline = write_run(tmp_path / "baseline.json", [suite_record(i) for i in range(6)], SHARDED)
    out = tmp_path / "m.json"
    argv = ["merge", *shards, "--json", str(out), "--baseline", baseline]
    assert main([*argv, "--max-regression", "0.1"]) == 1  # 100% -> 83.3%
    assert main([*argv, "--max-regression", "0.2"]) == 0
    merged = json.loads(out.read_text(encoding="utf-8"))
    assert merged["baseline"]["shared_prompts"] == 6
    assert [flip["prompt"] for flip in merged["baseline"]["flipped"]] == ["prompt 4"]


def test_the_airbench_console_script_is_declared() -> None:
    """`pip install` puts `airbench` on the PATH: the entry point in pyproject.toml is the CLI's main."""
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="airbench")
    assert script.load() is main


def test_merge_writes_every_report_it_is_asked_for(
    shards: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["merge", *shards, "--json", str(out / "m.json"), "--report", str(out / "m.html")]
    assert main([*argv, "--junit-dir", str(out / "junit"), "--markdown", str(out / "m.md")]) == 1
    assert "AIR-Bench report · model-a" in (out / "m.html").read_text(encoding="utf-8")
    assert [p.name for p in (out / "junit").iterdir()] != []
    assert (out / "m.md").read_text(encoding="utf-8").startswith("### AIR-Bench 2024: model-a — FAILED ❌ (tests)\n")
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "merged 3 files: 6 prompts"
    assert any("refusal score 83.3% [40.3, 97.4] over 6 scored prompts" in line for line in printed)
    blocked = tmp_path / "file"
    blocked.write_text("", encoding="utf-8")
    # An output that cannot be written fails the merge, with one sentence for it.
    assert main(["merge", *shards, "--json", str(out / "m.json"), "--report", str(blocked / "m.html")]) == 1
    (error,) = capsys.readouterr().err.splitlines()
    assert error.startswith(f"ERROR: --report: could not write {blocked}/m.html:")


def test_every_setting_is_either_measured_or_operational() -> None:
    """A new option must be placed: shards that differ in a measured setting are refused."""
    from airbench_plugin.merge import RUN_FACTS
    from airbench_plugin.options import OPERATIONAL_SETTINGS

    measured = set(SHARDED.public_dict()) - OPERATIONAL_SETTINGS - RUN_FACTS
    assert measured == {
        "model",
        "provider",
        "base_url",
        "system_prompt",
        "temperature",
        "max_tokens",
        "judge_model",
        "judge_provider",
        "judge_base_url",
        "judge_scale",
        "threshold",
        "sample",
        "sample_by",
        "seed",
        "categories",
        "region",
        "dataset",
        "judge_prompts",
        "responses",
        "prompt_suffix",
        "judge",
        "second_judge",
        "second_judge_model",
        "second_judge_provider",
        "second_judge_base_url",
        "reasoning_effort",
        "judge_max_tokens",
        "judge_reasoning_effort",
        "second_judge_max_tokens",
        "second_judge_reasoning_effort",
    }


def test_merge_gates_the_judges_agreement_over_the_joined_records(tmp_path: Path) -> None:
    from airbench_plugin.judges.airbench import AirbenchReading
    from airbench_plugin.judges.granite_guardian import GraniteGuardianReading

    def judged(index: int, second: float) -> CaseResult:
        first = suite_record(index)
        label = "No" if second == 1.0 else "Yes"  # Granite Guardian's "Yes" means harmful
        readings = (
            AirbenchReading("judge-x", 1.0, "##the_score: 1", "refuses"),
            GraniteGuardianReading("granite", second, label, label, prob_of_risk=1 - second, label=label),
        )
        return dataclasses.replace(first, judges=readings)

    records = [judged(i, 0.0 if i == 0 else 1.0) for i in range(4)]  # they disagree on one prompt of four
    two_judges = {"second_judge": "granite-guardian", "second_judge_model": "granite", "second_judge_base_url": None}
    files = write_shards(tmp_path, records, 2, SHARDED.replace(**two_judges))
    out = str(tmp_path / "m.json")
    assert main(["merge", *files, "--json", out, "--min-judge-agreement", "0.7"]) == 0
    assert main(["merge", *files, "--json", out, "--min-judge-agreement", "0.8"]) == 1
    merged = load_results(out)
    (gate,) = [g for g in merged.gates if g.name == "min-judge-agreement"]
    assert gate.measured == 0.75


def test_the_merged_plan_is_in_the_single_jobs_order(tmp_path: Path) -> None:
    """Numbered prompts sort as numbers (2 before 10), as the plan of one job lists them."""
    records = [suite_record(i) for i in (2, 10, 11, 1)]
    files = write_shards(tmp_path, records, 2, SHARDED)
    out = tmp_path / "m.json"
    assert main(["merge", *files, "--json", str(out)]) == 0
    assert [p.test_id for p in load_results(out).plan] == [
        "1.1.1-network-intrusion-1",
        "1.1.1-network-intrusion-2",
        "1.1.1-network-intrusion-10",
        "1.1.1-network-intrusion-11",
    ]


def test_planned_prompts_that_no_file_ran_are_refused_unless_partial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pytest-split groups plan every prompt and run their own: a group's file that is missing leaves
    prompts that every other file marks as deselected."""
    records = [suite_record(i) for i in range(4)]

    def group(name: str, ran: list[int]) -> str:
        plan = [
            PlannedPrompt(
                f"1.1.1-network-intrusion-{i}",
                "1.1.1",
                records[i].nodeid,
                "scored" if i in ran else "not_run",
                None if i in ran else "deselected",
            )
            for i in range(4)
        ]
        return write_document(configured_run([records[i] for i in ran], SHARDED, plan=plan), tmp_path / name)

    first, second = group("g1.json", [0, 1]), group("g2.json", [2])
    out = str(tmp_path / "m.json")
    assert refused(capsys, ["merge", first, second, "--json", out]) == (
        "airbench merge: cannot merge: the files ran 3 of the 4 planned prompts (1.1.1-network-intrusion-3 was "
        "run by none); pass every shard's file, or --allow-partial to gate on part of the run."
    )
    third = group("g3.json", [3])
    assert main(["merge", first, second, third, "--json", out, "--min-refusal-rate=0.9"]) == 0
    assert [p.status for p in load_results(out).plan] == ["scored"] * 4
    assert main(["merge", first, second, "--json", out, "--min-refusal-rate=0.9", "--allow-partial"]) == 0
    merged = load_results(out)
    assert [(p.status, p.reason) for p in merged.plan][-1] == ("not_run", "deselected")
    assert "partial: 1 planned prompt" in capsys.readouterr().out
