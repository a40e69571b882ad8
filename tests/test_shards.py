"""Shards (`--airbench-shard I/K`): a deterministic, balanced share of the plan for each CI job."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from airbench_plugin.dataset import Case
from airbench_plugin.options import parse_values
from airbench_plugin.results import load_results
from airbench_plugin.shards import Shard, parse_shard, plan_order, select_shard
from tests.chat_server import TARGET_MODEL, ChatServer
from tests.factories import dataset_case
from tests.helpers import suite_args


def plan(size: int) -> list[Case]:
    """`size` cases over several categories, some sharing a level-4 category."""
    cates = ("1.1.1", "1.2.9", "2.5.1", "2.10.3", "14.3940.21", "16.45.7")
    return [
        dataset_case(i // len(cates), cates[i % len(cates)], names=("L2", "L3", "L4"), prompt=f"prompt {i}")
        for i in range(size)
    ]


@pytest.mark.parametrize("size", [0, 1, 5, 18, 101])
@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_partition_the_plan_in_balanced_shares(size: int, count: int) -> None:
    cases = plan(size)
    shares = [select_shard(cases, Shard(index, count)) for index in range(1, count + 1)]
    joined = [case for share in shares for case in share]
    assert sorted(joined, key=lambda c: c.prompt) == sorted(cases, key=lambda c: c.prompt)
    assert len(set(joined)) == len(joined)  # no case in two shards
    sizes = [len(share) for share in shares]
    assert max(sizes) - min(sizes) <= 1


def test_a_shard_does_not_depend_on_the_order_cases_arrive_in() -> None:
    cases = plan(40)
    shuffled = list(cases)
    random.Random(7).shuffle(shuffled)
    for index in (1, 2, 3):
        assert select_shard(shuffled, Shard(index, 3)) == select_shard(cases, Shard(index, 3))


def test_the_plan_order_is_the_taxonomy_order() -> None:
    ordered = plan_order(plan(12))
    assert [c.cate_idx for c in ordered[:3]] == ["1.1.1", "1.1.1", "1.2.9"]
    assert [c.cate_idx for c in ordered[-2:]] == ["16.45.7", "16.45.7"]
    # Round-robin over that order spreads every category across the shards.
    assert {c.cate_idx for c in select_shard(plan(12), Shard(1, 2))} == {c.cate_idx for c in plan(12)}


def test_a_fixed_plan_gives_fixed_shards() -> None:
    """The same on every machine: the share is a function of the plan only (no hash seed, no clock)."""
    assert [c.prompt for c in select_shard(plan(10), Shard(2, 3))] == ["prompt 6", "prompt 2", "prompt 9"]


@pytest.mark.parametrize(("text", "shard"), [("1/1", Shard(1, 1)), ("2/4", Shard(2, 4)), (" 3 / 3 ", Shard(3, 3))])
def test_parse_shard(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(shard) == text.replace(" ", "")


@pytest.mark.parametrize("raw", ["0/3", "4/3", "1", "1/0", "a/b", "-1/2", "1/2/3"])
def test_a_bad_shard_is_one_sentence(raw: str) -> None:
    with pytest.raises(pytest.UsageError) as info:
        parse_values({"shard": raw})
    assert str(info.value) == f"--airbench-shard: expected I/K with 1 <= I <= K, such as 2/4, got {raw!r}."


def test_a_shard_runs_and_calls_only_its_share(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    sent: set[str] = set()
    for index in (1, 2, 3):
        chat_server.requests.clear()
        out = suite.path / f"shard{index}.json"
        result = suite.runpytest(
            *suite_args(
                chat_server,
                *dataset_files,
                "--airbench-sample=all",
                f"--airbench-shard={index}/3",
                f"--airbench-json={out}",
            )
        )
        result.assert_outcomes(passed=6)
        run = load_results(out)  # the JSON records the shard
        assert run.settings.shard == Shard(index, 3)
        assert json.loads(out.read_text(encoding="utf-8"))["settings"]["shard"] == {"index": index, "count": 3}
        result.stdout.fnmatch_lines([f"airbench: dataset *; shard {index}/3: 6 of 18 prompts"])
        prompts = {c["messages"][-1]["content"] for c in chat_server.calls(TARGET_MODEL)}
        assert len(prompts) == 6
        assert not prompts & sent
        sent |= prompts
    assert len(sent) == 18


def test_pytest_split_groups_call_only_their_selected_prompts(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    """pytest-split deselects tests after collection: only the selected ones may be sent."""
    pytest.importorskip("pytest_split")
    sent: list[str] = []
    for group in (1, 2, 3):
        chat_server.requests.clear()
        result = suite.runpytest(
            *suite_args(chat_server, *dataset_files, "--airbench-sample=all", "--splits=3", f"--group={group}")
        )
        result.assert_outcomes(passed=6)
        sent.extend(c["messages"][-1]["content"] for c in chat_server.calls(TARGET_MODEL))
    assert len(sent) == len(set(sent)) == 18
