"""Unit tests of the responses-file readers: every shape recognised by content, every refusal one sentence."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.responses import RecordedAnswers, ResponsesError, read_responses
from tests.helpers import DATA

PIPELINE1 = DATA / "responses" / "pipeline1_step2_llama-3-8b.json"
PIPELINE2 = DATA / "responses" / "pipeline2_step2_llama-3-8b.csv"
HELM = DATA / "responses" / "helm_run"
AIRBENCH = DATA / "responses" / "airbench_run.json"
SHAPES = (
    "the authors' pipeline-1 JSON, their pipeline-2 CSV, a HELM air_bench_2024 run directory "
    "(with scenario_state.json) or a file written by --airbench-json"
)


def pipeline1_entries() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(PIPELINE1.read_text(encoding="utf-8"))
    return entries


def pairs(recorded: RecordedAnswers) -> list[tuple[str, str, str, str, str, str]]:
    return [(c.cate_idx, c.l2_name, c.l3_name, c.l4_name, c.prompt, recorded.answer(c.prompt)) for c in recorded.cases]


@pytest.mark.parametrize(
    ("path", "fmt", "model"),
    [
        pytest.param(PIPELINE1, "pipeline1", None, id="pipeline1"),
        pytest.param(PIPELINE2, "pipeline2", None, id="pipeline2"),
        pytest.param(HELM, "helm", "meta/llama-3-8b-chat", id="helm-dir"),
        pytest.param(HELM / "scenario_state.json", "helm", "meta/llama-3-8b-chat", id="helm-file"),
        pytest.param(AIRBENCH, "airbench-json", "meta/llama-3-8b-chat", id="airbench-json"),
    ],
)
def test_each_format_is_recognised_by_content_and_gives_the_same_cases(
    path: Path, fmt: str, model: str | None, tmp_path: Path
) -> None:
    # Recognition never looks at the name: copy each file to a name that says nothing.
    if path.is_file():
        anonymous = tmp_path / "answers.dat"
        shutil.copy(path, anonymous)
        path = anonymous
    recorded = read_responses(path)
    assert recorded.format == fmt
    assert recorded.model == model
    expected = sorted(
        (e["cate_idx"], e["l2_name"], e["l3_name"], e["l4_name"], e["prompt"][0]["prompt"], e["response"])
        for e in pipeline1_entries()
    )
    assert sorted(pairs(recorded)) == expected
    # Taxonomy order, numbered within each level-4 category: the same test ids as a sampled run.
    assert [c.cate_idx for c in recorded.cases] == ["1.1.6", "2.5.11", "3.8.6", "8.27.18", "14.3940.34", "15.4142.47"]
    assert {c.ordinal for c in recorded.cases} == {0}


def test_step1_files_without_reason_and_score_read_the_same(tmp_path: Path) -> None:
    entries = pipeline1_entries()
    for entry in entries:
        del entry["reason"], entry["score"]
    step1 = tmp_path / "step1.json"
    step1.write_text(json.dumps(entries), encoding="utf-8")
    with PIPELINE2.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    csv1 = tmp_path / "step1.csv"
    with csv1.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(row[:6] for row in rows)
    assert pairs(read_responses(step1)) == pairs(read_responses(PIPELINE1))
    assert pairs(read_responses(csv1)) == pairs(read_responses(PIPELINE1))


def test_duplicate_prompts_are_numbered_within_their_category(tmp_path: Path) -> None:
    entries = pipeline1_entries()
    twin = dict(entries[0], prompt=[{"prompt": "another prompt"}], response="another answer")
    path = tmp_path / "p1.json"
    path.write_text(json.dumps([*entries, twin]), encoding="utf-8")
    cases = [c for c in read_responses(path).cases if c.cate_idx == "1.1.6"]
    assert [(c.ordinal, c.prompt) for c in cases] == [(0, entries[0]["prompt"][0]["prompt"]), (1, "another prompt")]


def refusal(path: Path) -> str:
    with pytest.raises(ResponsesError) as info:
        read_responses(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_missing_answer_is_one_sentence_in_every_format(tmp_path: Path) -> None:
    entries = pipeline1_entries()
    del entries[2]["response"]
    p1 = tmp_path / "p1.json"
    p1.write_text(json.dumps(entries), encoding="utf-8")
    assert refusal(p1) == (
        f"--airbench-responses: entry 3 of {str(p1)!r} (cate-idx 3.8.6) has no answer; "
        "every prompt needs its recorded response."
    )

    text = PIPELINE2.read_text(encoding="utf-8")
    with PIPELINE2.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows[2][5] = ""
    p2 = tmp_path / "p2.csv"
    with p2.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    assert text != p2.read_text(encoding="utf-8")
    assert refusal(p2) == (
        f"--airbench-responses: row 2 of {str(p2)!r} (cate-idx 2.5.11) has no answer; "
        "every prompt needs its recorded response."
    )

    state = json.loads((HELM / "scenario_state.json").read_text(encoding="utf-8"))
    state["request_states"][1]["result"] = {"success": False, "error": "rate limited", "completions": []}
    helm = tmp_path / "helm"
    helm.mkdir()
    (helm / "scenario_state.json").write_text(json.dumps(state), encoding="utf-8")
    assert refusal(helm) == (
        f"--airbench-responses: instance id106 of {str(helm)!r} (cate-idx 2.5.11) has no answer; "
        "every prompt needs its recorded response."
    )

    document = json.loads(AIRBENCH.read_text(encoding="utf-8"))
    document["results"][0]["response"] = None
    own = tmp_path / "run.json"
    own.write_text(json.dumps(document), encoding="utf-8")
    nodeid = document["results"][0]["nodeid"]
    assert refusal(own) == (
        f"--airbench-responses: result 1 ({nodeid}) of {str(own)!r} (cate-idx 1.1.6) has no answer; "
        "every prompt needs its recorded response."
    )


def test_files_in_no_known_shape_are_one_sentence(tmp_path: Path) -> None:
    cases = {
        "notes.txt": ("just some notes\nabout a model\n", ""),
        "other.json": ('{"data": [1, 2, 3]}', " (a JSON document of another kind)"),
        "broken.json": ('[{"cate_idx": "1.1.1",', " (invalid JSON at line 1)"),
        "empty.json": ("[]", " (a JSON document of another kind)"),
        "helm.json": ('{"request_states": [{"instance": {"input": {"text": "hi"}}}]}', None),
    }
    for name, (content, detail) in cases.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        if detail is None:
            detail = " (request state 1 lacks the prompt, cate-idx or category names of air_bench_2024)"
        expected = f"--airbench-responses: {str(path)!r} is in none of the known shapes{detail}: use {SHAPES}."
        assert refusal(path) == expected


def test_a_prompts_file_without_answers_names_the_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "prompts.csv"
    path.write_text("cate-idx,l2-name,l3-name,l4-name,prompt\n1.1.1,a,b,c,hello\n", encoding="utf-8")
    assert refusal(path) == (
        f"--airbench-responses: the CSV file {str(path)!r} lacks the column(s) response of the authors' "
        "pipeline-2 format (cate-idx, l2-name, l3-name, l4-name, prompt, response)."
    )


def test_missing_paths_and_directories_without_helm_state(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    assert refusal(missing) == f"--airbench-responses: cannot read {str(missing)!r}: no such file or directory."
    assert refusal(tmp_path) == (
        f"--airbench-responses: the directory {str(tmp_path)!r} has no scenario_state.json; "
        "pass a HELM run directory of air_bench_2024 or a responses file."
    )
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert refusal(binary) == f"--airbench-responses: cannot read {str(binary)!r}: it is not UTF-8 text."


def test_one_prompt_with_two_answers_is_refused(tmp_path: Path) -> None:
    entries = pipeline1_entries()
    twin = dict(entries[0], response="a different answer")
    path = tmp_path / "p1.json"
    path.write_text(json.dumps([*entries, twin]), encoding="utf-8")
    assert refusal(path) == (
        f"--airbench-responses: the prompt of entry 7 of {str(path)!r} (cate-idx 1.1.6) appears earlier "
        "with another answer; keep one answer per prompt."
    )


def test_an_entry_without_its_category_is_refused(tmp_path: Path) -> None:
    entries = pipeline1_entries()
    del entries[1]["l3_name"]
    path = tmp_path / "p1.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    assert refusal(path) == f"--airbench-responses: entry 2 of {str(path)!r} has no 'l3_name' text."


def test_a_damaged_airbench_json_file_says_which_field(tmp_path: Path) -> None:
    document = json.loads(AIRBENCH.read_text(encoding="utf-8"))
    document["results"][2]["outcome"] = "maybe"
    path = tmp_path / "run.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    message = refusal(path)
    assert message.startswith(f"--airbench-responses: {str(path)!r} is not a usable --airbench-json file: results[2]")
    assert message.endswith(".")
