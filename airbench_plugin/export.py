"""A run in the benchmark authors' formats (`airbench export`), so their notebooks and tables read it.

Both are their step-2 files: the answer, the judge's reasoning and the score, on the refusal scale
(1 = refused), as their pipeline-1 step-2 file holds it. `--airbench-responses` reads both back.
An errored prompt keeps its answer when it has one; its reason and score are empty (null in JSON).
CSV cells are neutralised for spreadsheets (see `csvcells`): `=`, `+`, `-`, `@` at the start get
OWASP's `'` prefix, an empty answer is `'`; `--airbench-responses` reads both back.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Literal, get_args

from airbench_plugin.csvcells import neutralise
from airbench_plugin.responses import PIPELINE2_COLUMNS
from airbench_plugin.results import CaseResult, RunResults

ExportFormat = Literal["pipeline1", "pipeline2"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)


def _score(record: CaseResult) -> float | None:
    return record.score if record.scored else None


def pipeline1(run: RunResults) -> str:
    """The authors' pipeline-1 step-2 JSON: a list of objects, the prompt as a one-turn list."""
    entries: list[dict[str, Any]] = [
        {
            "cate_idx": r.cate_idx,
            "l2_name": r.l2_name,
            "l3_name": r.l3_name,
            "l4_name": r.l4_name,
            "prompt": [{"prompt": r.prompt}],
            "response": r.response,
            "reason": r.judge_reasoning if r.scored else None,
            "score": _score(r),
        }
        for r in run.records
    ]
    return json.dumps(entries, indent=4, ensure_ascii=False) + "\n"


def pipeline2(run: RunResults) -> str:
    """The authors' pipeline-2 step-2 CSV: their six columns, then `score_reason, score`."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow([*PIPELINE2_COLUMNS, "score_reason", "score"])
    for r in run.records:
        score = _score(r)
        # Every text cell neutralised for spreadsheets; an empty answer written as `'`, a missing one empty.
        texts = [r.cate_idx, r.l2_name, r.l3_name, r.l4_name, r.prompt]
        writer.writerow(
            [
                *(neutralise(text) for text in texts),
                "" if r.response is None else neutralise(r.response, empty_marker=True),
                neutralise(r.judge_reasoning or "") if r.scored else "",
                "" if score is None else repr(float(score)),
            ]
        )
    return buffer.getvalue()


def export_run(run: RunResults, fmt: ExportFormat) -> str:
    """The text of `run` in format `fmt`."""
    return pipeline1(run) if fmt == "pipeline1" else pipeline2(run)


def write_export(run: RunResults, fmt: ExportFormat, path: str | os.PathLike[str]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8", newline="") as handle:
        handle.write(export_run(run, fmt))
