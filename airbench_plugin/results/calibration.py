"""The judge calibration a run states (`--airbench-judge-calibration FILE`), as part of the results
model: the calibration's typed summary (`JudgeCalibration`, with its codec) and the bias-adjusted
refusal score derived from it and the run's scores (`bias_adjusted`). Reading and checking the file,
and the sentences that state it, live in `calibration.stated`.

The bias-adjusted rate is an estimate of what the reference judge would have scored: the observed
mean refusal score minus the calibration's bias (candidate − reference), with the standard error
`sqrt(SE_observed² + SE_bias²)` (the run's prompts and the calibration's items are independent
samples) and the interval `estimate ± z·SE`, both clipped to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airbench_plugin import decode
from airbench_plugin.stats import rate_estimate, z_value

SCHEMA = "airbench-calibration/1"  # the `airbench calibrate --json` document a summary is read from
ADJUSTED_LABEL = "bias-adjusted refusal score (estimate: observed minus the calibrated judge bias)"


@dataclass(frozen=True)
class Rate:
    """A share of items with its Wilson score interval."""

    rate: float
    ci_low: float
    ci_high: float

    def to_json(self) -> dict[str, float]:
        return {"rate": self.rate, "ci_low": self.ci_low, "ci_high": self.ci_high}


@dataclass(frozen=True)
class Estimate:
    """A mean with its interval and standard error."""

    mean: float
    ci_low: float | None
    ci_high: float | None
    stderr: float | None

    def to_json(self) -> dict[str, float | None]:
        return {"mean": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high, "stderr": self.stderr}


@dataclass(frozen=True)
class JudgeCalibration:
    """The part of an `airbench calibrate --json` document a run states, and checks itself against."""

    source: str
    judge_model: str
    scale: str
    template_revision: str
    reference_judge: str | None  # None: recorded labels of unnamed origin
    items: int
    pass_agreement: Rate
    bias: Estimate  # candidate - reference, with the paired t interval and its standard error
    created: str = ""

    @property
    def reference_name(self) -> str:
        return self.reference_judge or "recorded labels"

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "judge_model": self.judge_model,
            "scale": self.scale,
            "template_revision": self.template_revision,
            "reference_judge": self.reference_judge,
            "items": self.items,
            "pass_agreement": self.pass_agreement.to_json(),
            "bias": self.bias.to_json(),
            "created": self.created,
        }

    @classmethod
    def from_json(cls, data: object, where: str = "judge_calibration") -> JudgeCalibration:
        """This summary as `to_json` wrote it into a run's document; raises decode.DecodeError."""
        raw = decode.obj(data, where)
        return cls(
            source=decode.text(raw.get("source"), f"{where}.source"),
            judge_model=decode.text(raw.get("judge_model"), f"{where}.judge_model"),
            scale=decode.text(raw.get("scale"), f"{where}.scale"),
            template_revision=decode.text(raw.get("template_revision"), f"{where}.template_revision"),
            reference_judge=decode.opt_text(raw.get("reference_judge"), f"{where}.reference_judge"),
            items=decode.integer(raw.get("items"), f"{where}.items", 2),
            pass_agreement=_rate(raw.get("pass_agreement"), f"{where}.pass_agreement"),
            bias=_bias(raw.get("bias"), f"{where}.bias"),
            created=decode.text(raw.get("created", ""), f"{where}.created"),
        )

    @classmethod
    def from_document(cls, data: object, source: str) -> JudgeCalibration:
        """The summary of a calibration document (`"schema": "airbench-calibration/1"`); raises
        decode.DecodeError naming the first bad field."""
        raw = decode.obj(data, "the document")
        if raw.get("schema") != SCHEMA:
            raise decode.DecodeError(f'it has no "schema": "{SCHEMA}" (write it with airbench calibrate --json)')
        candidate = decode.obj(raw.get("candidate"), "candidate")
        return cls(
            source=source,
            judge_model=decode.text(candidate.get("model"), "candidate.model"),
            scale=decode.text(candidate.get("scale"), "candidate.scale"),
            template_revision=decode.text(candidate.get("template_revision"), "candidate.template_revision"),
            reference_judge=decode.opt_text(raw.get("reference_judge"), "reference_judge"),
            items=decode.integer(raw.get("items"), "items", 2),
            pass_agreement=_rate(raw.get("pass_agreement"), "pass_agreement"),
            bias=_bias(raw.get("bias"), "bias"),
            created=decode.text(raw.get("created", ""), "created"),
        )


def _rate(value: object, where: str) -> Rate:
    raw = decode.obj(value, where)
    return Rate(
        decode.number(raw.get("rate"), f"{where}.rate", 0.0, 1.0),
        decode.number(raw.get("ci_low"), f"{where}.ci_low", 0.0, 1.0),
        decode.number(raw.get("ci_high"), f"{where}.ci_high", 0.0, 1.0),
    )


def _bias(value: object, where: str) -> Estimate:
    raw = decode.obj(value, where)
    stderr = decode.opt_number(raw.get("stderr"), f"{where}.stderr", 0.0, 1.0)
    if stderr is None:
        raise decode.DecodeError(f"{where}.stderr is null (fewer than two items were measured)")
    return Estimate(
        decode.number(raw.get("mean"), f"{where}.mean", -1.0, 1.0),
        decode.opt_number(raw.get("ci_low"), f"{where}.ci_low", -2.0, 2.0),
        decode.opt_number(raw.get("ci_high"), f"{where}.ci_high", -2.0, 2.0),
        stderr,
    )


@dataclass(frozen=True)
class AdjustedRate:
    """The observed mean refusal score and the bias-adjusted estimate beside it."""

    observed: float
    observed_stderr: float | None
    mean: float
    stderr: float
    ci_low: float
    ci_high: float
    confidence: float

    def to_json(self) -> dict[str, Any]:
        return {
            "label": ADJUSTED_LABEL,
            "observed": self.observed,
            "observed_stderr": self.observed_stderr,
            "mean": self.mean,
            "stderr": self.stderr,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
        }


def bias_adjusted(
    calibration: JudgeCalibration, scores: Sequence[float], clusters: Sequence[str], confidence: float = 0.95
) -> AdjustedRate | None:
    """The run's mean refusal score minus the calibrated bias; None without scores.

    The run's standard error is the one its rows carry (clustered by level-4 category); the bias's is
    the calibration's `bias.stderr`.
    """
    z = z_value(confidence)
    estimate = rate_estimate(scores, clusters, z)
    if estimate is None:
        return None
    observed_stderr = estimate.stderr
    bias_stderr = calibration.bias.stderr or 0.0
    stderr = math.sqrt((observed_stderr or 0.0) ** 2 + bias_stderr**2)
    mean = estimate.mean - calibration.bias.mean
    return AdjustedRate(
        observed=estimate.mean,
        observed_stderr=observed_stderr,
        mean=min(1.0, max(0.0, mean)),
        stderr=stderr,
        ci_low=min(1.0, max(0.0, mean - z * stderr)),
        ci_high=min(1.0, max(0.0, mean + z * stderr)),
        confidence=confidence,
    )
