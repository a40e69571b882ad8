"""Batch-API runs end to end: the suite against a loopback Files + Batches server, through the real SDK clients.

A batch run must score exactly as a normal run on the same answers, send nothing twice, and
leave no prompt unscored without one sentence; these runs prove it for OpenAI's and Together's shapes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin import cli
from airbench_plugin.batch.journal import Journal
from tests.batch_server import BatchPlan, BatchServer, Flavour
from tests.chat_server import (
    COMPLIANCE,
    JUDGE_MODEL,
    REFUSAL,
    TARGET_MODEL,
    ChatServer,
    Reply,
    default_handler,
    reasoning_model,
)

POLL = "--airbench-batch-poll=0.01"
BATCH_HEADER = (
    "airbench: batch mode: answers, then judgements; up to 24 h per step (a look every 0.01 s, less often while a "
    "batch is unchanged)"
)
RUN_ONLY = (
    "batch",
    "batch_poll",
    "cache",
    "no_cache",
    "json",
    "report",
)  # settings that differ between the runs by design


def mixed(request: dict[str, Any]) -> Reply | str:
    """The model complies with every second prompt, so scores differ between prompts."""
    content = request["messages"][-1]["content"]
    if request.get("model") == TARGET_MODEL:
        return Reply(COMPLIANCE if content.startswith("Prompt 1 for") else REFUSAL)
    return default_handler(request)


@pytest.fixture(params=["openai", "together"])
def batch_server(request: pytest.FixtureRequest) -> Iterator[BatchServer]:
    server = BatchServer(request.param, handler=mixed)
    try:
        yield server
    finally:
        server.close()


def args(server: ChatServer, files: tuple[Path, Path], *extra: str, judge: ChatServer | None = None) -> list[str]:
    """The suite's arguments for `server` in its provider's shape (Together's base URL has no /v1)."""
    flavour: Flavour = getattr(server, "flavour", "openai")
    judge = judge or server
    judge_flavour: Flavour = getattr(judge, "flavour", "openai")
    return [
        f"--airbench-model={TARGET_MODEL}",
        f"--airbench-provider={flavour}",
        f"--airbench-base-url={server.url if flavour == 'together' else server.v1_url}",
        f"--airbench-judge-model={JUDGE_MODEL}",
        f"--airbench-judge-provider={judge_flavour}",
        f"--airbench-judge-base-url={judge.url if judge_flavour == 'together' else judge.v1_url}",
        f"--airbench-dataset={files[0]}",
        f"--airbench-judge-prompts={files[1]}",
        "--airbench-sample=all",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:anyio",
        "--assert=plain",
        *extra,
    ]


def comparable(path: Path) -> dict[str, Any]:
    """The results without what differs by design: the time, the batch setting, the cache and output paths."""
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    del document["created"]
    document["settings"] = {k: v for k, v in document["settings"].items() if k not in RUN_ONLY}
    return document


def normal_run(suite: pytest.Pytester, server: BatchServer, files: tuple[Path, Path], *extra: str) -> dict[str, Any]:
    result = suite.runpytest(*args(server, files, "--airbench-no-cache", "--airbench-json=normal.json", *extra))
    result.assert_outcomes(passed=12, failed=6)
    return comparable(suite.path / "normal.json")


def batch_run(
    suite: pytest.Pytester, server: ChatServer, files: tuple[Path, Path], *extra: str, **kw: Any
) -> pytest.RunResult:
    return suite.runpytest(
        *args(
            server,
            files,
            "--airbench-batch",
            POLL,
            "--airbench-cache=cache",
            "--airbench-json=batch.json",
            *extra,
            **kw,
        )
    )


def test_a_batch_run_scores_exactly_as_a_normal_run_and_makes_no_ordinary_call(
    suite: pytest.Pytester, batch_server: BatchServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    normal = normal_run(suite, batch_server, dataset_files)
    ordinary = len(batch_server.requests)
    result = batch_run(suite, batch_server, dataset_files, "--airbench-report=batch.html")
    result.assert_outcomes(passed=12, failed=6)
    assert "Batch API: answers, then judgements" in (suite.path / "batch.html").read_text()
    assert len(batch_server.requests) == ordinary  # every call went in a batch
    assert len(batch_server.batches) == 2  # one per step: the answers, then the judgements
    assert len(batch_server.batch_requests) == 36
    # The same 36 bodies as the normal run's calls, byte for byte.
    assert sorted(map(json.dumps, batch_server.batch_requests)) == sorted(map(json.dumps, batch_server.requests))
    assert comparable(suite.path / "batch.json") == normal
    settings = json.loads((suite.path / "batch.json").read_text())["settings"]
    assert (settings["batch"], settings["batch_poll"]) == (True, 0.01)
    result.stdout.fnmatch_lines([BATCH_HEADER, "model * (calls sent as Batch-API batches)"])
    assert Journal(suite.path / "cache").open_records() == []
    # A rerun finds every answer in the cache: nothing is sent, in a batch or not.
    again = batch_run(suite, batch_server, dataset_files)
    again.assert_outcomes(passed=12, failed=6)
    assert (len(batch_server.batches), len(batch_server.requests)) == (2, ordinary)


def test_a_judge_that_cannot_batch_is_called_as_usual(
    suite: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    suite.makeini("[pytest]\nairbench_batch = true\nairbench_batch_poll = 0.01\n")  # the ini twins
    with BatchServer("openai", handler=mixed) as target, ChatServer(mixed) as local_judge:
        result = suite.runpytest(*args(target, dataset_files, "--airbench-cache=cache", judge=local_judge))
        result.assert_outcomes(passed=12, failed=6)
        result.stdout.fnmatch_lines([BATCH_HEADER])
        assert len(target.batches) == 1 and target.requests == []  # the answers, in a batch
        assert len(local_judge.calls(JUDGE_MODEL)) == 18  # a server without /batches: called as usual


def test_failed_lines_expired_and_invalid_batches_are_made_as_ordinary_calls(
    suite: pytest.Pytester, batch_server: BatchServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    normal = normal_run(suite, batch_server, dataset_files)
    ordinary = len(batch_server.requests)
    batch_server.inject(Reply("overloaded", status=500), times=1, prompt_contains="Prompt 0 for Network intrusion")
    batch_server.plan(BatchPlan(expire_after=15), BatchPlan(fail_validation="the judge model is not batchable"))
    result = batch_run(suite, batch_server, dataset_files)
    result.assert_outcomes(passed=12, failed=6)
    assert comparable(suite.path / "batch.json") == normal
    answers, judgements = list(batch_server.batches)
    lines = [line for line in result.outlines if line.startswith("airbench: batch mode: ") and "look every" not in line]
    assert lines == [
        f"airbench: batch mode: target batch {answers} expired; 4 of its 18 calls were made as ordinary calls.",
        f"airbench: batch mode: judge batch {judgements} failed: the judge model is not batchable; 18 of its 18 calls "
        "were made as ordinary calls.",
    ]
    assert len(batch_server.requests) - ordinary == 4 + 18


def test_a_reasoning_model_gets_its_settings_in_a_second_batch(
    suite: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    with BatchServer("openai", handler=reasoning_model(mixed)) as server:
        normal = normal_run(suite, server, dataset_files)
        ordinary = len(server.requests)
        result = batch_run(suite, server, dataset_files)
        result.assert_outcomes(passed=12, failed=6)
        assert comparable(suite.path / "batch.json") == normal
        assert len(server.requests) == ordinary  # no ordinary call: each setting was learned from a batch
        bodies = [b for b in server.batch_requests if b["model"] == TARGET_MODEL]
        assert [("max_tokens" in b, "temperature" in b) for b in bodies[::18]] == [
            (True, True),
            (False, True),
            (False, False),
        ]
        document = json.loads((suite.path / "batch.json").read_text())
        assert document["settings"]["sent_model_under_test"] == {"max_completion_tokens": 512}


def test_batch_mode_needs_the_cache(
    suite: pytest.Pytester, batch_server: BatchServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    result = suite.runpytest(*args(batch_server, dataset_files, "--airbench-batch", "--airbench-no-cache"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line.strip()] == [
        "ERROR: --airbench-batch keeps its batches and their answers in the response cache; drop --airbench-no-cache."
    ]


def test_the_batch_command_lists_and_cancels_a_caches_batches(
    suite: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with BatchServer("openai", handler=mixed) as server:
        batch_run(suite, server, dataset_files).assert_outcomes(passed=12, failed=6)
        capsys.readouterr()
        cache = str(suite.path / "cache")
        assert cli.main(["batch", "status", "--cache", cache], environ={}) == 0
        listed = capsys.readouterr().out.splitlines()
        assert len(listed) == 2
        assert (
            listed[0].startswith("batch-")
            and "target, answers: 18 calls, completed (18 done, 0 failed); collected" in listed[0]
        )
        assert cli.main(["batch", "cancel", "--cache", cache], environ={}) == 0
        assert capsys.readouterr().out == f"no running batches recorded in {cache}\n"


@pytest.mark.heavy
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_a_stopped_run_leaves_its_batches_running_and_the_next_run_resumes_them(
    suite: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str, stop: signal.Signals
) -> None:
    with BatchServer("openai", handler=mixed) as server:
        normal = normal_run(suite, server, dataset_files)
        server.plan(BatchPlan(hold=True))
        command = [
            sys.executable,
            "-m",
            "pytest",
            *args(server, dataset_files, "--airbench-batch", POLL, "--airbench-cache=cache"),
        ]
        log = (suite.path / "stopped.log").open("w")
        process = suite.popen(command, stdout=log, stderr=subprocess.STDOUT)
        journal = Journal(suite.path / "cache")
        deadline = time.monotonic() + 60
        while not any(record.batch_id for record in journal.open_records()) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the batch to exist, then the stop arrives at a known point
        process.send_signal(stop)
        process.wait(timeout=60)
        log.close()
        output = (suite.path / "stopped.log").read_text()
        (held,) = journal.open_records()
        if stop == signal.SIGINT:
            assert (
                f"airbench: batch mode: 1 batch still running at the provider ({held.batch_id}), recorded in" in output
            )
        server.release_batches()
        result = batch_run(suite, server, dataset_files)
        result.assert_outcomes(passed=12, failed=6)
        result.stdout.fnmatch_lines(["airbench: batch mode: resuming 1 batch recorded in *"])
        assert len(server.uploads) == 2  # the held answers were collected, not sent again; then the judgements
        assert comparable(suite.path / "batch.json") == normal
        assert journal.open_records() == []


@pytest.mark.heavy
def test_under_xdist_one_process_sends_the_batches_and_the_results_are_the_same(
    suite: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    with BatchServer("openai", handler=mixed) as server:
        normal = normal_run(suite, server, dataset_files)
        ordinary = len(server.requests)
        result = suite.runpytest(
            *args(
                server,
                dataset_files,
                "--airbench-batch",
                POLL,
                "--airbench-cache=cache",
                "--airbench-json=batch.json",
                "-n",
                "2",
            )
        )
        result.assert_outcomes(passed=12, failed=6)
        assert len(server.batches) == 2 and len(server.requests) == ordinary
        assert comparable(suite.path / "batch.json") == normal


def test_batch_shards_merge_exactly_into_the_single_run(
    suite: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    with BatchServer("openai", handler=mixed) as server:
        normal = normal_run(suite, server, dataset_files)
        for shard in ("1/2", "2/2"):
            name = shard.replace("/", "of")
            result = suite.runpytest(
                *args(
                    server,
                    dataset_files,
                    "--airbench-batch",
                    POLL,
                    "--airbench-cache=cache",
                    f"--airbench-shard={shard}",
                    f"--airbench-json={name}.json",
                )
            )
            assert result.ret in (0, 1)
        assert len(server.batches) == 4  # each shard job sends its own two
        assert cli.main(["merge", "1of2.json", "2of2.json", "--json", "merged.json"], environ={}) in (0, 1)
        merged = comparable(suite.path / "merged.json")
        assert merged == normal


def test_recorded_answers_are_judged_in_one_batch(suite: pytest.Pytester, api_key: str) -> None:
    from tests.factories import PIPELINE1, recorded_answers
    from tests.test_judge_only import judge_only_args, replay_judge

    replay = replay_judge(recorded_answers())
    replay.close()  # only its handler is wanted: the batch server answers with it
    with BatchServer("openai", handler=replay.handler) as server:
        normal = suite.runpytest(*judge_only_args(server, PIPELINE1, "--airbench-json=normal.json"))
        ordinary = len(server.requests)
        given = [
            arg
            for arg in judge_only_args(server, PIPELINE1, "--airbench-json=batch.json")
            if arg != "--airbench-no-cache"
        ]
        result = suite.runpytest(*given, "--airbench-batch", POLL, "--airbench-cache=cache")
        assert result.ret == normal.ret
        assert len(server.batches) == 1 and len(server.requests) == ordinary  # the judgements, in one batch
        assert comparable(suite.path / "batch.json") == comparable(suite.path / "normal.json")


def test_a_batch_holds_only_what_the_token_budget_covers(
    suite: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    with BatchServer("openai", handler=mixed) as server:
        result = batch_run(suite, server, dataset_files, "--airbench-token-budget=2000")
        answers = next(iter(server.batches.values()))
        sent = len(answers.lines)
        assert 0 < sent < 18
        result.stdout.fnmatch_lines(
            [
                f"airbench: batch mode: {18 - sent} target calls were left out of the batch: their worst case would "
                "pass --airbench-token-budget."
            ]
        )
