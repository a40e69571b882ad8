"""Builders for the plugin's own tests: a dataset prompt, one record, one run (from the results model's
own fields, or as a test run's settings make it), its JSON file or shard files, and the authors'
recorded answers, with the defaults most tests want. A test states only what it is about; everything
else is a default here."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from airbench_plugin.dataset import Case
from airbench_plugin.gates import CategoryGate, GateSettings, evaluate_gates
from airbench_plugin.options import Settings, parse_values
from airbench_plugin.reports.document import write_json
from airbench_plugin.results import CaseResult, DatasetInfo, Outcome, RunResults, RunSettings
from airbench_plugin.run import build_results
from airbench_plugin.shards import Shard
from tests.chat_server import COMPLIANCE, REFUSAL
from tests.helpers import DATA

DATASET = DatasetInfo("hf:stanford-crfm/air-bench-2024", None, "default")
PINNED = DatasetInfo("hf:x/y@1", "1", "default")  # a hub dataset at a revision
CREATED = "2026-01-01T00:00:00+00:00"  # a fixed creation time, for reports compared as text
# Six answers of Llama-3-8b with the authors' judgements, as their pipeline 1 (step 2) recorded them.
PIPELINE1 = DATA / "responses" / "pipeline1_step2_llama-3-8b.json"
NETWORK_INTRUSION = ("Security Risks", "Confidentiality", "Network intrusion")  # 1.1.1's level 2, 3 and 4 names
# The settings of a run of the shipped suite that the `airbench merge` tests split into shards.
SHARDED = parse_values({"model": "model-a", "judge_model": "judge-x", "sample": "all", "seed": "0", "no_cache": True})


def dataset_case(
    ordinal: int = 0,
    cate_idx: str = "1.1.1",
    *,
    names: tuple[str, str, str] = NETWORK_INTRUSION,
    prompt: str | None = None,
) -> Case:
    """One prompt of the dataset, `Prompt N: do harm` unless its text is given."""
    return Case(cate_idx, *names, f"Prompt {ordinal}: do harm" if prompt is None else prompt, ordinal)


def outcome_of(score: float | None, threshold: float = 0.5) -> Outcome:
    """The test outcome a score gives: an error without one, else pass at the threshold."""
    if score is None:
        return "error"
    return "passed" if score >= threshold else "failed"


def case_result(
    cate_idx: str = "1.1.1",
    score: float | None = 1.0,
    *,
    test_id: str | None = None,
    file: str = "t.py",
    nodeid: str | None = None,
    names: tuple[str, str, str] = ("L2", "L3", "L4"),
    prompt: str = "p",
    response: str | None = "r",
    judge_reasoning: str | None = "j",
    judge_raw: str | None = None,
    outcome: Outcome | None = None,
    **changes: Any,
) -> CaseResult:
    """One prompt's record, `file::test_airbench[test_id]` unless its node id is given; its outcome
    follows from its score unless given."""
    return CaseResult(
        nodeid=nodeid or f"{file}::test_airbench[{test_id or f'{cate_idx}-{prompt}'}]",
        cate_idx=cate_idx,
        l2_name=names[0],
        l3_name=names[1],
        l4_name=names[2],
        prompt=prompt,
        response=response,
        judge_reasoning=judge_reasoning,
        judge_raw=judge_raw,
        score=score,
        outcome=outcome_of(score) if outcome is None else outcome,
        **changes,
    )


def suite_record(index: int, score: float = 1.0, cate: str = "1.1.1") -> CaseResult:
    """Prompt `index` of `cate` as the shipped suite names its test: refused (score 1) or answered."""
    return case_result(
        cate,
        score,
        file="tests_airbench/test_airbench.py",
        test_id=f"{cate}-network-intrusion-{index}",
        names=NETWORK_INTRUSION,
        prompt=f"prompt {index}",
        response=REFUSAL if score == 1.0 else COMPLIANCE,
        judge_reasoning="refuses" if score == 1.0 else "assists",
    )


def record_entry(cate_idx: str = "1.1.1", score: float | None = 1.0, **fields: Any) -> dict[str, Any]:
    """One record as a run's JSON document holds it (`case_result`'s fields, through the record's codec)."""
    return case_result(cate_idx, score, **fields).to_json()


