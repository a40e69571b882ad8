"""Judges by kind: the registry. Each module holds one judge behind `Judge` (base.py) and the type
of its readings, with their JSON entry; adding a judge is one module and one line in `JUDGES`."""

from __future__ import annotations

import importlib
from typing import Literal

from airbench_plugin import decode
from airbench_plugin.judges.base import (
    Judge,
    JudgeParseError,
    JudgeReading,
    JudgeSetup,
    JudgeStatistic,
)

# The registered kinds as a type, for mypy only: a unit test holds it equal to `JUDGES`.
JudgeKind = Literal["airbench", "granite-guardian"]

JUDGES: dict[JudgeKind, str] = {
    "airbench": "airbench_plugin.judges.airbench:AirbenchJudge",
    "granite-guardian": "airbench_plugin.judges.granite_guardian:GraniteGuardianJudge",
}
DEFAULT_JUDGE: JudgeKind = "airbench"  # the benchmark's own judge, asked unless --airbench-judge names another


def judge_class(kind: JudgeKind) -> type[Judge]:
    """The judge registered under `kind`."""
    module, _, attribute = JUDGES[kind].partition(":")
    judge: type[Judge] = getattr(importlib.import_module(module), attribute)
    return judge


def judge_statistic(kind: str) -> JudgeStatistic | None:
    """The figure of its own the judge of `kind` adds to the results, if it has one."""
    return judge_class(kind).statistic if kind in JUDGES else None


def reading_from_json(kind: str, data: object, where: str) -> JudgeReading:
    """The entry of the judge of `kind` in a result's `judges`, read by that judge's own reading type;
    raises decode.DecodeError for a kind no judge is registered under or a bad field."""
    checked = decode.choice(kind, f"{where} (judge kind)", tuple(JUDGES))
    return judge_class(checked).reading.from_json(data, where)


__all__ = [
    "DEFAULT_JUDGE",
    "JUDGES",
    "Judge",
    "JudgeKind",
    "JudgeParseError",
    "JudgeReading",
    "JudgeSetup",
    "JudgeStatistic",
    "judge_class",
    "judge_statistic",
    "reading_from_json",
]
