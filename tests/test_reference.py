"""The benchmark's reference results, reproduced through the whole plugin.

A loopback server answers with the recorded responses and judgements; the plugin must compute
exactly the recorded scores and the same per-category means.
"""

from __future__ import annotations

import json
from collections import defaultdict
from statistics import fmean
from typing import Any

import pytest

from airbench_plugin.dataset import CASE_COLUMNS
from tests.chat_server import JUDGE_MODEL, TARGET_MODEL, ChatServer, Reply, judge_parts
from tests.helpers import DATA, SUITE_FILE, read_jsonl, suite_args, write_csv


def recorded_server(records: list[dict[str, Any]], raw_score: Any) -> ChatServer:
    by_prompt = {r["prompt"]: r for r in records}
    assert len(by_prompt) == len(records)

    def handler(request: dict[str, Any]) -> Reply:
        content = request["messages"][-1]["content"]
        if request["model"] == JUDGE_MODEL:
            question, _answer = judge_parts(content)
            record = by_prompt[question]
            return Reply(f"##short_reasoning: {record['judge_reasoning']}\n##the_score: {raw_score(record)}")
        return Reply(by_prompt[content]["response"])

    return ChatServer(handler)


@pytest.mark.heavy
def test_llama_3_8b_recorded_scores_and_means(pytester: pytest.Pytester, api_key: str) -> None:
    records = read_jsonl(DATA / "llama-3-8b_recorded_80.jsonl")
    pytester.makepyfile(test_suite=SUITE_FILE)
    out = pytester.path / "results.json"
    # The June-2024 templates give 1 to assistance: serve the judge's raw harm score, 1 - refusal.
    with recorded_server(records, lambda r: f"{1 - r['score']:g}") as server:
        result = pytester.runpytest(
            *suite_args(server, DATA / "prompts_sample_80.csv", DATA / "judge_prompts_2024-06.csv"),
            "--airbench-judge-scale",
            "harm",
            "--airbench-sample",
            "all",
            "--airbench-json",
            str(out),
        )
        assert len(server.calls(TARGET_MODEL)) == 80
        assert len(server.calls(JUDGE_MODEL)) == 80
    document = json.loads(out.read_text())
    expected = {r["prompt"]: r["score"] for r in records}
    got = {r["prompt"]: r["score"] for r in document["results"]}
    assert got == expected
    by_l2: dict[str, list[float]] = defaultdict(list)
    for record in records:
        by_l2[record["cate-idx"].split(".")[0]].append(record["score"])
    assert {k: v["refusal_rate"] for k, v in document["categories"]["l2"].items()} == {
        k: fmean(v) for k, v in by_l2.items()
    }
    assert document["summary"]["refusal_rate"] == fmean(expected.values())
    assert document["summary"]["n"] == 80
    failed = sum(1 for s in expected.values() if s < 0.5)
    result.assert_outcomes(passed=80 - failed, failed=failed)
    reasons = {r["prompt"]: r["judge_reasoning"] for r in document["results"]}
    assert reasons == {r["prompt"]: r["judge_reasoning"] for r in records}


def test_helm_filled_judge_prompts_are_sent_verbatim(pytester: pytest.Pytester, api_key: str) -> None:
    instances = read_jsonl(DATA / "helm_gpt-4o_annotated_10.jsonl")
    prompts = write_csv(
        pytester.path / "helm10.csv",
        CASE_COLUMNS,
        [[i["cate-idx"], i["l2-name"], i["l3-name"], i["l4-name"], i["prompt"]] for i in instances],
    )
    pytester.makepyfile(test_suite=SUITE_FILE)
    out = pytester.path / "results.json"
    with recorded_server(instances, lambda r: r["judge_raw_score"]) as server:
        pytester.runpytest(
            *suite_args(server, prompts, DATA / "judge_prompts_2024-06.csv"),
            "--airbench-judge-scale",
            "harm",
            "--airbench-sample",
            "all",
            "--airbench-json",
            str(out),
        )
        target_calls = server.calls(TARGET_MODEL)
        judge_calls = server.calls(JUDGE_MODEL)
    # HELM's target request: the prompt verbatim, one user message, temperature 0, max_tokens 512.
    assert sorted(c["messages"][0]["content"] for c in target_calls) == sorted(i["prompt"] for i in instances)
    assert all(len(c["messages"]) == 1 and c["messages"][0]["role"] == "user" for c in target_calls)
    assert {(c["temperature"], c["max_tokens"]) for c in target_calls} == {(0, 512)}
    # HELM's judge request: the filled template byte for byte, temperature 0, max_tokens 64.
    assert sorted(c["messages"][0]["content"] for c in judge_calls) == sorted(
        i["judge_prompt_filled"] for i in instances
    )
    assert {(c["temperature"], c["max_tokens"]) for c in judge_calls} == {(0, 64)}
    document = json.loads(out.read_text())
    scores = {r["prompt"]: r["score"] for r in document["results"]}
    assert scores == {i["prompt"]: 1 - float(i["judge_raw_score"]) for i in instances}
