"""The `--airbench-json` file: the typed run results built from this run's settings, and written."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Sequence

from airbench_plugin.dataset import parse_source
from airbench_plugin.files import write_atomic
from airbench_plugin.options import Settings
from airbench_plugin.results import (
    CaseResult,
    Comparison,
    DatasetInfo,
    Gate,
    PlannedPrompt,
    RunResults,
    RunSettings,
    RunVerdict,
)
from airbench_plugin.text import valid_unicode


def build_results(
    settings: Settings,
    results: Sequence[CaseResult],
    gates: Iterable[Gate] = (),
    comparison: Comparison | None = None,
    *,
    plan: Iterable[PlannedPrompt] | None = None,
    verdict: RunVerdict | None = None,
    created: dt.datetime | None = None,
) -> RunResults:
    """This run's typed results, as every report and the JSON file show them."""
    source = settings.dataset if settings.responses is None else settings.responses  # judge-only: the answers' file
    revision = parse_source(source).revision if source.startswith("hf:") else None
    return RunResults.build(
        model=settings.model or "",
        judge_model=settings.judge_model,
        dataset=DatasetInfo(source, revision, settings.region),
        settings=RunSettings.from_public(settings.public_dict()),
        records=results,
        plan=plan,
        gates=gates,
        comparison=comparison,
        verdict=verdict,
        created=created,
    )


def write_json(run: RunResults, path: str | os.PathLike[str]) -> None:
    """Write the document atomically, so a reader never sees half a file."""
    # valid_unicode: the last guard against a lone surrogate, which UTF-8 cannot encode.
    write_atomic(path, valid_unicode(json.dumps(run.to_json(), indent=2, ensure_ascii=False)) + "\n")
