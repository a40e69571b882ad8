"""The spend guard (--airbench-token-budget). The hand-off of the sampled cases to xdist workers: test_xdist.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chat_server import ChatServer
from tests.helpers import run_suite


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
        "--airbench-token-budget=1500",  # each call reserves its prompt and max tokens first
        "--airbench-min-refusal-rate=0",  # a gate any scored prompt meets
        f"--airbench-json={out}",
    )
    text = result.stdout.str()
    assert text.count("AIR-Bench stopped: this run spent") == 1
    result.stdout.fnmatch_lines(
        [
            "*Interrupted: AIR-Bench stopped: this run spent * tokens, its --airbench-token-budget is 1,500; no new "
            "call was started and the results are incomplete. Raise the budget and run again: completed calls are "
            "cached and cost nothing the second time.*"
        ]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED  # not OK, though the gate alone would have passed
    calls = len(chat_server.calls())
    assert 2 <= calls < 36  # some prompts were scored, the rest never sent
    document = json.loads(out.read_text())
    assert document["summary"]["n"] < 18
