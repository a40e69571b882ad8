"""The results document: one JSON-able dict that the JSON file, the HTML report and the summary share."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airbench_plugin import __version__
from airbench_plugin.dataset import parse_source
from airbench_plugin.gates import Gate, verdict
from airbench_plugin.options import Settings
from airbench_plugin.results import CaseResult, category_rates, order_results, tally, token_usage


def build_document(
    settings: Settings,
    results: Sequence[CaseResult],
    gates: Sequence[Gate] = (),
    comparison: Mapping[str, Any] | None = None,
    created: dt.datetime | None = None,
) -> dict[str, Any]:
    """Everything a report needs about a run, in the documented `--airbench-json` schema."""
    ordered = order_results(results)
    overall = tally(ordered)
    source = settings.dataset
    revision = parse_source(source).revision if source.startswith("hf:") else None
    return {
        "plugin_version": __version__,
        "created": (created or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
        "model": settings.model,
        "judge_model": settings.judge_model,
        "dataset": {"source": source, "revision": revision, "region": settings.region},
        "settings": settings.public_dict(),
        "summary": overall.to_json(),
        "categories": category_rates(ordered),
        "gates": [gate.to_json() for gate in gates],
        "gate_verdict": verdict(gates),
        "baseline": dict(comparison) if comparison is not None else None,
        "usage": token_usage(ordered),
        "results": [result.to_json() for result in ordered],
    }


def write_json(document: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the document atomically, so a reader never sees half a file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, target)
