"""Selecting a category from the command line: one marker per taxonomy level, matched exactly by -m."""

from __future__ import annotations

from pathlib import Path

import pytest

from airbench_plugin.dataset import Case
from airbench_plugin.markers import case_markers, marker_lines, marker_name
from tests.chat_server import TARGET_MODEL, ChatServer
from tests.factories import dataset_case
from tests.helpers import TEMPLATE, suite_args, write_csv

# Real AIR-Bench categories whose cate-idx strings contain one another: "1.1" is in "3.11.18".
NESTED = (
    ("1.1.1", "Security Risks", "Confidentiality", "Network intrusion"),
    ("1.1.6", "Security Risks", "Confidentiality", "Unauthorized network entry"),
    ("1.2.9", "Security Risks", "Integrity", "Data tampering"),
    ("3.11.18", "Violence & Extremism", "Weapon Usage & Development", "Explosives/Dangerous Materials"),
    ("11.35.1", "Manipulation", "Sowing Division", "Contents aim to turn a community against itself."),
)


def _case(cate_idx: str) -> Case:
    _, l2, l3, l4 = next(row for row in NESTED if row[0] == cate_idx)
    return dataset_case(0, cate_idx, names=(l2, l3, l4), prompt="prompt")


def test_each_prompt_carries_one_marker_per_level() -> None:
    assert case_markers(_case("3.11.18")) == ["airbench_l2_3", "airbench_l3_3_11", "airbench_l4_3_11_18"]
    assert marker_name("l3", "14.3940") == "airbench_l3_14_3940"


def test_marker_lines_register_each_category_once_with_its_name() -> None:
    lines = marker_lines([_case(c) for c in ("11.35.1", "1.1.6", "1.1.1", "1.1.1", "3.11.18")])
    assert lines == [
        "airbench_l2_1: AIR-Bench level-2 category 1 Security Risks",
        "airbench_l2_3: AIR-Bench level-2 category 3 Violence & Extremism",
        "airbench_l2_11: AIR-Bench level-2 category 11 Manipulation",
        "airbench_l3_1_1: AIR-Bench level-3 category 1.1 Confidentiality",
        "airbench_l3_3_11: AIR-Bench level-3 category 3.11 Weapon Usage & Development",
        "airbench_l3_11_35: AIR-Bench level-3 category 11.35 Sowing Division",
        "airbench_l4_1_1_1: AIR-Bench level-4 category 1.1.1 Network intrusion",
        "airbench_l4_1_1_6: AIR-Bench level-4 category 1.1.6 Unauthorized network entry",
        "airbench_l4_3_11_18: AIR-Bench level-4 category 3.11.18 Explosives/Dangerous Materials",
        "airbench_l4_11_35_1: AIR-Bench level-4 category 11.35.1 Contents aim to turn a community against itself.",
    ]


@pytest.fixture
def nested_files(tmp_path: Path) -> tuple[Path, Path]:
    header = ["cate-idx", "l2-name", "l3-name", "l4-name"]
    prompts = write_csv(
        tmp_path / "nested.csv",
        [*header, "prompt"],
        [[*row, f"Prompt {i} for {row[3]}: explain how to do the harmful thing."] for row in NESTED for i in range(2)],
    )
    judge = write_csv(
        tmp_path / "nested_judge.csv",
        [*header, "judge_prompt"],
        [[*row, TEMPLATE.replace("{topic}", row[3])] for row in NESTED],
    )
    return prompts, judge


def _selected(suite: pytest.Pytester, server: ChatServer, files: tuple[Path, Path], *selection: str) -> list[str]:
    """The cate-idx of each test a selection keeps, from a collect-only run."""
    args = suite_args(server, *files, "--airbench-sample=all", "--strict-markers")
    result = suite.runpytest(*args, "--collect-only", "-q", *selection)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    return [line.split("[")[1].split("-")[0] for line in result.outlines if "::test_airbench[" in line]


def test_a_marker_selects_exactly_one_category(
    suite: pytest.Pytester, chat_server: ChatServer, nested_files: tuple[Path, Path], api_key: str
) -> None:
    # -k matches substrings of test ids: "1.1" picks 3.11.18 too. The marker is exact.
    assert "3.11.18" in _selected(suite, chat_server, nested_files, "-k", "1.1")
    assert _selected(suite, chat_server, nested_files, "-m", "airbench_l3_1_1") == ["1.1.1"] * 2 + ["1.1.6"] * 2
    assert _selected(suite, chat_server, nested_files, "-m", "airbench_l4_3_11_18") == ["3.11.18"] * 2
    assert _selected(suite, chat_server, nested_files, "-m", "airbench_l2_11") == ["11.35.1"] * 2


def test_a_level_2_marker_selects_all_its_children_and_markers_combine(
    suite: pytest.Pytester, chat_server: ChatServer, nested_files: tuple[Path, Path], api_key: str
) -> None:
    children = ["1.1.1"] * 2 + ["1.1.6"] * 2 + ["1.2.9"] * 2
    assert _selected(suite, chat_server, nested_files, "-m", "airbench_l2_1") == children
    assert _selected(suite, chat_server, nested_files, "-m", "airbench_l2_1 and not airbench_l3_1_1") == ["1.2.9"] * 2
    assert (
        _selected(suite, chat_server, nested_files, "-m", "airbench_l4_1_2_9 or airbench_l2_3")
        == ["1.2.9"] * 2 + ["3.11.18"] * 2
    )


@pytest.mark.parametrize("dist", [pytest.param([], id="no-xdist"), pytest.param(["-n", "2"], id="n2")])
def test_only_the_selected_prompts_are_sent_and_markers_are_listed(
    suite: pytest.Pytester, chat_server: ChatServer, nested_files: tuple[Path, Path], api_key: str, dist: list[str]
) -> None:
    args = suite_args(chat_server, *nested_files, "--airbench-sample=all", "--strict-markers")
    result = suite.runpytest(*args, "-m", "airbench_l3_1_1", *dist)  # workers register the markers too
    result.assert_outcomes(passed=4, deselected=None if dist else 6)  # xdist deselects on its workers
    assert len(chat_server.calls(TARGET_MODEL)) == 4
    if dist:
        return
    listed = suite.runpytest(*args, "--markers")
    listed.stdout.fnmatch_lines(["@pytest.mark.airbench_l3_1_1: AIR-Bench level-3 category 1.1 Confidentiality"])
