"""`--airbench-model` given but the suite never collected: one sentence that says how, and no pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airbench_plugin.gates import not_collected_message
from tests.chat_server import ChatServer
from tests.helpers import SUITE_FILE, suite_args

OTHER_TEST = "def test_something_else():\n    pass\n"
SENTENCE = (
    "No AIR-Bench test was collected, so none of the 13 planned prompts ran: add --pyargs airbench_plugin.suite "
    "to the command, or collect the suite in a test file with "
    "`from airbench_plugin.suite.test_airbench import test_airbench`."
)


def test_the_sentence() -> None:
    assert not_collected_message(13) == SENTENCE


@pytest.mark.parametrize("dist", [pytest.param([], id="no-xdist"), pytest.param(["-n", "2"], id="n2")])
def test_a_run_without_the_suite_says_how_to_collect_it_and_fails(
    pytester: pytest.Pytester,
    chat_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    dist: list[str],
) -> None:
    pytester.makepyfile(test_other=OTHER_TEST)
    args = suite_args(chat_server, *dataset_files, "--airbench-json=out.json", "--airbench-allow-partial", *dist)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = result.stdout.str()
    assert text.count(SENTENCE) == 1
    assert "deselected" not in text
    section = text.split("AIR-Bench 2024", 1)[1].splitlines()[1:]
    assert [line for line in section if line.strip()][:3] == [
        "airbench results: out.json",
        SENTENCE,
        "0 prompts below the threshold; AIR-Bench tests INCOMPLETE (exit 1)",
    ]
    assert chat_server.calls() == []
    document = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))
    assert {entry["reason"] for entry in document["plan"]} == {"not_collected"}
    assert document["verdict"]["status"] == "incomplete"


@pytest.mark.parametrize("dist", [pytest.param([], id="no-xdist"), pytest.param(["-n", "2"], id="n2")])
def test_a_suite_collected_and_deselected_whole_is_deselected(
    pytester: pytest.Pytester,
    chat_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    dist: list[str],
) -> None:
    pytester.makepyfile(test_suite=SUITE_FILE, test_other=OTHER_TEST)
    args = suite_args(chat_server, *dataset_files, "--airbench-json=out.json", "-k", "something_else", *dist)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "No AIR-Bench test was collected" not in result.stdout.str()
    result.stdout.fnmatch_lines(["13 of 13 planned prompts were not run (13 deselected)."])
    document = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))
    assert {entry["reason"] for entry in document["plan"]} == {"deselected"}
