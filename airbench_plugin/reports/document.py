"""The `--airbench-json` file: the typed run results written as JSON."""

from __future__ import annotations

import json
import os
from typing import Any

from airbench_plugin.files import write_atomic
from airbench_plugin.pricing import cost_json, read_prices
from airbench_plugin.results import (
    RunResults,
)
from airbench_plugin.text import valid_unicode


def run_cost(run: RunResults) -> dict[str, Any] | None:
    """--airbench-price: what the run paid per priced endpoint, from its usage less the cached part.
    Two judges of different models share the `judge` usage, so it is not priced then."""
    models = {"target": run.model, "judge": run.judge_model}
    if run.settings.second_judge_model not in (None, run.judge_model):
        del models["judge"]
    paid = {
        role: (c.prompt_tokens - c.cached_prompt_tokens, c.completion_tokens - c.cached_completion_tokens)
        for role, c in run.usage.items()
    }
    return cost_json(read_prices(run.settings.other.get("price")), models, paid)


def write_json(run: RunResults, path: str | os.PathLike[str]) -> None:
    """Write the document atomically, so a reader never sees half a file."""
    data = run.to_json()
    cost = run_cost(run)
    if cost is not None:
        data["cost"] = cost
    # valid_unicode: the last guard against a lone surrogate, which UTF-8 cannot encode.
    write_atomic(path, valid_unicode(json.dumps(data, indent=2, ensure_ascii=False)) + "\n")
