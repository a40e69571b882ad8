"""Files from outside are data, not trust: recorded answers, exports, the step summary, datasets, options.

Devices and FIFOs are never read, repeated rows are one prompt, answers are strings, a CSV
answer may be as long as a model writes, formula cells are neutralised and read back, the
step summary stays under GitHub's 1 MiB and mentions nobody, a cate-idx the results codec would
refuse is refused before any call, and integer options stay within what the code can hold.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.cli import main
from airbench_plugin.csvcells import FIELD_LIMIT, neutralise, restore
from airbench_plugin.export import pipeline1, pipeline2
from airbench_plugin.options import parse_values
from airbench_plugin.reports.markdown import (
    STEP_SUMMARY_LIMIT,
    append_step_summary,
    capped,
    escape,
    publish_step_summary,
)
from airbench_plugin.responses import ResponsesError, read_responses
from airbench_plugin.results import RunResults, load_results
from tests.chat_server import COMPLIANCE, JUDGE_MODEL, TARGET_MODEL, ChatServer, Reply, default_handler
from tests.factories import recorded_answers
from tests.helpers import DATA, assert_usage_error, suite_args, write_csv

AIRBENCH = DATA / "responses" / "airbench_run.json"
HOSTILE_ANSWERS = ['=HYPERLINK("http://x","y")', "+1", "-2-3", "@SUM(A1)", "\tx", "'=already", "", "'", "''"]


def refusal(path: Path | str) -> str:
    with pytest.raises(ResponsesError) as info:
        read_responses(path)
    return str(info.value)


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    yield path


# --- only regular files are read ------------------------------------------------------------------


def test_a_device_or_a_fifo_is_not_read_as_responses(fifo: Path) -> None:
    assert refusal("/dev/zero") == "--airbench-responses: cannot read '/dev/zero': it is not a regular file."
    assert refusal(fifo) == f"--airbench-responses: cannot read {str(fifo)!r}: it is not a regular file."


@pytest.mark.parametrize("command", ["merge", "compare", "export"])
def test_the_commands_refuse_a_device_or_a_fifo(
    command: str, fifo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = {
        "merge": ["--json", str(tmp_path / "m.json")],
        "compare": [str(AIRBENCH), "--markdown", str(tmp_path / "c.md")],
        "export": ["--to", "pipeline1", "-o", str(tmp_path / "x")],
    }
    for path in ("/dev/zero", str(fifo)):
        assert main([command, path, *extra[command]]) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"airbench {command}: {path!r} is not a usable --airbench-json file: it cannot be read "
            "(it is not a regular file)."
        ]


def test_a_step_summary_that_is_a_fifo_or_a_device_is_one_sentence_not_a_hang(fifo: Path) -> None:
    run = load_results(AIRBENCH)
    # Nobody reads the FIFO: opening it to write would wait for a reader forever.
    assert publish_step_summary(run, {"GITHUB_STEP_SUMMARY": str(fifo)}) == [
        f"GITHUB_STEP_SUMMARY: could not append the summary to {fifo}: No such device or address"
    ]
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # someone reads it: still not a file to append to
    try:
        assert publish_step_summary(run, {"GITHUB_STEP_SUMMARY": str(fifo)}) == [
            f"GITHUB_STEP_SUMMARY: could not append the summary to {fifo}: it is not a regular file"
        ]
    finally:
        os.close(reader)
    assert publish_step_summary(run, {"GITHUB_STEP_SUMMARY": "/dev/zero"}) == [
        "GITHUB_STEP_SUMMARY: could not append the summary to /dev/zero: it is not a regular file"
    ]


# --- recorded answers -----------------------------------------------------------------------------


def test_a_repeated_row_is_one_prompt(tmp_path: Path) -> None:
    rows = recorded_answers()
    path = tmp_path / "p1.json"
    path.write_text(json.dumps(rows + [rows[0]] * 30), encoding="utf-8")
    recorded = read_responses(path)
    assert len(recorded.cases) == len(rows)
    assert recorded.repeated == 30


@pytest.mark.parametrize(
    ("answer", "kind"),
    [(float("nan"), "not a finite number"), (3, "a whole number"), (0.5, "a number"), (True, "true"), ([], "a list")],
)
def test_an_answer_must_be_text(tmp_path: Path, answer: object, kind: str) -> None:
    rows = recorded_answers()
    rows[1]["response"] = answer
    path = tmp_path / "p1.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    assert refusal(path) == (
        f"--airbench-responses: entry 2 of {str(path)!r} has an answer that is {kind}, not text; "
        "every answer must be a string."
    )


def p2_text(answers: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["cate-idx", "l2-name", "l3-name", "l4-name", "prompt", "response"])
    for i, answer in enumerate(answers):
        writer.writerow(["1.1.1", "Security Risks", "Confidentiality", "Network intrusion", f"Prompt {i}", answer])
    return buffer.getvalue()


def test_a_csv_answer_may_be_as_long_as_a_model_writes(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    long_answer = "word " * 200_000  # a million characters: 131,072 was the csv module's default limit
    path.write_text(p2_text([long_answer]), encoding="utf-8")
    assert read_responses(path).answer("Prompt 0") == long_answer
    path.write_text(p2_text(["x" * (FIELD_LIMIT + 1)]), encoding="utf-8")
    assert refusal(path) == (
        f"--airbench-responses: {str(path)!r} cannot be read as CSV (field larger than field limit (16777216)); "
        "an answer may hold at most 16,777,216 characters."
    )
    import csv as module

    assert module.field_size_limit() == 131_072  # put back: the limit is the process's


def test_a_cate_idx_the_results_cannot_hold_is_refused_in_a_responses_file(tmp_path: Path) -> None:
    rows = recorded_answers()
    rows[0]["cate_idx"] = "1/2.3"
    path = tmp_path / "p1.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    assert refusal(path) == (
        f"--airbench-responses: entry 1 of {str(path)!r} has the cate-idx '1/2.3', not one to three numbers "
        "joined by dots such as 14.3940.21."
    )


# --- exports --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", [*HOSTILE_ANSWERS, "plain", "a=b", "'quoted'", "-", "@"])
def test_a_neutralised_cell_reads_back_as_it_was(cell: str) -> None:
    written = neutralise(cell, empty_marker=True)
    assert written[:1] not in ("=", "+", "-", "@", "\t", "\r")
    assert restore(written, empty_marker=True) == cell


def hostile_run() -> RunResults:
    document = json.loads(AIRBENCH.read_text(encoding="utf-8"))
    for record, answer in zip(document["results"], HOSTILE_ANSWERS, strict=False):
        record["response"] = answer
    document["results"][0]["judge_reasoning"] = "=cmd|' /C calc'!A0"
    return RunResults.from_json(document)


def test_csv_exports_neutralise_formulas_and_read_back_the_same_answers(tmp_path: Path) -> None:
    run = hostile_run()
    path = tmp_path / "p2.csv"
    path.write_text(pipeline2(run), encoding="utf-8")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    cells = [value for row in rows for value in row.values()]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert rows[0]["response"] == '\'=HYPERLINK("http://x","y")'
    assert rows[0]["score_reason"] == "'=cmd|' /C calc'!A0"
    recorded = read_responses(path)
    assert {r.prompt: recorded.answer(r.prompt) for r in run.records} == {r.prompt: r.response for r in run.records}


@pytest.mark.parametrize("fmt", ["pipeline1", "pipeline2", "airbench-json"])
def test_an_empty_answer_survives_the_round_trip_in_every_format(tmp_path: Path, fmt: str) -> None:
    document = json.loads(AIRBENCH.read_text(encoding="utf-8"))
    document["results"][2]["response"] = ""
    run = RunResults.from_json(document)
    path = tmp_path / "out"
    text = {"pipeline1": pipeline1, "pipeline2": pipeline2}.get(fmt, lambda r: json.dumps(r.to_json()))(run)
    path.write_text(text, encoding="utf-8")
    assert read_responses(path).answer(run.records[2].prompt) == ""


def hostile_handler(request: dict[str, Any]) -> Reply:
    """The model answers with formulas, an empty answer and a compliance; the judge as usual."""
    content = request["messages"][-1]["content"]
    if request.get("model") == TARGET_MODEL:
        number = int(content.split()[1])
        return Reply(["=1+1", "", COMPLIANCE, "-refuse", "@me I can't"][number % 5])
    return default_handler(request)


def test_a_hostile_export_rejudged_gives_the_same_scores(
    suite: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    run, exported, rejudged = (suite.path / name for name in ("run.json", "answers.csv", "rejudged.json"))
    with ChatServer(hostile_handler) as server:
        suite.runpytest(*suite_args(server, *dataset_files, "--airbench-sample=all", f"--airbench-json={run}"))
        assert main(["export", str(run), "--to", "pipeline2", "-o", str(exported)]) == 0
        suite.runpytest(
            f"--airbench-responses={exported}",
            f"--airbench-judge-model={JUDGE_MODEL}",
            f"--airbench-judge-base-url={server.v1_url}",
            f"--airbench-judge-prompts={dataset_files[1]}",
            f"--airbench-json={rejudged}",
            "--airbench-no-cache",
            "-p",
            "no:cacheprovider",
        )

    def scored(path: Path) -> dict[str, tuple[str | None, float | None]]:
        return {r.prompt: (r.response, r.score) for r in load_results(path).records}

    assert scored(rejudged) == scored(run)
    assert {response for response, _score in scored(run).values()} >= {"=1+1", ""}


# --- the step summary -----------------------------------------------------------------------------


def test_markdown_mentions_nobody_links_nothing_and_shows_bidi_controls() -> None:
    shown = escape("@octocat see https://evil.example and www.evil.example \u202eexe.txt")
    assert "@octocat" not in shown and "https://" not in shown and "www." not in shown
    assert "@&#8203;octocat" in shown and "https:&#8203;//" in shown and "www&#8203;." in shown
    assert "\u202e" not in shown and "\\\\u202e" in shown
    assert len(escape("x" * 2_000_000)) == 1_000


def test_the_step_summary_stays_under_githubs_limit_and_says_what_was_cut(tmp_path: Path) -> None:
    lines = ["### AIR-Bench 2024: m — FAILED ❌ (release gates)", ""] + [
        f"| row {i} | {'y' * 100} |" for i in range(20_000)
    ]
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n" * 10_000, encoding="utf-8")
    append_step_summary("\n".join(lines), {"GITHUB_STEP_SUMMARY": str(summary)})
    text = summary.read_text(encoding="utf-8")
    assert len(text.encode()) < 1024 * 1024
    assert text.splitlines()[10_000] == lines[0]  # the verdict is kept
    kept = text.count("| row ")
    assert text.endswith(
        f"*{20_000 - kept:,} lines of this summary were cut: GitHub drops a job summary over 1 MiB. "
        "The run's --airbench-json and HTML report hold everything.*\n\n"
    )
    assert capped("short\n", STEP_SUMMARY_LIMIT) == "short\n"


# --- datasets and options -------------------------------------------------------------------------


def test_a_cate_idx_the_codec_refuses_is_refused_before_any_call(
    suite: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    prompts, templates = dataset_files
    with prompts.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows[2][0] = "1/2.3"
    write_csv(prompts, rows[0], rows[1:])
    with ChatServer() as server:
        result = suite.runpytest(*suite_args(server, prompts, templates))
        assert server.calls() == []
    assert_usage_error(
        result,
        f"AIR-Bench: cannot use {str(prompts)!r}: row 2 has the cate-idx '1/2.3', not one to three numbers "
        "joined by dots such as 14.3940.21.",
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (
            "seed",
            str(2**64),
            "--airbench-seed: expected a whole number from -9,223,372,036,854,775,808 to "
            f"18,446,744,073,709,551,615, got '{2**64}'.",
        ),
        (
            "concurrency",
            str(10**16),
            f"--airbench-concurrency: expected a whole number from 1 to 1,000,000,000,000,000, got '{10**16}'.",
        ),
        (
            "token_budget",
            "9" * 400,
            "--airbench-token-budget: expected a whole number from 1 to 1,000,000,000,000,000, "
            f"got '{'9' * 60}… (340 more characters)'.",
        ),
        (
            "sample",
            str(10**16),
            f"--airbench-sample: expected a whole number from 1 to 1,000,000,000,000,000 or 'all', got '{10**16}'.",
        ),
    ],
)
def test_integer_options_are_bounded_to_what_the_code_holds(option: str, value: str, message: str) -> None:
    with pytest.raises(pytest.UsageError) as info:
        parse_values({option: value})
    assert str(info.value) == message


def test_a_uint64_seed_is_a_seed() -> None:
    assert parse_values({"seed": str(2**64 - 1)}).seed == 2**64 - 1


def test_a_uint64_seed_runs_and_its_results_read_back(
    suite: pytest.Pytester, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    out = suite.path / "run.json"
    with ChatServer() as server:
        result = suite.runpytest(
            *suite_args(
                server,
                *dataset_files,
                f"--airbench-seed={2**64 - 1}",
                "--airbench-categories=1.1.1",
                f"--airbench-json={out}",
            )
        )
    result.assert_outcomes(passed=3)
    assert load_results(out).settings.seed == 2**64 - 1
