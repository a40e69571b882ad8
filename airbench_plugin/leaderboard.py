"""Runs of several models side by side (`airbench compare`): the AIR-Bench paper's heat map as data.

Runs over different prompt samples are compared over the prompts every run scored (same cate-idx
and text), so a larger sample or another seed cannot make one model look better; the count of
those shared prompts is part of the result. Every rate carries its interval, and every run after
the first its paired difference from the first (clustered by level-4 category), so a cell whose
difference is significant can be told from noise. Pure functions over `RunResults`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import fmean

from airbench_plugin.dataset import cate_sort_key
from airbench_plugin.results import LEVELS, CaseResult, Level, RunResults, level_key
from airbench_plugin.stats import (
    DEFAULT_CONFIDENCE,
    PairedDifference,
    RateEstimate,
    paired_difference,
    rate_estimate,
    z_value,
)

PromptKey = tuple[str, str]  # (cate-idx, prompt text)


class CompareError(Exception):
    """Runs that cannot be compared; the message is one sentence for the user."""


@dataclass(frozen=True)
class ComparedRun:
    """One run (a model) in the comparison, with its rates over the shared prompts."""

    label: str  # what the page calls it: the model, with the file's name when models repeat
    path: str
    model: str
    judge_model: str
    scored: int  # prompts it scored in all, shared or not
    overall: float | None  # over the shared prompts
    rates: dict[Level, dict[str, float | None]]  # category key -> rate over the shared prompts
    overall_estimate: RateEstimate | None = None  # the overall rate with its interval
    estimates: dict[Level, dict[str, RateEstimate | None]] = field(default_factory=dict)
    # Against the first run (None and empty for the first run itself): now minus first, paired.
    difference: PairedDifference | None = None
    differences: dict[Level, dict[str, PairedDifference]] = field(default_factory=dict)

    def significant(self, level: Level, key: str) -> bool:
        """Whether this run's rate in a category differs from the first run's beyond noise."""
        difference = self.differences.get(level, {}).get(key)
        return difference is not None and difference.significant()


@dataclass(frozen=True)
class Category:
    """A category of the shared prompts at one level: the heat map's column."""

    level: Level
    key: str
    name: str
    prompts: int  # shared prompts in it

    @property
    def parent(self) -> str:
        """The level-2 key this category lies under."""
        return self.key.split(".")[0]


@dataclass(frozen=True)
class Side:
    """One run's answer to a flipped prompt."""

    outcome: str
    score: float | None
    response: str | None
    judge_reasoning: str | None


@dataclass(frozen=True)
class FlippedPrompt:
    """A shared prompt that passed in one of two runs and failed in the other."""

    cate_idx: str
    l4_name: str
    prompt: str
    first: Side
    second: Side

    @property
    def regressed(self) -> bool:
        """Passed in the first run, failed in the second."""
        return self.first.outcome == "passed"


@dataclass(frozen=True)
class ModelComparison:
    """The comparison of `runs` over the prompts they all scored."""

    runs: tuple[ComparedRun, ...]
    shared_prompts: int
    categories: dict[Level, tuple[Category, ...]]
    flipped: tuple[FlippedPrompt, ...] | None  # only for two runs
    confidence: float = DEFAULT_CONFIDENCE  # of every interval and significance flag

    def children(self, l2_key: str, level: Level) -> tuple[Category, ...]:
        """The level-3 or level-4 categories under one level-2 category."""
        return tuple(c for c in self.categories[level] if c.parent == l2_key)


def _scored(run: RunResults) -> dict[PromptKey, CaseResult]:
    table: dict[PromptKey, CaseResult] = {}
    for record in run.records:
        if record.scored and record.score is not None:
            table.setdefault((record.cate_idx, record.prompt), record)
    return table


def _labels(runs: Sequence[tuple[str, RunResults]]) -> list[str]:
    models = [run.model for _path, run in runs]
    return [
        model if models.count(model) == 1 else f"{model} ({path})"
        for (path, _run), model in zip(runs, models, strict=True)
    ]


def compare_runs(runs: Sequence[tuple[str, RunResults]], confidence: float = DEFAULT_CONFIDENCE) -> ModelComparison:
    """Every run's refusal rates over the shared prompts, per category, with their intervals and
    their paired differences from the first run at `confidence`; raises CompareError."""
    if not runs:
        raise CompareError("cannot compare: no files given; pass the --airbench-json files of the runs.")
    scored = [_scored(run) for _path, run in runs]
    shared = set(scored[0])
    for table in scored[1:]:
        shared &= set(table)
    if not shared:
        raise CompareError(
            "cannot compare: the runs share no scored prompt (same cate-idx and text); "
            "compare runs of the same dataset."
        )
    ordered = sorted(shared, key=lambda key: (cate_sort_key(key[0]), key[1]))
    reference = scored[0]
    categories: dict[Level, tuple[Category, ...]] = {}
    members: dict[Level, dict[str, list[PromptKey]]] = {}
    for level in LEVELS:
        groups: dict[str, list[PromptKey]] = defaultdict(list)
        for key in ordered:
            groups[level_key(key[0], level)].append(key)
        members[level] = groups
        categories[level] = tuple(
            Category(level, cat, reference[keys[0]].name(level), len(keys))
            for cat, keys in sorted(groups.items(), key=lambda item: cate_sort_key(item[0]))
        )
    z = z_value(confidence)

    def scores(table: dict[PromptKey, CaseResult], keys: Sequence[PromptKey]) -> list[float]:
        return [table[k].score or 0.0 for k in keys]

    def estimate(table: dict[PromptKey, CaseResult], keys: Sequence[PromptKey]) -> RateEstimate | None:
        return rate_estimate(scores(table, keys), [k[0] for k in keys], z)

    def difference(table: dict[PromptKey, CaseResult], keys: Sequence[PromptKey]) -> PairedDifference:
        return paired_difference(scores(table, keys), scores(reference, keys), [k[0] for k in keys], z)

    compared = []
    for index, ((path, run), table, label) in enumerate(zip(runs, scored, _labels(runs), strict=True)):
        rates: dict[Level, dict[str, float | None]] = {
            level: {cat: fmean(table[k].score or 0.0 for k in keys) for cat, keys in members[level].items()}
            for level in LEVELS
        }
        overall = fmean(table[k].score or 0.0 for k in ordered)
        estimates = {level: {cat: estimate(table, keys) for cat, keys in members[level].items()} for level in LEVELS}
        differences: dict[Level, dict[str, PairedDifference]] = {}
        if index > 0:
            differences = {
                level: {cat: difference(table, keys) for cat, keys in members[level].items()} for level in LEVELS
            }
        compared.append(
            ComparedRun(
                label,
                path,
                run.model,
                run.judge_model,
                len(table),
                overall,
                rates,
                overall_estimate=estimate(table, ordered),
                estimates=estimates,
                difference=difference(table, ordered) if index > 0 else None,
                differences=differences,
            )
        )
    flipped = None
    if len(runs) == 2:
        flipped = tuple(
            FlippedPrompt(
                key[0],
                scored[0][key].l4_name,
                key[1],
                _side(scored[0][key]),
                _side(scored[1][key]),
            )
            for key in ordered
            if {scored[0][key].outcome, scored[1][key].outcome} == {"passed", "failed"}
        )
    return ModelComparison(tuple(compared), len(ordered), categories, flipped, confidence)


def _side(record: CaseResult) -> Side:
    return Side(record.outcome, record.score, record.response, record.judge_reasoning)
