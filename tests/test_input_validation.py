"""Inputs that mean something other than they say are refused up front, with one sentence."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from airbench_plugin.judges.airbench import parse_judgement, template_problems
from airbench_plugin.judges.base import JudgeParseError
from airbench_plugin.options import Settings
from airbench_plugin.reports.junit import write_junit_dir
from airbench_plugin.results import DatasetInfo
from tests.chat_server import JUDGE_MODEL, ChatServer, Reply
from tests.factories import case_result, run_results
from tests.helpers import assert_usage_error, judge_rows, run_suite, suite_args, write_csv


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b"OPENAI_API_KEY=sk-abc\xff\n", "byte 0xff at offset 21"),
        (b"\xc3\x28=1\n", "byte 0xc3 at offset 0"),
    ],
)
def test_a_dotenv_that_is_not_utf8_is_one_sentence_before_any_call(
    suite: pytest.Pytester,
    chat_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    content: bytes,
    where: str,
) -> None:
    (suite.path / ".env").write_bytes(content)
    result = suite.runpytest(*suite_args(chat_server, *dataset_files))
    assert_usage_error(
        result,
        f"AIR-Bench: cannot read '{suite.path / '.env'}': {where} is not UTF-8; save the file as UTF-8 or remove it.",
    )
    assert chat_server.calls() == []


# --- the judge's score is read only where it is unambiguous ------------------------------------


@pytest.mark.parametrize(
    ("score", "raw"),
    [
        ("0", 0.0),
        ("1", 1.0),
        ("0.5", 0.5),
        (".5", 0.5),
        ("1.0", 1.0),
        ("0.50", 0.5),
        ("0.5.", 0.5),
        ("**1**", 1.0),
        ("`0.5`", 0.5),
        ("1 (assists)", 1.0),
        ("1, it refuses", 1.0),
        ("1 (refuses all 3 requests)", 1.0),
        ("0\n\nThe answer has 2 steps.", 0.0),
        ("1 or 1.0", 1.0),
    ],
)
def test_unambiguous_scores_are_read(score: str, raw: float) -> None:
    assert parse_judgement(f"##short_reasoning: r\n##the_score: {score}").raw_score == raw


@pytest.mark.parametrize(
    "score",
    [
        "0,5",
        "1e-3",
        "1E+0",
        "1/2",
        "0.25",
        "0.7",
        "10",
        "-0",
        "+1",
        "1.0.5",
        "1%",
        "½",
        "0 or 1",
        "0.5, 1",
        "between 0 and 1",
        "high",
        "",
    ],
)
def test_anything_else_is_unparseable_never_misread(score: str) -> None:
    with pytest.raises(JudgeParseError):
        parse_judgement(f"##short_reasoning: r\n##the_score: {score}")


def test_an_ambiguous_score_is_asked_again_then_errors(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    """`0,5` was read as 0 and `1e-3` as 1; now each is asked again, and twice is an error."""
    chat_server.inject(
        Reply("##short_reasoning: r\n##the_score: 0,5"),
        times=2,
        model=JUDGE_MODEL,
        prompt_contains="Prompt 0 for Network intrusion",
    )
    chat_server.inject(
        Reply("##short_reasoning: r\n##the_score: 1e-3"),
        times=1,
        model=JUDGE_MODEL,
        prompt_contains="Prompt 1 for Network intrusion",
    )
    result = run_suite(suite, chat_server, dataset_files, "--airbench-categories=1.1.1", "--airbench-json=r.json")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*its last answer was: '##short_reasoning: r\\n##the_score: 0,5'*"])
    assert len(chat_server.calls(JUDGE_MODEL)) == 5
    document = json.loads((suite.path / "r.json").read_text())
    assert sorted(r["score"] is None for r in document["results"]) == [False, False, True]


# --- judge templates that cannot show the judge what it grades ---------------------------------


def test_a_template_without_a_placeholder_is_rejected_with_its_cate_idx(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str, tmp_path: Path
) -> None:
    rows = judge_rows()
    rows[1][4] = rows[1][4].replace("{{ANSWER}}", "(the answer)")  # 1.1.6
    rows[4][4] = rows[4][4].replace("{{QUESTION}}", "").replace("{{ANSWER}}", "")  # 2.5.2
    judge = write_csv(tmp_path / "judge.csv", ["cate-idx", "l2-name", "l3-name", "l4-name", "judge_prompt"], rows)
    result = suite.runpytest(*suite_args(chat_server, dataset_files[0], judge))
    assert_usage_error(
        result,
        f"AIR-Bench: the judge templates in '{judge}' cannot show the judge what it grades: cate-idx 1.1.6 has no "
        "{{ANSWER}}; cate-idx 2.5.2 has no {{QUESTION}} and no {{ANSWER}}; fix the file or use the judge prompts "
        "of the dataset's revision.",
    )
    assert chat_server.calls() == []


def test_template_problems_only_for_judged_categories() -> None:
    templates = {"1.1.1": "{{QUESTION}} {{ANSWER}}", "1.1.2": "{{QUESTION}}", "9.9.9": "nothing"}
    assert template_problems(templates, ["1.1.1", "1.1.2", "1.1.2"]) == ["cate-idx 1.1.2 has no {{ANSWER}}"]
    assert template_problems(templates, ["1.1.1"]) == []


# --- --airbench-junit-dir writes every file, whatever a cate-idx holds --------------------------


@pytest.mark.parametrize(
    "hostile",
    ["a/b", "../../escape", "..", "x\x00y", "con", "a" * 300, "é/中文", "a b"],
    ids=["slash", "dotdot-path", "dotdot", "nul", "reserved", "long", "non-ascii", "space"],
)
def test_junit_dir_writes_a_file_for_every_category(hostile: str, tmp_path: Path) -> None:
    records = [
        case_result(f"{key}.1.1", nodeid=f"t.py::t[{key}-{i}]", names=(name, "l3", "l4"), judge_reasoning="ok")
        for i, (key, name) in enumerate([(hostile, "Same"), ("a-b", "Same"), ("1", "Same")])
    ]
    run = run_results(
        records, judge_model="j", dataset=DatasetInfo("d.csv", None, "default"), settings=Settings().run_settings(None)
    )
    out = tmp_path / "junit"
    written = write_junit_dir(run, out)
    assert len(written) == len(set(written)) == 3  # `a/b` and `a-b` both become `a-b`: still two files
    assert sorted(p.parent for p in written) == [out] * 3  # nothing outside the directory
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)
    for path in written:
        ET.parse(path)
