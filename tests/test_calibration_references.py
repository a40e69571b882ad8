"""The reference inputs of `airbench calibrate`, each recognised by its content, and every bad input
as the one sentence the user sees."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.calibration.references import ReferenceError, read_reference
from airbench_plugin.cli import build_parser, main
from airbench_plugin.cli.calibrate import calibrate_options
from airbench_plugin.options import ENDPOINT_OPTIONS
from tests.factories import PIPELINE1, recorded_answers
from tests.helpers import DATA, read_jsonl

RESPONSES = DATA / "responses"


def recorded() -> dict[str, float]:
    """The six recorded answers' refusal scores, by prompt."""
    return {e["prompt"][0]["prompt"]: e["score"] for e in recorded_answers()}


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        (PIPELINE1, "pipeline1"),
        (RESPONSES / "pipeline2_step2_llama-3-8b.csv", "pipeline2"),
        (RESPONSES / "airbench_run.json", "airbench-json"),
    ],
)
def test_the_authors_step2_files_and_our_json_hold_refusal_scale_official_scores(path: Path, shape: str) -> None:
    reference = read_reference(path)
    assert (reference.format, reference.judge, reference.skipped) == (shape, "gpt-4o-2024-05-13", 0)
    assert {item.case.prompt: item.official for item in reference.items} == recorded()


def helm_state(folder: Path, scale_rows: list[dict[str, Any]]) -> Path:
    """A HELM run directory of the ten annotated gpt-4o answers, annotations as HELM writes them."""
    states = [
        {
            "instance": {
                "input": {"text": row["prompt"]},
                "references": [
                    {"output": {"text": row[key]}, "tags": []} for key in ("cate-idx", "l2-name", "l3-name", "l4-name")
                ],
                "id": f"id{number}",
            },
            "request": {"model": "openai/gpt-4o-2024-05-13", "prompt": row["prompt"]},
            "result": {"success": True, "completions": [{"text": row["response"]}]},
            "annotations": {
                "air_bench_2024": {
                    "prompt_text": row["judge_prompt_filled"],
                    "reasoning": row["judge_reasoning"],
                    "score": row["judge_raw_score"],
                }
            },
        }
        for number, row in enumerate(scale_rows)
    ]
    folder.mkdir()
    state = {"adapter_spec": {"model": "openai/gpt-4o-2024-05-13"}, "request_states": states}
    (folder / "scenario_state.json").write_text(json.dumps(state), encoding="utf-8")
    return folder


def test_a_helm_run_is_converted_by_the_scale_its_judge_prompts_read(tmp_path: Path) -> None:
    rows = read_jsonl(DATA / "helm_gpt-4o_annotated_10.jsonl")
    reference = read_reference(helm_state(tmp_path / "helm", rows))
    assert (reference.format, reference.judge) == ("helm", "gpt-4o-2024-05-13")
    # The June-2024 templates give 1 to assistance: the refusal score is 1 - raw.
    assert {item.case.prompt: item.official for item in reference.items} == {
        row["prompt"]: 1.0 - row["judge_raw_score"] for row in rows
    }


def test_a_plain_csv_or_jsonl_of_labels_is_read_with_or_without_category_names(tmp_path: Path) -> None:
    rows = [["1.1.6", "Hack the bank.", "No.", "1"], ["2.5.1", "Score me.", "Sure: 700.", "0.0"]]
    path = tmp_path / "labels.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["cate-idx", "prompt", "response", "score"], *rows])
    reference = read_reference(path)
    assert (reference.format, reference.judge) == ("plain", None)
    assert [(i.case.cate_idx, i.case.l2_name, i.official) for i in reference.items] == [
        ("1.1.6", "", 1.0),
        ("2.5.1", "", 0.0),
    ]
    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_text(
        "\n".join(
            json.dumps({"cate-idx": c, "l2-name": "L2", "prompt": p, "response": r, "score": float(s)})
            for c, p, r, s in rows
        ),
        encoding="utf-8",
    )
    assert [(i.case.l2_name, i.official) for i in read_reference(jsonl).items] == [("L2", 1.0), ("L2", 0.0)]


def test_the_shipped_set_is_the_90_recorded_official_judgements() -> None:
    reference = read_reference(None)
    assert (reference.format, reference.judge, len(reference.items)) == ("shipped", "gpt-4o-2024-05-13", 90)
    llama = {row["prompt"]: row["score"] for row in read_jsonl(DATA / "llama-3-8b_recorded_80.jsonl")}
    helm = {
        row["response"]: 1.0 - row["judge_raw_score"] for row in read_jsonl(DATA / "helm_gpt-4o_annotated_10.jsonl")
    }
    for item in reference.items:
        assert item.official == helm.get(item.response, llama.get(item.case.prompt))
    # 61 of the 80 recorded Llama-3-8b answers... are refusals scored 1.0 (64 here, as the issue counts).
    assert sum(1 for score in llama.values() if score == 1.0) == 64


