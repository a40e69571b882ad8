"""The typed results model and its JSON form: round trip, earlier documents, hostile documents."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.gates import BaselineError, load_baseline
from airbench_plugin.results import (
    SCHEMA,
    CaseResult,
    Comparison,
    DatasetInfo,
    DeltaRow,
    FlippedPrompt,
    Gate,
    PlannedPrompt,
    ResultsError,
    RunResults,
    RunSettings,
    RunVerdict,
    Tally,
    TokenCount,
    load_results,
)
from airbench_plugin.stats import Z95, RateEstimate, wilson_interval
from tests.factories import case_result, run_results

V1 = Path(__file__).parent / "data" / "results_v1.json"


def record(cate: str, ordinal: int, score: float | None, **changes: Any) -> CaseResult:
    fields: dict[str, Any] = {
        "response": None if score is None else "I can't help with that.",
        "judge_reasoning": None if score is None else "refuses",
        "error": "the judge failed" if score is None else None,
        "target_tokens": (10, 5),
        "judge_tokens": (100, 3),
        **changes,
    }
    return case_result(
        cate,
        score,
        file="test_suite.py",
        test_id=f"{cate}-leaf-{ordinal}",
        names=(f"L2 {cate.split('.')[0]}", "L3", "leaf"),
        prompt=f"prompt {cate} {ordinal} \u00e9 \U0001f600",
        **fields,
    )


def full_run() -> RunResults:
    records = [record("1.1.6", 0, 1.0), record("1.1.6", 1, 0.0), record("2.5.1", 0, None), record("14.3940.21", 0, 0.5)]
    return run_results(
        reversed(records),
        model="gpt-4-turbo",
        judge_model="gpt-4o-2024-05-13",
        dataset=DatasetInfo("hf:stanford-crfm/air-bench-2024@976d9fb", "976d9fb", "default"),
        settings=RunSettings(seed=7, sample=None, categories=("1", "2"), other={"concurrency": 32, "json": "r.json"}),
        plan=[
            *(PlannedPrompt(f"{r.cate_idx}-leaf-0", r.cate_idx, r.nodeid, "scored") for r in records),
            PlannedPrompt("2.5.2-other-0", "2.5.2", None, "not_run", "deselected"),
        ],
        gates=[Gate("min-refusal-rate", "overall", 0.5, 0.5, True, "overall refusal rate 50.0% >= 50.0%")],
        comparison=Comparison(
            "old.json",
            "gpt-4",
            3,
            -0.25,
            {"1": DeltaRow("L2 1", 0.75, 0.5, -0.25)},
            (FlippedPrompt("n", "1.1.6", "p"),),
        ),
        verdict=RunVerdict("incomplete", 1, "gates", False, ("1 of 5 planned prompts was not run (deselected).",)),
        created="2026-11-22T21:40:00+00:00",
    )


def v1_document() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(V1.read_text(encoding="utf-8"))
    return data


# --- the round trip -------------------------------------------------------------------------------


def test_to_json_then_from_json_gives_the_same_run() -> None:
    run = full_run()
    document = json.loads(json.dumps(run.to_json()))
    assert document["schema"] == SCHEMA
    again = RunResults.from_json(document)
    assert again == run
    assert again.to_json() == run.to_json()


def test_records_are_in_taxonomy_order_and_aggregates_are_derived() -> None:
    run = full_run()
    assert [r.cate_idx for r in run.records] == ["1.1.6", "1.1.6", "2.5.1", "14.3940.21"]
    # Clusters 1.1.6 (scores 1 and 0) and 14.3940.21 (0.5) each average the overall 0.5: the clustered
    # SE is 0, so n_eff = n = 3 and the interval is Wilson's on 3 prompts.
    low, high = wilson_interval(0.5, 3, Z95)
    error_bar = RateEstimate(mean=0.5, n=3, stderr=0.0, n_effective=3.0, ci_low=low, ci_high=high)
    assert run.summary == Tally(n=3, refusal_rate=0.5, passed=2, failed=1, errors=1, estimate=error_bar)
    assert run.to_json()["summary"] == {
        "n": 3,
        "refusal_rate": 0.5,
        "passed": 2,
        "failed": 1,
        "errors": 1,
        "stderr": 0.0,
        "ci_low": pytest.approx(0.125334, abs=1e-6),
        "ci_high": pytest.approx(0.874666, abs=1e-6),
        "n_effective": 3.0,
    }
    assert run.to_json()["confidence"] == 0.95
    assert list(run.aggregates.levels["l2"]) == ["1", "2", "14"]
    assert run.aggregates.levels["l4"]["14.3940.21"].tally.refusal_rate == 0.5
    assert run.usage == {"target": TokenCount(40, 20), "judge": TokenCount(400, 12)}
    assert run.to_json()["settings"]["sample"] == "all"
    assert run.to_json()["settings"]["concurrency"] == 32  # options without a typed field are kept as written


def test_a_hand_edited_summary_cannot_disagree_with_the_records() -> None:
    document = full_run().to_json()
    document["summary"]["refusal_rate"] = 1.0
    document["categories"]["l2"]["1"]["n"] = 999
    assert RunResults.from_json(document).summary.refusal_rate == 0.5


# --- documents written by earlier versions ------------------------------------------------------


def kept(new: object, old: object) -> object:
    """`new` restricted to the keys `old` has, at every depth: what an old document said, as rewritten."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {key: kept(new.get(key), value) for key, value in old.items()}
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [kept(n, o) for n, o in zip(new, old, strict=True)]
    if isinstance(new, float) and isinstance(old, float):
        return pytest.approx(new, abs=5e-7)  # derived figures are presented to 6 decimals now
    return new


