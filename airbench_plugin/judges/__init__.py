"""Judges by kind. Each module holds one judge behind `Judge` (base.py)."""

from __future__ import annotations

import importlib

from airbench_plugin.judges.base import (
    JUDGE_KINDS,
    Judge,
    JudgeKind,
    JudgeParseError,
    JudgeReading,
    JudgeSetup,
    JudgeStatistic,
)

JUDGES: dict[JudgeKind, str] = {
    "airbench": "airbench_plugin.judges.airbench:AirbenchJudge",
    "granite-guardian": "airbench_plugin.judges.granite_guardian:GraniteGuardianJudge",
}


def judge_class(kind: JudgeKind) -> type[Judge]:
    """The judge registered under `kind`."""
    module, _, attribute = JUDGES[kind].partition(":")
    judge: type[Judge] = getattr(importlib.import_module(module), attribute)
    return judge


def judge_statistic(kind: str) -> JudgeStatistic | None:
    """The figure of its own the judge of `kind` adds to the results, if it has one."""
    return judge_class(kind).statistic if kind in JUDGES else None


__all__ = [
    "JUDGES",
    "JUDGE_KINDS",
    "Judge",
    "JudgeKind",
    "JudgeParseError",
    "JudgeReading",
    "JudgeSetup",
    "JudgeStatistic",
    "judge_class",
    "judge_statistic",
]
