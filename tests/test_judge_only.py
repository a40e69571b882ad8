"""Judge-only runs (`--airbench-responses`): recorded answers replace the model under test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.dataset import content_revision
from tests.chat_server import JUDGE_MODEL, ChatServer, Reply, judge_parts
from tests.factories import PIPELINE1, recorded_answers
from tests.helpers import DATA, FAKE_KEY, SUITE_FILE, assert_usage_error

RESPONSES = DATA / "responses"
JUDGE_PROMPTS = DATA / "judge_prompts_2024-06.csv"
FORMATS = [
    pytest.param(PIPELINE1, id="pipeline1"),
    pytest.param(RESPONSES / "pipeline2_step2_llama-3-8b.csv", id="pipeline2"),
    pytest.param(RESPONSES / "helm_run", id="helm"),
    pytest.param(RESPONSES / "airbench_run.json", id="airbench-json"),
]


def replay_judge(entries: list[dict[str, Any]]) -> ChatServer:
    """A judge that gives each recorded answer its recorded judgement, on the June templates' harm scale."""
    by_prompt = {e["prompt"][0]["prompt"]: e for e in entries}

    def handler(request: dict[str, Any]) -> Reply:
        assert request["model"] == JUDGE_MODEL, "only the judge may be called"
        question, answer = judge_parts(request["messages"][-1]["content"])
        entry = by_prompt[question]
        assert answer == entry["response"]
        return Reply(f"##short_reasoning: {entry['reason']}\n##the_score: {1 - entry['score']:g}")

    return ChatServer(handler)


@pytest.fixture
def judge_server() -> Iterator[ChatServer]:
    with replay_judge(recorded_answers()) as server:
        yield server


def judge_only_args(server: ChatServer, responses: Path | str, *extra: str) -> list[str]:
    return [
        f"--airbench-responses={responses}",
        f"--airbench-judge-model={JUDGE_MODEL}",
        f"--airbench-judge-base-url={server.v1_url}",
        f"--airbench-judge-prompts={JUDGE_PROMPTS}",
        "--airbench-judge-scale=harm",
        "--airbench-no-cache",
        "-p",
        "no:cacheprovider",
        *extra,
    ]


@pytest.mark.parametrize("responses", FORMATS)
def test_every_format_is_judged_with_its_recorded_answers_only(
    pytester: pytest.Pytester, judge_server: ChatServer, api_key: str, responses: Path
) -> None:
    pytester.makepyfile(test_suite=SUITE_FILE)
    out = pytester.path / "run.json"
    result = pytester.runpytest(*judge_only_args(judge_server, responses, f"--airbench-json={out}"))
    entries = recorded_answers()
    failed = sum(1 for e in entries if e["score"] < 0.5)
    result.assert_outcomes(passed=len(entries) - failed, failed=failed)
    # One judge call per prompt and nothing else: the model under test is the file.
    calls = judge_server.calls()
    assert len(calls) == len(entries)
    assert {c["model"] for c in calls} == {JUDGE_MODEL}
    document = json.loads(out.read_text(encoding="utf-8"))
    # The recorded scores are not read: the judge decides.
    assert {r["prompt"]: r["score"] for r in document["results"]} == {
        e["prompt"][0]["prompt"]: e["score"] for e in entries
    }
    assert {r["prompt"]: r["response"] for r in document["results"]} == {
        e["prompt"][0]["prompt"]: e["response"] for e in entries
    }
    assert document["settings"]["provider"] == "recorded"
    # The recorded answers' file is the dataset: its content hash is its revision (a HELM directory has none).
    revision = content_revision(responses)
    assert document["dataset"] == {"source": str(responses), "revision": revision, "region": "default"}
    result.stdout.fnmatch_lines([f"airbench: answers recorded in {responses} (*, 6 prompts)"])
    assert FAKE_KEY not in out.read_text(encoding="utf-8")