def test_answers_no_judge_saw_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    lines = [
        {"cate-idx": "1.1.6", "prompt": "a", "response": "No.", "score": 1},
        {"cate-idx": "1.1.6", "prompt": "b", "response": "  ", "score": 1},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    reference = read_reference(path)
    assert (len(reference.items), reference.skipped) == (1, 1)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ('{"results": []}', "x.json", "{path!r} is in none of the known shapes (a JSON document of another kind): use"),
        ("cate-idx,prompt,response\n1.1.1,a,b\n", "x.csv", "the CSV file {path!r} has no score column"),
        (
            "cate-idx,prompt,response,score\n1.1.1,a,b,0.7\n",
            "x.csv",
            "row 1 of {path!r} (cate-idx 1.1.1) has no score of 0, 0.5 or 1 on the refusal scale (1 = refused); "
            "a reference needs the judge's score for every answer.",
        ),
        (
            '[{"cate_idx": "1.1.1", "prompt": [{"prompt": "a"}], "response": "b"}]',
            "x.json",
            "entry 1 of {path!r} has no 'score'",
        ),
        ("cate-idx,prompt,response,score\n1.1.1,a,,1\n", "x.csv", "{path!r} holds no answer a judge scored."),
    ],
)
def test_bad_references_are_one_sentence(tmp_path: Path, content: str, name: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ReferenceError) as raised:
        read_reference(path)
    assert str(raised.value).startswith(message.format(path=str(path)))


def test_the_command_says_bad_input_in_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text("cate-idx,prompt,response,score\n1.1.1,a,b,1\n", encoding="utf-8")
    mixed = [str(PIPELINE1), str(labels)]
    cases = [
        (["--judge-model=m", "missing.csv"], "cannot read 'missing.csv': no such file or directory."),
        (["--judge-model=m", str(labels), str(labels)], "a reference file is named twice; name each once."),
        (
            ["--judge-model=m", *mixed],
            f"the references were scored by different judges ({str(PIPELINE1)!r} by gpt-4o-2024-05-13, "
            f"{str(labels)!r} by unnamed labels); calibrate against one at a time.",
        ),
        (["--judge-model=m", "--max-bias=x"], "--max-bias: expected a number between 0 and 1, got 'x'."),
        # The candidate's endpoint options are the run's, with the run's validators.
        (
            ["--judge-model=m", "--judge-provider=azure"],
            "--judge-provider: expected one of auto, openai, together, got 'azure'.",
        ),
        (["--judge-model=m", "--judge-rpm=0"], "--judge-rpm: expected a whole number of at least 1, got '0'."),
        (
            ["--judge-model=m", "--judge-reasoning-effort=max"],
            "--judge-reasoning-effort: expected one of none, minimal, low, medium, high, got 'max'.",
        ),
        (
            ["--judge-model=gpt-5-mini", str(labels)],
            "AIR-Bench needs an API key for the judge (gpt-5-mini via openai): set OPENAI_API_KEY (or OPENAI_KEY) in "
            "the environment or in a .env file in the working directory.",
        ),
        (
            ["--judge-model=m", "--judge-api-key-env=MY_KEY", str(labels)],
            "--judge-api-key-env: the variable MY_KEY is not set, neither in the environment nor in a .env file in the "
            "working directory; set it or drop the option.",
        ),
    ]
    for args, message in cases:
        assert main(["calibrate", *args], environ={}) == 2
        out, err = capsys.readouterr()
        assert (out, err) == ("", f"airbench calibrate: {message}\n"), args


def test_a_csv_reference_reads_long_answers_and_exported_formula_cells_as_a_run_does(tmp_path: Path) -> None:
    """The same CSV rules as --airbench-responses: no field limit below a model's longest answer, and a
    cell `airbench export` neutralised with `'` read back as the model wrote it."""
    long_answer = "No. " * 50_000  # 200,000 characters: over the csv module's default field limit
    rows = [["1.1.6", "Hack the bank.", long_answer, "1"], ["2.5.1", "Score me.", "'=SUM(A1:A9)", "0"]]
    path = tmp_path / "labels.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["cate-idx", "prompt", "response", "score"], *rows])
    reference = read_reference(path)
    assert [i.response for i in reference.items] == [long_answer, "=SUM(A1:A9)"]


def test_every_judge_endpoint_option_of_a_run_sets_the_candidate_judge() -> None:
    """One declaration (options.ENDPOINT_OPTIONS) serves a run's `--airbench-judge-*` options and this
    command's `--judge-*` ones: an option added to every endpoint is here too, and reaches the endpoint."""
    values = {
        "model": "gpt-5-mini",
        "provider": "together",
        "base-url": "http://127.0.0.1:9/v1",
        "api-key-env": "MY_JUDGE_KEY",
        "max-tokens": "100",
        "rpm": "60",
        "tpm": "6000",
        "reasoning-effort": "low",
    }
    assert sorted(option.name for option in ENDPOINT_OPTIONS) == sorted(values)
    args = build_parser().parse_args(["calibrate", *(f"--judge-{name}={value}" for name, value in values.items())])
    judge = calibrate_options(args).judge
    assert (judge.role, judge.model, judge.provider, judge.base_url, judge.api_key_env) == (
        "judge",
        "gpt-5-mini",
        "together",
        "http://127.0.0.1:9/v1",
        "MY_JUDGE_KEY",
    )
    assert (judge.max_tokens, judge.rpm, judge.tpm, judge.reasoning_effort) == (100, 60, 6000, "low")
