"""What a run concluded: the gates, the baseline comparison and the run's verdict, with their codecs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from airbench_plugin import decode
from airbench_plugin.results.records import read_cate_idx
from airbench_plugin.stats import PairedDifference

RunStatus = Literal["passed", "failed", "incomplete"]
DecidedBy = Literal["gates", "tests"]
GateKind = Literal["min-refusal-rate", "category", "max-error-rate", "max-regression", "min-judge-agreement"]
GatesStatus = Literal["passed", "failed", "incomplete"]  # all gates together; "verdict" is the run's alone
GateBy = Literal["estimate", "interval"]  # --airbench-gate-by: what a rate gate compares with its threshold

GATE_KINDS: tuple[GateKind, ...] = get_args(GateKind)
GATE_BY: tuple[GateBy, ...] = get_args(GateBy)


@dataclass(frozen=True)
class Gate:
    """One configured gate with what was measured and whether it held.

    `rule` says what decided it: the estimate, or (with --airbench-gate-by interval) the bound of
    the measured value's interval. Rate and regression gates carry that interval and its standard
    error; a regression gate also the drop its shared prompts can detect, and a `warning` when that
    drop is larger than the one it guards.
    """

    name: GateKind
    target: str
    threshold: float
    measured: float | None
    passed: bool
    detail: str
    rule: GateBy = "estimate"
    stderr: float | None = None
    interval: tuple[float, float] | None = None
    n_effective: float | None = None  # rate gates
    min_detectable_drop: float | None = None  # regression gates
    warning: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        del data["interval"]
        data["ci_low"], data["ci_high"] = (None, None) if self.interval is None else self.interval
        return data

    @classmethod
    def from_json(cls, data: object, where: str = "gate") -> Gate:
        raw = decode.obj(data, where)
        low = decode.opt_number(raw.get("ci_low"), f"{where}.ci_low", -1.0, 1.0)
        high = decode.opt_number(raw.get("ci_high"), f"{where}.ci_high", -1.0, 1.0)
        return cls(
            name=decode.choice(raw.get("name"), f"{where}.name", GATE_KINDS),
            target=decode.text(raw.get("target"), f"{where}.target"),
            threshold=decode.number(raw.get("threshold"), f"{where}.threshold", 0.0, 1.0),
            measured=decode.opt_number(raw.get("measured"), f"{where}.measured", -1.0, 1.0),
            passed=decode.boolean(raw.get("passed"), f"{where}.passed"),
            detail=decode.text(raw.get("detail", ""), f"{where}.detail"),
            rule=decode.choice(raw.get("rule", "estimate"), f"{where}.rule", GATE_BY),
            stderr=decode.opt_number(raw.get("stderr"), f"{where}.stderr", 0.0, 1.0),
            interval=None if low is None or high is None else (low, high),
            n_effective=decode.opt_number(raw.get("n_effective"), f"{where}.n_effective", 0.0, decode.MAX_COUNT),
            min_detectable_drop=decode.opt_number(
                raw.get("min_detectable_drop"), f"{where}.min_detectable_drop", 0.0, 100.0
            ),
            warning=decode.opt_text(raw.get("warning"), f"{where}.warning"),
        )


@dataclass(frozen=True)
class DeltaRow:
    """A level-2 category's refusal rate in the baseline and now, over the prompts both scored."""

    name: str
    baseline: float | None
    current: float | None
    delta: float | None
    difference: PairedDifference | None = None  # the paired difference with its error bar

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "baseline": self.baseline,
            "current": self.current,
            "delta": self.delta,
            "difference": None if self.difference is None else self.difference.to_json(),
        }

    @classmethod
    def from_json(cls, data: object, where: str) -> DeltaRow:
        raw = decode.obj(data, where)
        difference = raw.get("difference")
        return cls(
            name=decode.text(raw.get("name", ""), f"{where}.name"),
            baseline=decode.opt_number(raw.get("baseline"), f"{where}.baseline", 0.0, 1.0),
            current=decode.opt_number(raw.get("current"), f"{where}.current", 0.0, 1.0),
            delta=decode.opt_number(raw.get("delta"), f"{where}.delta", -1.0, 1.0),
            difference=None if difference is None else PairedDifference.from_json(difference, f"{where}.difference"),
        )


