"""What a run judged by a calibrated judge states (`--airbench-judge-calibration FILE`): whom its judge
was measured against, how far apart they were, and the bias-adjusted refusal rate. Reading and
checking the calibration file, and the sentences every report states it in.

The typed summary (`JudgeCalibration`) and the bias-adjusted rate (`bias_adjusted`) are part of the
results model (`results.calibration`, which the run's document holds); they are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from airbench_plugin import decode
from airbench_plugin.judges.airbench import AirbenchJudge
from airbench_plugin.results.calibration import (
    ADJUSTED_LABEL,
    SCHEMA,
    AdjustedRate,
    Estimate,
    JudgeCalibration,
    Rate,
    bias_adjusted,
)
from airbench_plugin.wording import DASH, interval_text, points_text, rate_text

__all__ = [
    "ADJUSTED_LABEL",
    "OPTION",
    "SCHEMA",
    "AdjustedRate",
    "CalibrationFileError",
    "Estimate",
    "JudgeCalibration",
    "Rate",
    "adjusted_text",
    "bias_adjusted",
    "bias_text",
    "calibration_text",
    "check_calibration",
    "load_judge_calibration",
    "share_text",
    "template_revision",
]

OPTION = "--airbench-judge-calibration"


class CalibrationFileError(Exception):
    """A calibration file that cannot be used for this run; the message is one sentence for the user."""


def template_revision(templates: Mapping[str, str]) -> str:
    """The judge templates' identity: a digest of every cate-idx and its template, so a local copy
    of a revision and the hub's revision are the same templates, and an edited copy is not."""
    blob = json.dumps(sorted(templates.items()), ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def load_judge_calibration(path: str) -> JudgeCalibration:
    """The calibration file a run states; raises CalibrationFileError with one sentence."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CalibrationFileError(f"{OPTION}: cannot read {path!r}: no such file or directory.") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "it is not UTF-8 text"
        raise CalibrationFileError(f"{OPTION}: cannot read {path!r}: {reason}.") from None
    try:
        return JudgeCalibration.from_document(json.loads(text), path)
    except (json.JSONDecodeError, decode.DecodeError) as exc:
        detail = f"invalid JSON at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise CalibrationFileError(
            f"{OPTION}: {path!r} is not a calibration written by airbench calibrate --json ({detail})."
        ) from None


def check_calibration(
    calibration: JudgeCalibration, judge_kind: str, judge_model: str, scale: str, revision: str
) -> None:
    """Raise CalibrationFileError, in one sentence, when `calibration` was made for another judge."""
    if judge_kind != AirbenchJudge.kind:
        raise CalibrationFileError(
            f"{OPTION}: {calibration.source!r} calibrates an airbench judge, and this run's judge is {judge_kind}; "
            "drop the option."
        )
    differences = []
    if calibration.judge_model != judge_model:
        differences.append(f"judge model {calibration.judge_model}, not {judge_model}")
    if calibration.scale != scale:
        differences.append(f"{calibration.scale} scale, not {scale}")
    if calibration.template_revision != revision:
        differences.append(f"templates {calibration.template_revision}, not {revision}")
    if differences:
        raise CalibrationFileError(
            f"{OPTION}: {calibration.source!r} was made for another judge than this run's ({'; '.join(differences)}); "
            "calibrate this judge with airbench calibrate --judge-model "
            f"{judge_model} and the run's --judge-prompts, or drop the option."
        )


def share_text(rate: float, low: float, high: float) -> str:
    """A share with its interval, as every report writes a rate: `90.0% [82.0, 95.0]`."""
    return f"{rate_text(rate)} {interval_text((low, high))}"


def bias_text(mean: float | None, low: float | None, high: float | None) -> str:
    """A bias, a difference of refusal rates, in points with its interval: `+5.0 pp [+1.0, +9.0]`."""
    if mean is None:
        return DASH
    interval = DASH if low is None or high is None else f"[{low * 100:+.1f}, {high * 100:+.1f}]"
    return f"{points_text(mean)} {interval}"


def calibration_text(calibration: JudgeCalibration) -> str:
    """`judge gpt-4.1 calibrated against gpt-4o-2024-05-13 on 90 answers: pass agreement 93.3% [86.1, 96.9],
    bias +2.8 pp [-3.4, +9.0]`."""
    a, b = calibration.pass_agreement, calibration.bias
    return (
        f"judge {calibration.judge_model} calibrated against {calibration.reference_name} on {calibration.items:,} "
        f"answers: pass agreement {share_text(a.rate, a.ci_low, a.ci_high)}, "
        f"bias {bias_text(b.mean, b.ci_low, b.ci_high)}"
    )


def adjusted_text(adjusted: AdjustedRate) -> str:
    """`bias-adjusted refusal rate (estimate: ...) 71.9% [64.0, 79.8]`."""
    return f"{ADJUSTED_LABEL} {share_text(adjusted.mean, adjusted.ci_low, adjusted.ci_high)}"
