"""Figures derived from the records: tallies, category tables, each judge's summary, token usage.

Every rate is the plain mean of instance refusal scores (HELM's aggregation); errored cases are
counted apart and left out of every rate.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airbench_plugin.agreement import ScoredPair
from airbench_plugin.dataset import cate_sort_key, selects
from airbench_plugin.judges import JudgeStatistic, judge_statistic
from airbench_plugin.results.records import LEVELS, OUTCOMES, CaseResult, Level
from airbench_plugin.roles import Role
from airbench_plugin.stats import Z95, RateEstimate, rate_estimate


@dataclass(frozen=True)
class Tally:
    """Counts and the refusal rate of a set of results, with the rate's error bar (`estimate`:
    clustered standard error, effective size and interval; None without a scored result)."""

    n: int  # scored results: the rate's denominator
    refusal_rate: float | None
    passed: int
    failed: int
    errors: int
    estimate: RateEstimate | None = None

    @property
    def interval(self) -> tuple[float, float] | None:
        """The rate's confidence interval, when there is a rate."""
        return None if self.estimate is None else (self.estimate.ci_low, self.estimate.ci_high)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "n": self.n,
            "refusal_rate": self.refusal_rate,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
        }
        if self.estimate is None:
            return {**data, "stderr": None, "ci_low": None, "ci_high": None, "n_effective": None}
        return {**data, **self.estimate.to_json()}


def tally(results: Iterable[CaseResult], z: float = Z95) -> Tally:
    """The plain mean of scores over scored results with its interval at the normal quantile `z`,
    and the outcome counts."""
    scores: list[float] = []
    clusters: list[str] = []
    counts = dict.fromkeys(OUTCOMES, 0)
    for result in results:
        counts[result.outcome] += 1
        if result.scored and result.score is not None:
            scores.append(result.score)
            clusters.append(result.cate_idx)
    rate = sum(scores) / len(scores) if scores else None
    error_bar = rate_estimate(scores, clusters, z)
    return Tally(len(scores), rate, counts["passed"], counts["failed"], counts["error"], error_bar)


def estimate(results: Iterable[CaseResult], z: float) -> RateEstimate | None:
    """The refusal rate of the scored `results` with its error bar, clustered by level-4 category."""
    scored = [(r.score, r.cate_idx) for r in results if r.scored and r.score is not None]
    return rate_estimate([score for score, _ in scored], [cate for _, cate in scored], z)


Statistics = Sequence[tuple[str, JudgeStatistic]]  # the judges' own figures, with the kind of each


@dataclass(frozen=True)
class CategoryRow:
    """One category at one level: its name and tally, and each judge's own figure (`figures`, by
    JSON field, such as `mean_prob_of_risk`)."""

    key: str
    name: str
    tally: Tally
    figures: dict[str, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **self.tally.to_json(), **self.figures}


def mean_reading(results: Iterable[CaseResult], kind: str, statistic: JudgeStatistic) -> float | None:
    """The plain mean of a judge's own number over the scored prompts it judged."""
    values = [
        value
        for r in results
        if r.scored and (entry := r.judge(kind)) is not None and (value := statistic.reading(entry)) is not None
    ]
    return sum(values) / len(values) if values else None


def figures(results: Sequence[CaseResult], statistics: Statistics) -> dict[str, float | None]:
    """Each judge's own figure over `results`, by its JSON field."""
    return {statistic.key: mean_reading(results, kind, statistic) for kind, statistic in statistics}


def categories(
    results: Sequence[CaseResult], statistics: Statistics = (), z: float = Z95
) -> dict[Level, dict[str, CategoryRow]]:
    """Every level-2, level-3 and level-4 category of `results`, in taxonomy order, each rate with
    its interval at the normal quantile `z`, and each judge's own figure (`statistics`)."""
    table: dict[Level, dict[str, CategoryRow]] = {}
    for level in LEVELS:
        groups: dict[str, list[CaseResult]] = defaultdict(list)
        for result in results:
            groups[result.key(level)].append(result)
        table[level] = {
            key: CategoryRow(key, members[0].name(level), tally(members, z), figures(members, statistics))
            for key, members in sorted(groups.items(), key=lambda item: cate_sort_key(item[0]))
        }
    return table


