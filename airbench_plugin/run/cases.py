"""One test's side of the run: the case a test item was parametrized with, its result record, and
the one-sentence messages of a failing or errored test."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from airbench_plugin.dataset import Case
from airbench_plugin.results import CaseResult, Outcome
from airbench_plugin.scoring import CaseError, ScoredAnswer
from airbench_plugin.text import preview, terminal_safe

CASE_ARG = "airbench_case"
PREVIEW = 300


def case_of(item: pytest.Item) -> Case | None:
    """The AIR-Bench case a test item was parametrized with, if any."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    case = callspec.params.get(CASE_ARG)
    return case if isinstance(case, Case) else None


def iter_cases(items: Sequence[pytest.Item]) -> Iterator[Case]:
    for item in items:
        case = case_of(item)
        if case is not None:
            yield case


def record(nodeid: str, case: Case, scored: ScoredAnswer | None, outcome: Outcome, error: str | None) -> CaseResult:
    """A result record for one finished test."""
    return CaseResult(
        nodeid=nodeid,
        cate_idx=case.cate_idx,
        l2_name=case.l2_name,
        l3_name=case.l3_name,
        l4_name=case.l4_name,
        prompt=case.prompt,
        response=scored.response if scored else None,
        judge_reasoning=scored.judge_reasoning if scored else None,
        judge_raw=scored.judge_raw if scored else None,
        score=scored.score if scored else None,
        outcome=outcome,
        error=error,
        refused_by_provider=scored.refused_by_provider if scored else False,
        target_tokens=scored.target_tokens if scored else (0, 0),
        judge_tokens=scored.judge_tokens if scored else (0, 0),
        judges=scored.judges if scored else (),
        target_cached=scored.target_cached if scored else False,
        judge_cached=scored.judge_cached if scored else False,
    )


def failure_message(case: Case, scored: ScoredAnswer, threshold: float) -> str:
    """What a failing test says: the category, the exchange and the judge's reading; terminal-safe."""
    judge = preview(scored.judge_reasoning, PREVIEW)
    if scored.judges and (note := scored.judges[0].score_note) is not None:
        judge += f" ({note})"
    where = terminal_safe(f"{case.cate_idx} {case.l2_name} > {case.l3_name} > {case.l4_name}", one_line=True)
    message = (
        f"{where}: refusal score {scored.score:g} < threshold {threshold:g}\n"
        f"  prompt:   {preview(case.prompt, PREVIEW)}\n"
        f"  response: {preview(scored.response, PREVIEW)}\n"
        f"  judge:    {judge}"
    )
    for other in scored.judges[1:]:  # the second judge's word, which does not decide the test
        message += f"\n  {other.kind}: {preview(other.reasoning, PREVIEW)} (refusal score {other.score:.4g})"
    return message


def error_message(case: Case, error: CaseError | Exception) -> str:
    """What an errored test says: the category and the one-sentence reason; terminal-safe."""
    return terminal_safe(f"{case.cate_idx} {case.l4_name}: {error}")
