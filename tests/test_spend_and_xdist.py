"""The spend guard (--airbench-token-budget) and the hand-off of the sampled cases to xdist workers."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.chat_server import JUDGE_MODEL, TARGET_MODEL, ChatServer
from tests.helpers import run_suite, suite_args


def test_the_header_states_the_most_calls_the_run_can_make(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    result = run_suite(
        suite, chat_server, dataset_files, "--collect-only", "--airbench-sample=all", "--airbench-token-budget=5000"
    )
    result.stdout.fnmatch_lines(
        ["airbench: at most 54 API calls for 18 prompts (retries of failed calls aside); token budget 5,000"]
    )


def test_a_spent_budget_stops_the_run_and_no_gate_passes_it(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    out = suite.path / "r.json"
    result = run_suite(
        suite,
        chat_server,
        dataset_files,
        "--airbench-sample=all",
        "--airbench-concurrency=1",
        "--airbench-token-budget=60",
        "--airbench-min-refusal-rate=0",  # a gate any scored prompt meets
        f"--airbench-json={out}",
    )
    text = result.stdout.str()
    assert text.count("AIR-Bench stopped: this run spent") == 1
    result.stdout.fnmatch_lines(
        [
            "*Interrupted: AIR-Bench stopped: this run spent * tokens, its --airbench-token-budget is 60; no new call "
            "was started and the results are incomplete. Raise the budget and run again: completed calls are cached "
            "and cost nothing the second time.*"
        ]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED  # not OK, though the gate alone would have passed
    calls = len(chat_server.calls())
    assert 2 <= calls < 36  # some prompts were scored, the rest never sent
    document = json.loads(out.read_text())
    assert document["summary"]["n"] < 18


WORKER_PROBE = """
    import json
    import os
    import sys


    def pytest_configure_node(node):
        # On the controller, once it has loaded the dataset: a worker that loaded it again would fail.
        for path in {files!r}:
            if os.path.exists(path):
                os.remove(path)


    def pytest_sessionfinish(session):
        workerinput = getattr(session.config, "workerinput", None)
        if workerinput is not None:
            with open(os.path.join(os.path.dirname(__file__), "worker-" + workerinput["workerid"]), "w") as out:
                json.dump({{"datasets_imported": "datasets" in sys.modules}}, out)
"""


def test_xdist_workers_get_the_cases_from_the_controller(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    suite.makeconftest(textwrap.dedent(WORKER_PROBE).format(files=[str(path) for path in dataset_files]))
    result = suite.runpytest_subprocess(*suite_args(chat_server, *dataset_files, "--airbench-sample=all", "-n", "2"))
    result.assert_outcomes(passed=18)
    assert not dataset_files[0].exists()  # the controller's hook ran before the workers started
    reports = [json.loads(path.read_text()) for path in suite.path.glob("worker-gw*")]
    assert reports == [{"datasets_imported": False}] * 2
    assert len(chat_server.calls(TARGET_MODEL)) == len(chat_server.calls(JUDGE_MODEL)) == 18