def test_a_document_without_schema_from_version_0_1_reads_with_its_meaning_kept() -> None:
    document = v1_document()
    assert "schema" not in document
    run = RunResults.from_json(document)
    assert run.schema == 1
    assert (run.model, run.judge_model, run.settings.seed, run.settings.sample) == (
        "gpt-4-turbo",
        "gpt-4o-2024-05-13",
        7,
        5,
    )
    assert run.dataset.revision == "976d9fbb0f52bce704dcbef5bd7a2652e65f2a21"
    # What version 0.1 wrote reads back unchanged (the error bars added since are derived or null).
    assert kept(run.summary.to_json(), document["summary"]) == document["summary"]
    assert kept(run.aggregates.categories_json(), document["categories"]) == document["categories"]
    assert kept([g.to_json() for g in run.gates], document["gates"]) == document["gates"]
    assert {(gate.rule, gate.interval, gate.stderr) for gate in run.gates} == {("estimate", None, None)}
    assert run.gates_status == document["gate_verdict"] == "failed"
    # Records from before the judge layer have no per-judge entries, and version 0.1 knew nothing
    # of the cache: every count reads as paid by that run.
    no_cache = {"cached_prompt_tokens": 0, "cached_completion_tokens": 0}
    assert {k: v.to_json() for k, v in run.usage.items()} == {
        k: {**v, **no_cache} for k, v in document["usage"].items()
    }
    not_cached = {"target_cached": False, "judge_cached": False}
    assert [r.to_json() for r in run.records] == [{**r, "judges": {}, **not_cached} for r in document["results"]]
    assert run.settings.other["category_gates"] == {"1": 0.9}
    # Without a recorded plan, the plan is exactly the prompts it has results for.
    assert [(p.test_id, p.status) for p in run.plan] == [
        ("1.1.6-unauthorized-network-entry-0", "scored"),
        ("1.1.6-unauthorized-network-entry-1", "scored"),
        ("2.5.1-financing-eligibility-creditworthiness-0", "errored"),
        ("14.3940.21-race-0", "scored"),
    ]
    assert run.counts.complete
    rewritten = run.to_json()
    assert rewritten["schema"] == SCHEMA
    for key in (
        "model",
        "judge_model",
        "dataset",
        "summary",
        "categories",
        "gates",
        "gate_verdict",
    ):
        assert kept(rewritten[key], document[key]) == document[key], key
    # Fields added since, with the meaning the old file had: nothing was read from the cache.
    assert rewritten["usage"] == {k: {**v, **no_cache} for k, v in document["usage"].items()}
    assert rewritten["results"] == [{**r, "judges": {}, **not_cached} for r in document["results"]]


def test_a_document_from_a_newer_version_is_refused_in_one_sentence() -> None:
    document = full_run().to_json()
    document["schema"] = SCHEMA + 1
    with pytest.raises(ResultsError) as caught:
        RunResults.from_json(document)
    assert str(caught.value) == (
        f"it was written by a newer pytest-airbench (schema {SCHEMA + 1}; this version reads up to {SCHEMA})"
    )


# --- hostile and malformed documents: one clause each, never a traceback ----------------------------


def _set(path: str, value: object) -> Any:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def _drop(key: str) -> Any:
    return lambda document: document.pop(key)


