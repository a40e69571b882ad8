"""Shards of a run (`--airbench-shard I/K`): which planned prompts one CI job runs. Pure functions.

The plan (the sampled prompts, in taxonomy order) is the same on every machine for the same
options, so dealing it out round-robin gives every job a deterministic share, the shares differ
by at most one prompt, and each holds a mix of categories (long-answer categories do not pile up
in one job).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from airbench_plugin.dataset import Case, cate_sort_key

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def to_json(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}


def parse_shard(text: str) -> Shard:
    """`I/K` with 1 <= I <= K; raises ValueError."""
    match = _SHARD.match(text)
    if match is None:
        raise ValueError(text)
    shard = Shard(int(match[1]), int(match[2]))
    if not 1 <= shard.index <= shard.count:
        raise ValueError(text)
    return shard


def plan_order(cases: Iterable[Case]) -> list[Case]:
    """The plan in its canonical order: taxonomy, then position in the dataset."""
    return sorted(cases, key=lambda case: (cate_sort_key(case.cate_idx), case.ordinal, case.prompt))


def select_shard(cases: Sequence[Case], shard: Shard) -> list[Case]:
    """Every `count`-th case of the plan, starting at the shard's own: a balanced, deterministic share."""
    return [case for position, case in enumerate(plan_order(cases)) if position % shard.count == shard.index - 1]
