"""The run's typed results as every output shows them (`build_results`), the inputs' revisions they
record, what the endpoints were sent, and where the outputs go."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airbench_plugin.dataset import source_revision
from airbench_plugin.gates import Gate
from airbench_plugin.options import Settings
from airbench_plugin.reports import OutputPaths
from airbench_plugin.results import CaseResult, Comparison, DatasetInfo, PlannedPrompt, RunResults, RunVerdict


def sent_settings(snapshots: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The generation settings each endpoint was sent, over the engines of every process.

    Every process starts with the options as given; one that learned an endpoint's quirks
    (a reasoning model's max_completion_tokens) sent those from then on, and they win.
    """
    merged: dict[str, dict[str, Any]] = {}
    for snapshot in snapshots:
        sent = snapshot.get("sent")
        if not isinstance(sent, Mapping):
            continue
        for role, settings in sent.items():
            if not isinstance(settings, Mapping):
                continue
            learned = "max_completion_tokens" in settings or "temperature" not in settings
            if role not in merged or learned:
                merged[str(role)] = dict(settings)
    return merged


@dataclass(frozen=True)
class Revisions:
    """What the run's inputs were, as read when they were loaded: the dataset's (or the recorded
    answers') revision and the judge templates' (a hub revision, or a local file's content hash)."""

    dataset: str | None
    judge_prompts: str | None

    @classmethod
    def of(cls, settings: Settings) -> Revisions:
        """The inputs' revisions as they are now: call it when they are loaded (a file may change or go later)."""
        source = settings.dataset if settings.responses is None else settings.responses
        templates = source_revision(settings.judge_prompts) if settings.needs_templates else None
        return cls(source_revision(source), templates)


def build_results(
    settings: Settings,
    results: Sequence[CaseResult],
    gates: Iterable[Gate] = (),
    comparison: Comparison | None = None,
    *,
    plan: Iterable[PlannedPrompt] | None = None,
    verdict: RunVerdict | None = None,
    created: dt.datetime | None = None,
    revisions: Revisions | None = None,
) -> RunResults:
    """This run's typed results, as every report and the JSON file show them.

    A local file's revision is its content hash, as is the judge templates': two contents of one
    path are two benchmarks, which merge and baseline tell apart (`revisions`, taken at load time;
    read now when not given).
    """
    source = settings.dataset if settings.responses is None else settings.responses  # judge-only: the answers' file
    revisions = revisions or Revisions.of(settings)
    return RunResults.build(
        model=settings.model or "",
        judge_model=settings.judge_model,
        dataset=DatasetInfo(source, revisions.dataset, settings.region),
        settings=settings.run_settings(revisions.judge_prompts),
        records=results,
        plan=plan,
        gates=gates,
        comparison=comparison,
        verdict=verdict,
        created=created,
    )


def output_paths(settings: Settings) -> OutputPaths:
    """Where this run was asked to write its outputs."""
    return OutputPaths(
        json=settings.json, report=settings.report, junit_dir=settings.junit_dir, markdown=settings.markdown
    )
