"""A calibration's typed results: the figures that compare two judges, overall and per level-2
category, and the JSON document (`"schema": "airbench-calibration/1"`) reports format.

Every figure is computed here, once, from the (official, candidate) score pairs; the terminal, the
JSON and the HTML page only format a `Calibration`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from airbench_plugin.agreement import Confusion, passes
from airbench_plugin.calibration.references import Reference, ReferenceItem
from airbench_plugin.calibration.stated import SCHEMA, Rate
from airbench_plugin.calibration.stats import (
    LEVEL_KEYS,
    LEVELS,
    Bias,
    level_confusion,
    paired_bias,
    quadratic_weighted_kappa,
)
from airbench_plugin.judges.airbench import AirbenchJudge
from airbench_plugin.stats import wilson_interval, z_value

CONFIDENCE = 0.95
CalibrationVerdict = Literal["PASSED", "FAILED", "INCOMPLETE"]
GateName = Literal["min_agreement", "max_bias"]


def rate(hits: int, n: int, confidence: float = CONFIDENCE) -> Rate | None:
    """`hits` of `n` with its Wilson interval; None without items."""
    if n == 0:
        return None
    share = hits / n
    low, high = wilson_interval(share, n, z_value(confidence))
    return Rate(share, low, high)


@dataclass(frozen=True)
class Figures:
    """How far two judges are apart over a set of items both scored."""

    items: int
    exact_agreement: Rate | None
    pass_agreement: Rate | None
    kappa: float | None  # Cohen's, on pass/fail
    weighted_kappa: float | None  # Cohen's, quadratic weights, on the three levels
    confusion: tuple[tuple[int, ...], ...]  # official level (rows) x candidate level (columns)
    bias: Bias  # candidate - official
    official_mean: float | None
    candidate_mean: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "exact_agreement": None if self.exact_agreement is None else self.exact_agreement.to_json(),
            "pass_agreement": None if self.pass_agreement is None else self.pass_agreement.to_json(),
            "kappa": self.kappa,
            "weighted_kappa": self.weighted_kappa,
            "confusion": {
                row: {column: self.confusion[i][j] for j, column in enumerate(LEVEL_KEYS)}
                for i, row in enumerate(LEVEL_KEYS)
            },
            "bias": self.bias.to_json(),
            "official_mean": self.official_mean,
            "candidate_mean": self.candidate_mean,
        }


def figures(pairs: Sequence[tuple[float, float]], threshold: float, confidence: float = CONFIDENCE) -> Figures:
    """The figures of (official, candidate) refusal-score pairs; scores are 0, 0.5 or 1."""
    n = len(pairs)
    passing = Confusion()
    for official, candidate in pairs:
        passing = passing.add(passes(official, threshold), passes(candidate, threshold))
    table = level_confusion(pairs)
    exact = sum(table[i][i] for i in range(len(LEVELS)))
    same_call = passing.both_pass + passing.both_fail
    return Figures(
        items=n,
        exact_agreement=rate(exact, n, confidence),
        pass_agreement=rate(same_call, n, confidence),
        kappa=passing.cohen_kappa,
        weighted_kappa=quadratic_weighted_kappa(table),
        confusion=tuple(tuple(row) for row in table),
        bias=paired_bias([candidate - official for official, candidate in pairs], confidence),
        official_mean=sum(official for official, _ in pairs) / n if n else None,
        candidate_mean=sum(candidate for _, candidate in pairs) / n if n else None,
    )


# --- the items ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    """One reference item and what the candidate judge made of it: a score, or the error."""

    item: ReferenceItem
    candidate: float | None
    reasoning: str = ""
    error: str | None = None

    @property
    def difference(self) -> float:
        assert self.candidate is not None
        return self.candidate - self.item.official

    def to_json(self) -> dict[str, Any]:
        case = self.item.case
        entry: dict[str, Any] = {
            "cate_idx": case.cate_idx,
            "l2_name": case.l2_name,
            "l3_name": case.l3_name,
            "l4_name": case.l4_name,
            "prompt": case.prompt,
            "response": self.item.response,
            "official": self.item.official,
            "source": self.item.source,
            "where": self.item.where,
        }
        if self.error is not None:
            entry["error"] = self.error
        else:
            entry["candidate"] = self.candidate
            entry["reasoning"] = self.reasoning
        return entry


def score_pairs(judged: Iterable[Judged]) -> list[tuple[float, float]]:
    """(official, candidate) of every item the candidate scored."""
    return [(j.item.official, j.candidate) for j in judged if j.candidate is not None]


def worst_first(judged: Iterable[Judged], threshold: float) -> list[Judged]:
    """The items the judges scored differently: the largest difference first, then those whose
    pass/fail call differs, then in taxonomy order (the items' own order)."""
    differing = [j for j in judged if j.candidate is not None and j.candidate != j.item.official]
    return sorted(
        differing,
        key=lambda j: (
            -abs(j.difference),
            passes(j.item.official, threshold) == passes(j.candidate or 0.0, threshold),
        ),
    )


# --- the document ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateJudge:
    """The judge being calibrated, as it was asked: model, endpoint settings and templates."""

    model: str
    provider: str
    base_url: str | None  # as reports show it: no credentials
    scale: str  # the templates' scale, decided as a run decides it
    template_source: str
    template_revision: str
    temperature: float
    max_tokens: int
    reasoning_effort: str | None = None
    sent: Mapping[str, Any] = field(default_factory=dict)  # what the endpoint was actually sent

    def to_json(self) -> dict[str, Any]:
        return {
            "judge": AirbenchJudge.kind,
            "model": self.model,
            "provider": self.provider,
            "base_url": self.base_url,
            "scale": self.scale,
            "template_source": self.template_source,
            "template_revision": self.template_revision,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "reasoning_effort": self.reasoning_effort,
            "sent": dict(self.sent),
        }


@dataclass(frozen=True)
class CategoryFigures:
    """One level-2 category's row."""

    name: str
    errors: int
    figures: Figures

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "errors": self.errors, **self.figures.to_json()}