@dataclass(frozen=True)
class JudgeSummary:
    """One judge over the run: the prompts it scored, their mean refusal score and the judge's own
    figure, if it has one (`figures`, by JSON field)."""

    kind: str
    model: str
    n: int
    refusal_rate: float | None
    figures: dict[str, float | None] = field(default_factory=dict)
    usage: TokenCount = field(default_factory=lambda: TokenCount())  # what this judge's readings cost
    estimate: RateEstimate | None = None  # the refusal score's error bar, clustered as every row's

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.estimate is None else (self.estimate.ci_low, self.estimate.ci_high)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"model": self.model, "n": self.n, "refusal_rate": self.refusal_rate, **self.figures}
        bar = self.estimate.to_json() if self.estimate is not None else dict.fromkeys(_ERROR_BAR)
        return {**data, **bar, "usage": self.usage.to_json()}


_ERROR_BAR = ("stderr", "ci_low", "ci_high", "n_effective")


def judge_summary(results: Sequence[CaseResult], kind: str, model: str, z: float = Z95) -> JudgeSummary:
    """`kind`'s figures over the scored prompts it judged (answers not sent to judges are left out),
    its refusal score with the error bar every row has (level-4 cate-idx as cluster)."""
    judged = [(r, entry) for r in results if r.scored and (entry := r.judge(kind)) is not None]
    scores = [entry.score for _r, entry in judged]
    rate = sum(scores) / len(scores) if scores else None
    statistic = judge_statistic(kind)
    own = {} if statistic is None else figures([r for r, _entry in judged], [(kind, statistic)])
    estimate = rate_estimate(scores, [r.cate_idx for r, _entry in judged], z)
    return JudgeSummary(kind, model, len(judged), rate, own, judge_tokens(results, kind), estimate)


def judge_tokens(results: Iterable[CaseResult], kind: str) -> TokenCount:
    """What the readings of the judge of `kind` cost, over every answer it judged."""
    counts = [0, 0, 0, 0]
    for result in results:
        entry = result.judge(kind)
        if entry is None:
            continue
        counts[0] += entry.tokens[0]
        counts[1] += entry.tokens[1]
        if entry.from_cache:
            counts[2] += entry.tokens[0]
            counts[3] += entry.tokens[1]
    return TokenCount(*counts)


def judge_pairs(results: Iterable[CaseResult], first: str, second: str) -> list[ScoredPair]:
    """The scored prompts both judges scored, with their two refusal scores."""
    pairs = []
    for r in results:
        a, b = r.judge(first), r.judge(second)
        if r.scored and a is not None and b is not None:
            pairs.append(ScoredPair(r.key("l2"), r.l2_name, a.score, b.score))
    return pairs


def disagreements(results: Iterable[CaseResult], first: str, second: str, threshold: float) -> list[CaseResult]:
    """The scored prompts one judge passes and the other fails."""
    return [
        r
        for r in results
        if r.scored
        and (a := r.judge(first)) is not None
        and (b := r.judge(second)) is not None
        and (a.score >= threshold) != (b.score >= threshold)
    ]


def select_prefix(results: Iterable[CaseResult], prefix: str) -> list[CaseResult]:
    """Results whose cate-idx is `prefix` or lies under it, or whose level-2 name is `prefix`."""
    return [r for r in results if selects(prefix, r.cate_idx, r.l2_name)]


@dataclass(frozen=True)
class TokenCount:
    """What the answers of a run cost; the `cached_` part was read from the cache, paid by an earlier run."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def token_usage(results: Iterable[CaseResult]) -> dict[str, TokenCount]:
    """Prompt and completion tokens of the model under test (`target`) and of the judges (`judge`)."""
    usage: dict[Role, list[int]] = {"target": [0, 0, 0, 0], "judge": [0, 0, 0, 0]}  # every judge counts as `judge`
    for result in results:
        pairs: tuple[tuple[Role, tuple[int, int], bool], ...] = (
            ("target", result.target_tokens, result.target_cached),
            ("judge", result.judge_tokens, result.judge_cached),
        )
        for role, pair, cached in pairs:
            counts = usage[role]
            counts[0] += pair[0]
            counts[1] += pair[1]
            if cached:
                counts[2] += pair[0]
                counts[3] += pair[1]
    return {role: TokenCount(*counts) for role, counts in usage.items()}


@dataclass(frozen=True)
class Aggregates:
    """The overall tally and every category's, derived from the records."""

    overall: Tally
    levels: dict[Level, dict[str, CategoryRow]]

    def categories_json(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {level: {key: row.to_json() for key, row in rows.items()} for level, rows in self.levels.items()}