def test_the_model_name_comes_from_the_option_the_file_or_the_file_name(
    pytester: pytest.Pytester, judge_server: ChatServer, api_key: str
) -> None:
    pytester.makepyfile(test_suite=SUITE_FILE)
    for responses, extra, model in (
        (RESPONSES / "helm_run", (), "meta/llama-3-8b-chat"),
        (PIPELINE1, (), "pipeline1_step2_llama-3-8b"),
        (PIPELINE1, ("--airbench-model=llama-3-8b-chat",), "llama-3-8b-chat"),
    ):
        out = pytester.path / "run.json"
        pytester.runpytest(*judge_only_args(judge_server, responses, f"--airbench-json={out}", *extra))
        assert json.loads(out.read_text(encoding="utf-8"))["model"] == model


def test_every_prompt_of_the_file_runs_without_sampling(
    pytester: pytest.Pytester, judge_server: ChatServer, api_key: str
) -> None:
    entries = recorded_answers()
    first = entries[0]
    extra = [dict(first, prompt=[{"prompt": f"{first['prompt'][0]['prompt']} (variant {i})"}]) for i in range(6)]
    responses = pytester.path / "answers.json"
    responses.write_text(json.dumps(entries + extra), encoding="utf-8")
    with replay_judge(entries + extra) as server:
        pytester.makepyfile(test_suite=SUITE_FILE)
        result = pytester.runpytest(*judge_only_args(server, responses, "--airbench-sample=1", "-v"))
        # Seven prompts of category 1.1.6 and one of each other category: sampling does not apply.
        result.assert_outcomes(passed=10, failed=2)
        assert len(server.calls()) == 12
    result.stdout.fnmatch_lines(["*test_airbench?1.1.6-unauthorized-network-entry-6? PASSED*"])


def test_a_category_without_a_judge_template_stops_before_any_call(
    pytester: pytest.Pytester, judge_server: ChatServer, api_key: str
) -> None:
    entries = recorded_answers()
    entries[1]["cate_idx"] = "2.5.99"
    responses = pytester.path / "answers.json"
    responses.write_text(json.dumps(entries), encoding="utf-8")
    pytester.makepyfile(test_suite=SUITE_FILE)
    result = pytester.runpytest(*judge_only_args(judge_server, responses))
    message = (
        f"AIR-Bench: the judge templates in {str(JUDGE_PROMPTS)!r} have no entry for cate-idx 2.5.99; "
        f"every prompt of {str(responses)!r} needs its category's template (pass --airbench-judge-prompts)."
    )
    assert_usage_error(result, message)
    assert judge_server.calls() == []


def test_a_missing_answer_stops_before_any_call(
    pytester: pytest.Pytester, judge_server: ChatServer, api_key: str
) -> None:
    entries = recorded_answers()
    entries[4]["response"] = None
    responses = pytester.path / "answers.json"
    responses.write_text(json.dumps(entries), encoding="utf-8")
    pytester.makepyfile(test_suite=SUITE_FILE)
    result = pytester.runpytest(*judge_only_args(judge_server, responses))
    message = (
        f"--airbench-responses: entry 5 of {str(responses)!r} (cate-idx 14.3940.34) has no answer; "
        "every prompt needs its recorded response."
    )
    assert_usage_error(result, message)
    assert judge_server.calls() == []


def test_an_unknown_shape_stops_before_any_call(
    pytester: pytest.Pytester, judge_server: ChatServer, api_key: str
) -> None:
    responses = pytester.path / "answers.txt"
    responses.write_text("model answers, one per line\n", encoding="utf-8")
    pytester.makepyfile(test_suite=SUITE_FILE)
    result = pytester.runpytest(*judge_only_args(judge_server, responses))
    assert_usage_error(
        result,
        f"--airbench-responses: {str(responses)!r} is in none of the known shapes: use the authors' "
        "pipeline-1 JSON, their pipeline-2 CSV, a HELM air_bench_2024 run directory (with scenario_state.json) "
        "or a file written by --airbench-json.",
    )
    assert judge_server.calls() == []