@dataclass(frozen=True)
class CalibrationGate:
    """One of `--min-agreement` / `--max-bias` and whether the calibration meets it."""

    name: GateName
    limit: float
    value: float | None  # pass_agreement.rate, or |bias.mean|; None when nothing was measured
    passed: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "limit": self.limit, "value": self.value, "passed": self.passed}

    def describe(self) -> str:
        measured = "nothing measured" if self.value is None else f"{self.value:.4f}"
        if self.name == "min_agreement":
            return f"pass agreement {measured} >= {self.limit:g}"
        return f"|bias| {measured} <= {self.limit:g}"


def evaluate_gates(
    overall: Figures, min_agreement: float | None, max_bias: float | None
) -> tuple[CalibrationGate, ...]:
    gates = []
    if min_agreement is not None:
        value = None if overall.pass_agreement is None else overall.pass_agreement.rate
        met = value is not None and value >= min_agreement
        gates.append(CalibrationGate("min_agreement", min_agreement, value, met))
    if max_bias is not None:
        value = None if overall.bias.mean is None else abs(overall.bias.mean)
        gates.append(CalibrationGate("max_bias", max_bias, value, value is not None and value <= max_bias))
    return tuple(gates)


def decide(overall: Figures, errors: int, gates: Sequence[CalibrationGate]) -> CalibrationVerdict:
    """FAILED when a gate is not met; INCOMPLETE when the candidate could not score every item (or
    scored none); PASSED otherwise. Exit status: 0 for PASSED, 1 otherwise."""
    if any(not gate.passed for gate in gates):
        return "FAILED"
    if errors or overall.items == 0:
        return "INCOMPLETE"
    return "PASSED"


@dataclass(frozen=True)
class Calibration:
    """A calibration of a candidate judge against a reference judge, as every report shows it."""

    plugin_version: str
    created: str
    candidate: CandidateJudge
    reference_judge: str | None  # None: labels of unnamed origin
    references: tuple[Reference, ...]
    threshold: float
    overall: Figures
    errors: int
    l2: Mapping[str, CategoryFigures]
    judged: tuple[Judged, ...] = field(repr=False)
    gates: tuple[CalibrationGate, ...] = ()
    verdict: CalibrationVerdict = "PASSED"
    confidence: float = CONFIDENCE

    @property
    def disagreements(self) -> list[Judged]:
        return worst_first(self.judged, self.threshold)

    @property
    def errored(self) -> list[Judged]:
        return [j for j in self.judged if j.error is not None]

    @property
    def exit_status(self) -> int:
        return 0 if self.verdict == "PASSED" else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "plugin_version": self.plugin_version,
            "created": self.created,
            "candidate": self.candidate.to_json(),
            "reference_judge": self.reference_judge,
            "references": [reference.to_json() for reference in self.references],
            "threshold": self.threshold,
            "confidence": self.confidence,
            "errors": self.errors,
            **self.overall.to_json(),
            "l2": {key: row.to_json() for key, row in self.l2.items()},
            "gates": [gate.to_json() for gate in self.gates],
            "verdict": self.verdict,
            "disagreements": [j.to_json() for j in self.disagreements],
            "errored": [j.to_json() for j in self.errored],
        }


def build_calibration(
    *,
    plugin_version: str,
    created: str,
    candidate: CandidateJudge,
    references: Sequence[Reference],
    judged: Sequence[Judged],
    threshold: float,
    min_agreement: float | None = None,
    max_bias: float | None = None,
    confidence: float = CONFIDENCE,
) -> Calibration:
    """Compute every figure from the judged items; level-2 rows in taxonomy order."""
    judges = {reference.judge for reference in references}
    reference_judge = judges.pop() if len(judges) == 1 else None
    overall = figures(score_pairs(judged), threshold, confidence)
    groups: dict[str, list[Judged]] = {}
    for entry in sorted(judged, key=lambda j: _l2_order(j.item.case.l2)):
        groups.setdefault(entry.item.case.l2, []).append(entry)
    l2 = {
        key: CategoryFigures(
            name=next((j.item.case.l2_name for j in group if j.item.case.l2_name), ""),
            errors=sum(1 for j in group if j.error is not None),
            figures=figures(score_pairs(group), threshold, confidence),
        )
        for key, group in groups.items()
    }
    errors = sum(1 for j in judged if j.candidate is None)
    gates = evaluate_gates(overall, min_agreement, max_bias)
    return Calibration(
        plugin_version=plugin_version,
        created=created,
        candidate=candidate,
        reference_judge=reference_judge,
        references=tuple(references),
        threshold=threshold,
        overall=overall,
        errors=errors,
        l2=l2,
        judged=tuple(judged),
        gates=gates,
        verdict=decide(overall, errors, gates),
        confidence=confidence,
    )


def _l2_order(l2: str) -> tuple[int, str]:
    return (int(l2), l2) if l2.isdigit() else (1 << 30, l2)
