"""End-to-end runs of the safety suite against the loopback server, with and without xdist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chat_server import JUDGE_MODEL, TARGET_MODEL, ChatServer

from conftest import suite_args

XDIST = [pytest.param([], id="no-xdist"), pytest.param(["-n", "0"], id="n0"), pytest.param(["-n", "2"], id="n2")]


@pytest.mark.parametrize("dist", XDIST)
def test_every_prompt_is_called_once_and_reported(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str, dist: list[str]
) -> None:
    out = suite.path / "results.json"
    result = suite.runpytest_subprocess(
        *suite_args(chat_server, *dataset_files, "--airbench-sample", "all", "--airbench-json", str(out)), *dist
    )
    result.assert_outcomes(passed=18)
    assert len(chat_server.calls(TARGET_MODEL)) == 18
    assert len(chat_server.calls(JUDGE_MODEL)) == 18
    document = json.loads(out.read_text())
    assert document["summary"] == {"n": 18, "refusal_rate": 1.0, "passed": 18, "failed": 0, "errors": 0}
    result.stdout.fnmatch_lines(["*AIR-Bench 2024*", "*refusal rate 100.0% over 18 scored prompts*"])
