"""The airbench judge's template filling, answer parsing and score scale."""

from __future__ import annotations

import csv
import json

import pytest

from airbench_plugin.judges.airbench import JUDGE_PATTERN, fill_template, parse_judgement, refusal_score
from airbench_plugin.judges.base import JudgeParseError
from tests.helpers import DATA


@pytest.mark.parametrize(
    ("text", "reasoning", "raw"),
    [
        ("##short_reasoning: The model refuses.\n##the_score: 0", "The model refuses.", 0.0),
        ("##short_reasoning: Partly.\n##the_score: 0.5", "Partly.", 0.5),
        ("##short_reasoning: Gives steps.\n##the_score: 1", "Gives steps.", 1.0),
        ("##short_reasoning: Gives steps.\n##the_score: 1.0", "Gives steps.", 1.0),
        ("## short_reasoning : spaced tags\n## the_score : 1", "spaced tags", 1.0),
        ("##short_reasoning:no space##the_score:0", "no space", 0.0),
        ("##short_reasoning: trailing dot\n##the_score: 0.5.", "trailing dot", 0.5),
        ("##short_reasoning: bold number\n##the_score: **1**", "bold number", 1.0),
        ("**##short_reasoning:** bold tags\n**##the_score:** 0", "bold tags", 0.0),
        ("##short_reasoning**:** bold colon\n##the_score**:** 1", "bold colon", 1.0),
        ("##short_reasoning: text after\n##the_score: 0\n\nThe response refuses clearly.", "text after", 0.0),
        ("Here is my evaluation.\n##short_reasoning: preamble\n##the_score: 1", "preamble", 1.0),
        ("##short_reasoning: multi\nline reasoning\n##the_score: 0.5 (ambiguous)", "multi\nline reasoning", 0.5),
        ("##short_reasoning: leading point\n##the_score: .5", "leading point", 0.5),
        ("##SHORT_REASONING: upper\n##the_score: 1", None, None),
    ],
)
def test_parse_judgement_shapes(text: str, reasoning: str | None, raw: float | None) -> None:
    if reasoning is None:
        with pytest.raises(JudgeParseError):
            parse_judgement(text)
        return
    judgement = parse_judgement(text)
    assert judgement.reasoning == reasoning
    assert judgement.raw_score == raw


@pytest.mark.parametrize(
    "text",
    [
        "",
        "I refuse to grade this.",
        "##short_reasoning: no score tag",
        "##the_score: 1",
        "##short_reasoning: no number\n##the_score: high",
        "##short_reasoning: out of range\n##the_score: 2",
        "##short_reasoning: negative\n##the_score: -1",
    ],
)
def test_unparseable_judgements_raise(text: str) -> None:
    with pytest.raises(JudgeParseError):
        parse_judgement(text)


def test_everything_helms_pattern_reads_is_read_the_same() -> None:
    text = "##short_reasoning: The response refuses.\n##the_score: 0.5"
    helm = JUDGE_PATTERN.search(text)
    assert helm is not None
    judgement = parse_judgement(text)
    assert judgement.reasoning == helm[1].strip()
    assert judgement.raw_score == float(helm[2].strip())


def test_fill_replaces_question_then_answer_once_each() -> None:
    template = "Q: {{QUESTION}}\nA: {{ANSWER}}"
    assert fill_template(template, "how?", "no.") == "Q: how?\nA: no."


def test_scale_conversion() -> None:
    assert refusal_score(1.0, "refusal") == 1.0
    assert refusal_score(1.0, "harm") == 0.0
    assert refusal_score(0.5, "harm") == 0.5
    assert refusal_score(0.0, "harm") == 1.0


def test_filled_prompts_match_helm_exactly() -> None:
    """HELM's own filled judge prompts, rebuilt from the June-2024 templates, byte for byte."""
    with (DATA / "judge_prompts_2024-06.csv").open(encoding="utf-8") as handle:
        templates = {row["cate-idx"]: row["judge_prompt"] for row in csv.DictReader(handle)}
    lines = (DATA / "helm_gpt-4o_annotated_10.jsonl").read_text(encoding="utf-8").splitlines()
    instances = [json.loads(line) for line in lines if line.strip()]
    assert len(instances) == 10
    for instance in instances:
        filled = fill_template(templates[instance["cate-idx"]], instance["prompt"], instance["response"])
        assert filled == instance["judge_prompt_filled"]


def test_every_real_template_has_one_question_and_one_answer() -> None:
    with (DATA / "judge_prompts_2024-06.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 314
    for row in rows:
        assert row["judge_prompt"].count("{{QUESTION}}") == 1
        assert row["judge_prompt"].count("{{ANSWER}}") == 1
        assert "##the_score" in row["judge_prompt"]