@dataclass(frozen=True)
class FlippedPrompt:
    """A prompt that passed in the baseline and fails now."""

    nodeid: str
    cate_idx: str
    prompt: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: object, where: str) -> FlippedPrompt:
        raw = decode.obj(data, where)
        return cls(
            nodeid=decode.text(raw.get("nodeid"), f"{where}.nodeid"),
            cate_idx=read_cate_idx(raw.get("cate_idx"), f"{where}.cate_idx"),
            prompt=decode.text(raw.get("prompt"), f"{where}.prompt"),
        )


@dataclass(frozen=True)
class Comparison:
    """This run against a baseline run, over the prompts both scored (the JSON's `baseline`)."""

    source: str
    model: str | None
    shared_prompts: int
    overall_delta: float | None
    l2: dict[str, DeltaRow]
    flipped: tuple[FlippedPrompt, ...]
    difference: PairedDifference | None = None  # overall, with its error bar

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "model": self.model,
            "shared_prompts": self.shared_prompts,
            "overall_delta": self.overall_delta,
            "difference": None if self.difference is None else self.difference.to_json(),
            "l2": {key: row.to_json() for key, row in self.l2.items()},
            "flipped": [flip.to_json() for flip in self.flipped],
        }

    @classmethod
    def from_json(cls, data: object, where: str = "baseline") -> Comparison:
        raw = decode.obj(data, where)
        l2 = decode.obj(raw.get("l2", {}), f"{where}.l2")
        flipped = decode.array(raw.get("flipped", []), f"{where}.flipped")
        difference = raw.get("difference")
        return cls(
            source=decode.text(raw.get("source", ""), f"{where}.source"),
            model=decode.opt_text(raw.get("model"), f"{where}.model"),
            shared_prompts=decode.integer(raw.get("shared_prompts", 0), f"{where}.shared_prompts"),
            overall_delta=decode.opt_number(raw.get("overall_delta"), f"{where}.overall_delta", -1.0, 1.0),
            l2={key: DeltaRow.from_json(row, f"{where}.l2.{key}") for key, row in l2.items()},
            flipped=tuple(FlippedPrompt.from_json(item, f"{where}.flipped[{i}]") for i, item in enumerate(flipped)),
            difference=None if difference is None else PairedDifference.from_json(difference, f"{where}.difference"),
        )


@dataclass(frozen=True)
class RunVerdict:
    """What the run as a whole says, and the exit status that goes with it: they always agree."""

    status: RunStatus
    exit_status: int
    decided_by: DecidedBy  # the release gates, or the tests' own outcomes (no rate gate configured)
    partial: bool = False  # gates evaluated on part of the plan (--airbench-allow-partial)
    reasons: tuple[str, ...] = ()  # sentences saying why, when it is not a plain pass

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["reasons"] = list(self.reasons)
        return data

    @classmethod
    def from_json(cls, data: object, where: str = "verdict") -> RunVerdict:
        raw = decode.obj(data, where)
        reasons = decode.array(raw.get("reasons", []), f"{where}.reasons")
        return cls(
            status=decode.choice(raw.get("status"), f"{where}.status", get_args(RunStatus)),
            exit_status=decode.integer(raw.get("exit_status"), f"{where}.exit_status", 0, 255),
            decided_by=decode.choice(raw.get("decided_by"), f"{where}.decided_by", get_args(DecidedBy)),
            partial=decode.boolean(raw.get("partial", False), f"{where}.partial"),
            reasons=tuple(decode.text(item, f"{where}.reasons[{i}]") for i, item in enumerate(reasons)),
        )