def run_results(
    records: Iterable[CaseResult],
    *,
    model: str = "m",
    judge_model: str = "judge-model",
    settings: RunSettings | None = None,
    dataset: DatasetInfo = DATASET,
    **changes: Any,
) -> RunResults:
    """A run of `records` (in taxonomy order, the records as its plan) with default settings."""
    return RunResults.build(
        model=model,
        judge_model=judge_model,
        dataset=dataset,
        settings=RunSettings() if settings is None else settings,
        records=records,
        **changes,
    )


def configured_run(records: Sequence[CaseResult], settings: Settings | None = None, **build: Any) -> RunResults:
    """A run of `records` as a test run configured by `settings` builds it (every option's default and
    the model `m` unless given); `build` as `run.build_results` takes it (gates, comparison, plan...)."""
    return build_results(Settings().with_model("m") if settings is None else settings, records, **build)


def gated_run(model: str = "gpt-4o", min_rate: float | None = 0.7) -> RunResults:
    """Four prompts over three level-2 categories, one failed (a `|` in a name, for Markdown), with the
    gates `--airbench-min-refusal-rate=min_rate` and `--airbench-category-gates=1:0.9` evaluated."""
    records = [
        case_result(cate, score, test_id=f"{cate}-x-{index}", names=(l2, "L3", "L4"), prompt=f"prompt {cate} {index}")
        for cate, l2, index, score in (
            ("1.1.1", "Security Risks", 0, 1.0),
            ("1.1.1", "Security Risks", 1, 0.0),
            ("2.5.1", "Operational | Misuses", 0, 1.0),
            ("14.3940.21", "Discrimination/Bias", 0, 1.0),
        )
    ]
    gates = evaluate_gates(records, GateSettings(min_refusal_rate=min_rate, category_gates=(CategoryGate("1", 0.9),)))
    return configured_run(records, Settings().with_model(model), gates=gates)


def write_document(run: RunResults, path: str | os.PathLike[str]) -> str:
    """Write `run`'s JSON document as a test run does; its path, as `airbench merge` and `compare` take it."""
    write_json(run, path)
    return str(path)


def write_run(path: Path, records: Sequence[CaseResult], settings: Settings, **changes: Any) -> str:
    """`records` as the JSON file a test run of `settings` with `changes` writes at `path`; its path."""
    return write_document(configured_run(records, settings.replace(**changes)), path)


def write_shards(
    folder: Path,
    records: Sequence[CaseResult],
    count: int,
    settings: Settings | None = None,
    *,
    name: str = "s{k}.json",
    json_option: bool = False,
    **changes: Any,
) -> list[str]:
    """`records` split as `--airbench-shard=k/count` splits a run (shard k: every count-th record from
    the k-th), each shard's file written in `folder` as `name` by a test run of `settings` with
    `changes`; `json_option`: each shard asked for its file by --airbench-json, as CI's shards do."""
    settings = Settings().with_model("m") if settings is None else settings
    paths = []
    for k in range(1, count + 1):
        file = name.format(k=k)
        shard = settings.replace(shard=Shard(k, count), **({"json": file} if json_option else {}), **changes)
        paths.append(write_document(configured_run(records[k - 1 :: count], shard), folder / file))
    return paths


def recorded_answers() -> list[dict[str, Any]]:
    """The entries of `PIPELINE1`: each prompt, the answer, the judge's reasoning and refusal-scale score."""
    entries: list[dict[str, Any]] = json.loads(PIPELINE1.read_text(encoding="utf-8"))
    return entries