MALFORMED = [
    pytest.param(_set("results.0.score", 10**400), "results[0].score is a number outside 0 to 1", id="huge-score"),
    pytest.param(
        _set("results.0.score", float("nan")),
        "results[0].score is not a finite number, not a number from 0 to 1",
        id="nan-score",
    ),
    pytest.param(
        _set("results.0.score", "1"), "results[0].score is a string, not a number from 0 to 1", id="string-score"
    ),
    pytest.param(_set("results.0.score", True), "results[0].score is true, not a number from 0 to 1", id="bool-score"),
    pytest.param(_set("results.1.cate_idx", ["1", "1"]), "results[1].cate_idx is a list, not a string", id="list-cate"),
    pytest.param(
        _set("results.1.cate_idx", "1/2"), "results[1].cate_idx is not a cate-idx such as '14.3940.21'", id="slash-cate"
    ),
    pytest.param(
        _set("results.2.outcome", "crashed"),
        "results[2].outcome is an unknown value, not one of 'passed', 'failed', 'error'",
        id="outcome",
    ),
    pytest.param(
        _set("results.0.target_tokens", [1]),
        "results[0].target_tokens is not a pair [prompt_tokens, completion_tokens]",
        id="tokens-pair",
    ),
    pytest.param(
        _set("results.0.judge_tokens", [1, -5]),
        "results[0].judge_tokens[1] is a whole number outside 0 to 1,000,000,000,000,000",
        id="tokens-negative",
    ),
    pytest.param(_set("results.0", "x"), "results[0] is a string, not an object", id="result-string"),
    pytest.param(lambda d: d["results"][0].pop("prompt"), "results[0] has no 'prompt' field", id="no-prompt"),
    pytest.param(_set("results", {}), "results is an object, not a list", id="results-object"),
    pytest.param(_drop("results"), "it has no 'results' field", id="no-results"),
    pytest.param(_drop("model"), "it has no 'model' field", id="no-model"),
    pytest.param(
        _set("summary.refusal_rate", "0.9"),
        "summary.refusal_rate is a string, not a number from 0 to 1",
        id="summary-rate",
    ),
    pytest.param(_set("categories.l2", []), "categories.l2 is a list, not an object", id="categories-list"),
    pytest.param(
        _set("gates.0.name", "max-errors"),
        "gates[0].name is an unknown value, not one of "
        "'min-refusal-rate', 'category', 'max-error-rate', 'max-regression', 'min-judge-agreement'",
        id="gate-kind",
    ),
    pytest.param(_set("gates.0.passed", "yes"), "gates[0].passed is a string, not true or false", id="gate-passed"),
    pytest.param(
        _set("baseline", {"l2": {"1": {"delta": 1e308}}}),
        "baseline.l2.1.delta is a number outside -1 to 1",
        id="baseline-delta",
    ),
    pytest.param(
        _set("settings.seed", 1.5),
        "settings.seed is a number, not a whole number from -9,223,372,036,854,775,808 to 18,446,744,073,709,551,615",
        id="seed",
    ),
    pytest.param(
        _set("settings.json", [[["deep"]]]),
        "settings.json is a list holding more than plain values",
        id="nested-setting",
    ),
    pytest.param(
        _set("plan.0.status", "done"),
        "plan[0].status is an unknown value, not one of 'scored', 'errored', 'not_run'",
        id="plan-status",
    ),
    pytest.param(
        _set("verdict.exit_status", 300), "verdict.exit_status is a whole number outside 0 to 255", id="exit-status"
    ),
    pytest.param(_set("schema", "2"), "schema is a string, not a whole number from 1 to 1,000,000", id="schema-string"),
]


@pytest.mark.parametrize(("change", "message"), MALFORMED)
def test_a_malformed_document_is_one_clause_naming_the_field(change: Any, message: str) -> None:
    document = copy.deepcopy(full_run().to_json())
    change(document)
    with pytest.raises(ResultsError) as caught:
        RunResults.from_json(document)
    assert str(caught.value) == message


def test_a_document_that_is_not_an_object() -> None:
    with pytest.raises(ResultsError, match=r"^the document is a list, not an object$"):
        RunResults.from_json([1, 2])


def test_deep_nesting_is_one_clause(tmp_path: Path) -> None:
    deep: Any = []
    for _ in range(5_000):  # five times the recursion limit
        deep = [deep]
    document = full_run().to_json()
    document["results"] = deep
    with pytest.raises(ResultsError, match=r"^results\[0\] is a list, not an object$"):
        RunResults.from_json(document)
    path = tmp_path / "deep.json"
    path.write_text('{"results": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(ResultsError, match=r"^the document is nested too deeply$"):
        load_results(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe not text", "it is not UTF-8 text"),
        (b"{not json", "it is not JSON (Expecting property name enclosed in double quotes)"),
        (b'{"score": ' + b"9" * 5000 + b"}", "it is not JSON (it holds a number too long to read)"),
    ],
)
def test_unreadable_files_are_one_clause(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(ResultsError) as caught:
        load_results(path)
    assert str(caught.value) == message


def test_the_baseline_loader_says_which_file_and_why(tmp_path: Path) -> None:
    document = full_run().to_json()
    document["results"][0]["score"] = 10**400
    path = tmp_path / "old.json"
    path.write_text(json.dumps(document))
    with pytest.raises(BaselineError) as caught:
        load_baseline(path)
    assert str(caught.value) == (
        f"the baseline {str(path)!r} is not a usable --airbench-json file: results[0].score is a number outside 0 to 1."
    )
    path.write_text(json.dumps(full_run().to_json()))
    assert load_baseline(path) == full_run()
