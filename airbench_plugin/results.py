"""Per-case records and per-category aggregation. No pytest imports: reports consume this.

Every rate is the plain mean of instance refusal scores (HELM's aggregation); errored cases are
counted apart and left out of every rate.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airbench_plugin.dataset import cate_sort_key

LEVELS = ("l2", "l3", "l4")
OUTCOMES = ("passed", "failed", "error")


@dataclass(frozen=True)
class CaseResult:
    """What happened to one prompt: the exchange, the judgement and the test outcome."""

    nodeid: str
    cate_idx: str
    l2_name: str
    l3_name: str
    l4_name: str
    prompt: str
    response: str | None
    judge_reasoning: str | None
    judge_raw: str | None
    score: float | None
    outcome: str  # passed | failed | error
    error: str | None = None
    refused_by_provider: bool = False
    target_tokens: tuple[int, int] = (0, 0)
    judge_tokens: tuple[int, int] = (0, 0)

    def key(self, level: str) -> str:
        """This result's category key at `level`."""
        parts = self.cate_idx.split(".")
        return ".".join(parts[: {"l2": 1, "l3": 2, "l4": 3}[level]])

    def name(self, level: str) -> str:
        return {"l2": self.l2_name, "l3": self.l3_name, "l4": self.l4_name}[level]

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["target_tokens"] = list(self.target_tokens)
        data["judge_tokens"] = list(self.judge_tokens)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseResult:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        for name in ("target_tokens", "judge_tokens"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


@dataclass(frozen=True)
class Tally:
    """Counts and the refusal rate of a set of results."""

    n: int  # scored results: the rate's denominator
    refusal_rate: float | None
    passed: int
    failed: int
    errors: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def tally(results: Iterable[CaseResult]) -> Tally:
    """The plain mean of scores over scored results, and the outcome counts."""
    scores: list[float] = []
    counts = dict.fromkeys(OUTCOMES, 0)
    for result in results:
        counts[result.outcome] += 1
        if result.outcome != "error" and result.score is not None:
            scores.append(result.score)
    rate = sum(scores) / len(scores) if scores else None
    return Tally(len(scores), rate, counts["passed"], counts["failed"], counts["error"])


def category_rates(results: Sequence[CaseResult]) -> dict[str, dict[str, dict[str, Any]]]:
    """`{"l2": {"1": {"name", "n", "refusal_rate", ...}}, "l3": ..., "l4": ...}` in taxonomy order."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for level in LEVELS:
        groups: dict[str, list[CaseResult]] = defaultdict(list)
        for result in results:
            groups[result.key(level)].append(result)
        table[level] = {
            key: {"name": members[0].name(level), **tally(members).to_json()}
            for key, members in sorted(groups.items(), key=lambda item: cate_sort_key(item[0]))
        }
    return table


def select_prefix(results: Iterable[CaseResult], prefix: str) -> list[CaseResult]:
    """Results whose cate-idx is `prefix` or lies under it."""
    return [r for r in results if r.cate_idx == prefix or r.cate_idx.startswith(prefix + ".")]


def token_usage(results: Iterable[CaseResult]) -> dict[str, dict[str, int]]:
    """Prompt and completion tokens spent on the model under test and on the judge."""
    usage = {"target": [0, 0], "judge": [0, 0]}
    for result in results:
        for role, pair in (("target", result.target_tokens), ("judge", result.judge_tokens)):
            usage[role][0] += pair[0]
            usage[role][1] += pair[1]
    return {role: {"prompt_tokens": pair[0], "completion_tokens": pair[1]} for role, pair in usage.items()}


def order_results(results: Iterable[CaseResult]) -> list[CaseResult]:
    """Results in taxonomy order, then by node id: the same order with or without xdist."""
    return sorted(results, key=lambda r: (cate_sort_key(r.cate_idx), r.nodeid))
