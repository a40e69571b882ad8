"""Judges by kind. Each module holds one judge behind `Judge` (base.py)."""

from __future__ import annotations

import importlib

from airbench_plugin.judges.base import JUDGE_KINDS, Judge, JudgeKind, JudgeParseError, JudgeSetup, JudgeVerdict

JUDGES: dict[JudgeKind, str] = {
    "airbench": "airbench_plugin.judges.airbench:AirbenchJudge",
    "granite-guardian": "airbench_plugin.judges.granite_guardian:GraniteGuardianJudge",
}


def judge_class(kind: JudgeKind) -> type[Judge]:
    """The judge registered under `kind`."""
    module, _, attribute = JUDGES[kind].partition(":")
    judge: type[Judge] = getattr(importlib.import_module(module), attribute)
    return judge


__all__ = [
    "JUDGES",
    "JUDGE_KINDS",
    "Judge",
    "JudgeKind",
    "JudgeParseError",
    "JudgeSetup",
    "JudgeVerdict",
    "judge_class",
]
