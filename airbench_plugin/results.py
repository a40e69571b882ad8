"""The run's results as one typed tree, and its JSON form (the `--airbench-json` file). No pytest imports.

`RunResults` holds what a run was (model, judge, dataset, settings), what it planned (the sampled
prompts), what happened to each prompt, the gates, the baseline comparison and the verdict. The
aggregates (overall and per level-2/3/4 category) and the token usage are derived from the records,
so they can never disagree with them. Every report formats this object; none re-aggregates.

Every rate is the plain mean of instance refusal scores (HELM's aggregation); errored cases are
counted apart and left out of every rate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args

from airbench_plugin import decode
from airbench_plugin.agreement import Agreement, ScoredPair, agreement
from airbench_plugin.dataset import cate_sort_key
from airbench_plugin.decode import DecodeError
from airbench_plugin.judges.base import JudgeVerdict
from airbench_plugin.roles import Role
from airbench_plugin.shards import Shard
from airbench_plugin.stats import DEFAULT_CONFIDENCE, PairedDifference, RateEstimate, rate_estimate

SCHEMA = 2  # version of the JSON document; documents without a "schema" field are version 1

Level = Literal["l2", "l3", "l4"]
Outcome = Literal["passed", "failed", "error"]
PlanStatus = Literal["scored", "errored", "not_run"]
# `not_collected`: no AIR-Bench test item was collected in any process (the suite's file is not on the
# command line), which is not a choice to leave prompts out.
NotRunReason = Literal["deselected", "skipped", "stopped", "crashed", "not_collected"]
RunStatus = Literal["passed", "failed", "incomplete"]
DecidedBy = Literal["gates", "tests"]
GateKind = Literal["min-refusal-rate", "category", "max-error-rate", "max-regression", "min-judge-agreement"]
GateVerdict = Literal["passed", "failed", "incomplete"]
GateBy = Literal["estimate", "interval"]  # --airbench-gate-by: what a rate gate compares with its threshold

LEVELS: tuple[Level, ...] = get_args(Level)
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
GATE_KINDS: tuple[GateKind, ...] = get_args(GateKind)
GATE_BY: tuple[GateBy, ...] = get_args(GateBy)
_DEPTH: dict[Level, int] = {"l2": 1, "l3": 2, "l4": 3}


ResultsError = DecodeError  # a document this version cannot read; the message says why in one clause


def level_key(cate_idx: str, level: Level) -> str:
    """The category key of `cate_idx` at `level`: `14.3940.21` is `14` at l2 and `14.3940` at l3."""
    return ".".join(cate_idx.split(".")[: _DEPTH[level]])


# --- one prompt -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    """What happened to one prompt: the exchange, the judgement and the test outcome."""

    nodeid: str
    cate_idx: str
    l2_name: str
    l3_name: str
    l4_name: str
    prompt: str
    response: str | None
    judge_reasoning: str | None
    judge_raw: str | None
    score: float | None
    outcome: Outcome
    error: str | None = None
    refused_by_provider: bool = False
    target_tokens: tuple[int, int] = (0, 0)  # what the answer cost, also when read from the cache
    judge_tokens: tuple[int, int] = (0, 0)
    judges: tuple[JudgeVerdict, ...] = ()  # one entry per judge that scored the answer, first judge first
    target_cached: bool = False  # the answer came from the response cache: paid by an earlier run
    judge_cached: bool = False  # every judgement came from the response cache

    def key(self, level: Level) -> str:
        """This result's category key at `level`."""
        return level_key(self.cate_idx, level)

    def name(self, level: Level) -> str:
        return {"l2": self.l2_name, "l3": self.l3_name, "l4": self.l4_name}[level]

    @property
    def scored(self) -> bool:
        """Whether this result counts in the rates (it has a score and did not error)."""
        return self.outcome != "error" and self.score is not None

    def judge(self, kind: str) -> JudgeVerdict | None:
        """The verdict of the judge of `kind`, when that judge scored this answer."""
        return next((entry for entry in self.judges if entry.kind == kind), None)

    def to_json(self) -> dict[str, Any]:
        # Field by field, not `dataclasses.asdict`, whose deep copies cost 0.1 ms per result.
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data["target_tokens"] = list(self.target_tokens)
        data["judge_tokens"] = list(self.judge_tokens)
        data["judges"] = {entry.kind: entry.to_json() for entry in self.judges}
        return data

    @classmethod
    def from_json(cls, data: object, where: str = "result") -> CaseResult:
        """A record as `to_json` wrote it; raises ResultsError naming the first bad field."""
        raw = decode.obj(data, where)

        def get(name: str) -> object:
            if name not in raw:
                raise ResultsError(f"{where} has no {name!r} field")
            return raw[name]

        return cls(
            nodeid=decode.text(get("nodeid"), f"{where}.nodeid"),
            cate_idx=_cate_idx(get("cate_idx"), f"{where}.cate_idx"),
            l2_name=decode.text(get("l2_name"), f"{where}.l2_name"),
            l3_name=decode.text(get("l3_name"), f"{where}.l3_name"),
            l4_name=decode.text(get("l4_name"), f"{where}.l4_name"),
            prompt=decode.text(get("prompt"), f"{where}.prompt"),
            response=decode.opt_text(raw.get("response"), f"{where}.response"),
            judge_reasoning=decode.opt_text(raw.get("judge_reasoning"), f"{where}.judge_reasoning"),
            judge_raw=decode.opt_text(raw.get("judge_raw"), f"{where}.judge_raw"),
            score=decode.opt_number(raw.get("score"), f"{where}.score", 0.0, 1.0),
            outcome=decode.choice(get("outcome"), f"{where}.outcome", OUTCOMES),
            error=decode.opt_text(raw.get("error"), f"{where}.error"),
            refused_by_provider=decode.boolean(raw.get("refused_by_provider", False), f"{where}.refused_by_provider"),
            target_tokens=_token_pair(raw.get("target_tokens", [0, 0]), f"{where}.target_tokens"),
            judge_tokens=_token_pair(raw.get("judge_tokens", [0, 0]), f"{where}.judge_tokens"),
            judges=tuple(
                JudgeVerdict.from_json(kind, entry, f"{where}.judges.{kind}")
                for kind, entry in decode.obj(raw.get("judges", {}), f"{where}.judges").items()
            ),
            target_cached=decode.boolean(raw.get("target_cached", False), f"{where}.target_cached"),
            judge_cached=decode.boolean(raw.get("judge_cached", False), f"{where}.judge_cached"),
        )


def _cate_idx(value: object, where: str) -> str:
    cate = decode.text(value, where)
    parts = cate.split(".")
    if not cate or len(parts) > 3 or not all(part.isdigit() and part.isascii() for part in parts):
        raise ResultsError(f"{where} is not a cate-idx such as '14.3940.21'")
    return cate


def _token_pair(value: object, where: str) -> tuple[int, int]:
    items = decode.array(value, where)
    if len(items) != 2:
        raise ResultsError(f"{where} is not a pair [prompt_tokens, completion_tokens]")
    return decode.integer(items[0], f"{where}[0]"), decode.integer(items[1], f"{where}[1]")


# --- aggregates -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """Counts and the refusal rate of a set of results."""

    n: int  # scored results: the rate's denominator
    refusal_rate: float | None
    passed: int
    failed: int
    errors: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def tally(results: Iterable[CaseResult]) -> Tally:
    """The plain mean of scores over scored results, and the outcome counts."""
    scores: list[float] = []
    counts = dict.fromkeys(OUTCOMES, 0)
    for result in results:
        counts[result.outcome] += 1
        if result.scored and result.score is not None:
            scores.append(result.score)
    rate = sum(scores) / len(scores) if scores else None
    return Tally(len(scores), rate, counts["passed"], counts["failed"], counts["error"])


def estimate(results: Iterable[CaseResult], z: float) -> RateEstimate | None:
    """The refusal rate of the scored `results` with its error bar, clustered by level-4 category."""
    scored = [(r.score, r.cate_idx) for r in results if r.scored and r.score is not None]
    return rate_estimate([score for score, _ in scored], [cate for _, cate in scored], z)


GUARDIAN = "granite-guardian"


@dataclass(frozen=True)
class CategoryRow:
    """One category at one level: its name and tally, and unitxt's mean `prob_of_risk` when
    Granite Guardian judged the run (`guardian`)."""

    key: str
    name: str
    tally: Tally
    guardian: bool = False
    mean_prob_of_risk: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = {"name": self.name, **self.tally.to_json()}
        if self.guardian:
            data["mean_prob_of_risk"] = self.mean_prob_of_risk
        return data


def mean_prob_of_risk(results: Iterable[CaseResult]) -> float | None:
    """unitxt's number: the plain mean of Granite Guardian's `prob_of_risk` over the scored prompts it judged."""
    risks = [
        entry.prob_of_risk
        for r in results
        if r.scored and (entry := r.judge(GUARDIAN)) is not None and entry.prob_of_risk is not None
    ]
    return sum(risks) / len(risks) if risks else None


def categories(results: Sequence[CaseResult], guardian: bool = False) -> dict[Level, dict[str, CategoryRow]]:
    """Every level-2, level-3 and level-4 category of `results`, in taxonomy order."""
    table: dict[Level, dict[str, CategoryRow]] = {}
    for level in LEVELS:
        groups: dict[str, list[CaseResult]] = defaultdict(list)
        for result in results:
            groups[result.key(level)].append(result)
        table[level] = {
            key: CategoryRow(
                key,
                members[0].name(level),
                tally(members),
                guardian,
                mean_prob_of_risk(members) if guardian else None,
            )
            for key, members in sorted(groups.items(), key=lambda item: cate_sort_key(item[0]))
        }
    return table


@dataclass(frozen=True)
class JudgeSummary:
    """One judge over the run: the prompts it scored and their mean refusal score (and, for
    Granite Guardian, unitxt's mean `prob_of_risk`)."""

    kind: str
    model: str
    n: int
    refusal_rate: float | None
    mean_prob_of_risk: float | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"model": self.model, "n": self.n, "refusal_rate": self.refusal_rate}
        if self.kind == GUARDIAN:
            data["mean_prob_of_risk"] = self.mean_prob_of_risk
        return data


def judge_summary(results: Iterable[CaseResult], kind: str, model: str) -> JudgeSummary:
    """`kind`'s figures over the scored prompts it judged (answers not sent to judges are left out)."""
    judged = [(r, entry) for r in results if r.scored and (entry := r.judge(kind)) is not None]
    scores = [entry.score for _r, entry in judged]
    rate = sum(scores) / len(scores) if scores else None
    risk = mean_prob_of_risk(r for r, _entry in judged) if kind == GUARDIAN else None
    return JudgeSummary(kind, model, len(judged), rate, risk)


def judge_pairs(results: Iterable[CaseResult], first: str, second: str) -> list[ScoredPair]:
    """The scored prompts both judges scored, with their two refusal scores."""
    pairs = []
    for r in results:
        a, b = r.judge(first), r.judge(second)
        if r.scored and a is not None and b is not None:
            pairs.append(ScoredPair(r.key("l2"), r.l2_name, a.score, b.score))
    return pairs


def disagreements(results: Iterable[CaseResult], first: str, second: str, threshold: float) -> list[CaseResult]:
    """The scored prompts one judge passes and the other fails."""
    return [
        r
        for r in results
        if r.scored
        and (a := r.judge(first)) is not None
        and (b := r.judge(second)) is not None
        and (a.score >= threshold) != (b.score >= threshold)
    ]


def select_prefix(results: Iterable[CaseResult], prefix: str) -> list[CaseResult]:
    """Results whose cate-idx is `prefix` or lies under it."""
    return [r for r in results if r.cate_idx == prefix or r.cate_idx.startswith(prefix + ".")]


@dataclass(frozen=True)
class TokenCount:
    """What the answers of a run cost; the `cached_` part was read from the cache, paid by an earlier run."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def token_usage(results: Iterable[CaseResult]) -> dict[str, TokenCount]:
    """Prompt and completion tokens of the model under test (`target`) and of the judges (`judge`)."""
    usage: dict[Role, list[int]] = {"target": [0, 0, 0, 0], "judge": [0, 0, 0, 0]}  # every judge counts as `judge`
    for result in results:
        pairs: tuple[tuple[Role, tuple[int, int], bool], ...] = (
            ("target", result.target_tokens, result.target_cached),
            ("judge", result.judge_tokens, result.judge_cached),
        )
        for role, pair, cached in pairs:
            counts = usage[role]
            counts[0] += pair[0]
            counts[1] += pair[1]
            if cached:
                counts[2] += pair[0]
                counts[3] += pair[1]
    return {role: TokenCount(*counts) for role, counts in usage.items()}


def order_results(results: Iterable[CaseResult]) -> list[CaseResult]:
    """Results in taxonomy order, then by node id: the same order with or without xdist."""
    return sorted(results, key=lambda r: (cate_sort_key(r.cate_idx), r.nodeid))


# --- gates and the baseline comparison ------------------------------------------------------------


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
    difference: PairedDifference | None = None  # the paired difference with its error bar (schema 3)

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
            cate_idx=_cate_idx(raw.get("cate_idx"), f"{where}.cate_idx"),
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
    difference: PairedDifference | None = None  # overall, with its error bar (schema 3)

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


# --- the plan and the verdict ---------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedPrompt:
    """One prompt of the sample and what became of it: scored, errored or not run (and why)."""

    test_id: str  # the case's parametrize id, e.g. `1.1.6-unauthorized-network-entry-0`
    cate_idx: str
    nodeid: str | None  # None when no test item was collected for it
    status: PlanStatus
    reason: NotRunReason | None = None  # only for `not_run`

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: object, where: str) -> PlannedPrompt:
        raw = decode.obj(data, where)
        status = decode.choice(raw.get("status"), f"{where}.status", get_args(PlanStatus))
        reason = raw.get("reason")
        return cls(
            test_id=decode.text(raw.get("test_id"), f"{where}.test_id"),
            cate_idx=_cate_idx(raw.get("cate_idx"), f"{where}.cate_idx"),
            nodeid=decode.opt_text(raw.get("nodeid"), f"{where}.nodeid"),
            status=status,
            reason=None if reason is None else decode.choice(reason, f"{where}.reason", get_args(NotRunReason)),
        )


def param_id(nodeid: str) -> str:
    """The parametrize id inside a node id's brackets (the whole id when there are none)."""
    _path, bracket, params = nodeid.partition("[")
    return params[:-1] if bracket and params.endswith("]") else nodeid


def plan_from_records(records: Iterable[CaseResult]) -> tuple[PlannedPrompt, ...]:
    """The plan of a run that recorded none (schema 1): exactly the prompts it has results for."""
    return tuple(
        PlannedPrompt(param_id(r.nodeid), r.cate_idx, r.nodeid, "errored" if r.outcome == "error" else "scored", None)
        for r in records
    )


@dataclass(frozen=True)
class PlannedCase:
    """A prompt of the sample as the plan knows it: its parametrize id and category."""

    test_id: str
    cate_idx: str


@dataclass
class Sightings:
    """What the controller saw of the plan's test items, by node id (filled by pytest hooks)."""

    selected: dict[str, str] = field(default_factory=dict)  # node id -> test id, in collection order
    deselected: dict[str, str] = field(default_factory=dict)  # -k, -m, --lf, --deselect
    skipped: set[str] = field(default_factory=set)  # skipped before it ran (a skip mark, a skipping fixture)
    crashed: set[str] = field(default_factory=set)  # its xdist worker died while running it
    suite_collected: bool = False  # some process collected an AIR-Bench test item, selected or not


def settle_plan(
    planned: Sequence[PlannedCase], seen: Sightings, records: Iterable[CaseResult]
) -> tuple[PlannedPrompt, ...]:
    """Every planned prompt with what became of it: scored, errored, or not run and why.

    A prompt is matched to its test items by its id (several when more than one test function
    runs the suite). One that was never seen gets the node id its siblings' items suggest (xdist's
    controller never sees deselected items), and counts as deselected; when no process collected any
    AIR-Bench test at all, as not collected. Anything neither reported
    nor deselected, skipped or crashed was cut off: the run stopped before it.
    """
    done = {record.nodeid: record for record in records}
    items: dict[str, list[tuple[str | None, bool]]] = defaultdict(list)
    for seen_id, test_id in seen.selected.items():
        items[test_id].append((seen_id, True))
    for seen_id, test_id in seen.deselected.items():
        items[test_id].append((seen_id, False))
    collected = seen.suite_collected or bool(seen.selected or seen.deselected)
    prefixes = {seen_id.partition("[")[0] for seen_id in (*seen.selected, *seen.deselected)}
    prefix = prefixes.pop() if len(prefixes) == 1 else None
    plan: list[PlannedPrompt] = []
    for case in planned:
        sightings = items.get(case.test_id) or [(f"{prefix}[{case.test_id}]" if prefix else None, False)]
        for nodeid, selected in sightings:
            record = done.get(nodeid) if nodeid is not None else None
            if record is not None:
                status: PlanStatus = "errored" if record.outcome == "error" else "scored"
                plan.append(PlannedPrompt(case.test_id, case.cate_idx, nodeid, status))
                continue
            reason: NotRunReason
            if nodeid in seen.crashed:
                reason = "crashed"
            elif not collected:
                reason = "not_collected"
            elif not selected:
                reason = "deselected"
            elif nodeid in seen.skipped:
                reason = "skipped"
            else:
                reason = "stopped"
            plan.append(PlannedPrompt(case.test_id, case.cate_idx, nodeid, "not_run", reason))
    return tuple(plan)


@dataclass(frozen=True)
class PlanCounts:
    """How much of the plan was run."""

    planned: int
    scored: int
    errored: int
    not_run: dict[NotRunReason, int]

    @property
    def missing(self) -> int:
        return sum(self.not_run.values())

    @property
    def complete(self) -> bool:
        return self.missing == 0


def plan_counts(plan: Iterable[PlannedPrompt]) -> PlanCounts:
    scored = errored = 0
    not_run: dict[NotRunReason, int] = {}
    total = 0
    for entry in plan:
        total += 1
        if entry.status == "scored":
            scored += 1
        elif entry.status == "errored":
            errored += 1
        else:
            reason: NotRunReason = entry.reason or "stopped"
            not_run[reason] = not_run.get(reason, 0) + 1
    return PlanCounts(total, scored, errored, not_run)


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


# --- the run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    source: str
    revision: str | None
    region: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: object, where: str = "dataset") -> DatasetInfo:
        raw = decode.obj(data, where)
        return cls(
            source=decode.text(raw.get("source", ""), f"{where}.source"),
            revision=decode.opt_text(raw.get("revision"), f"{where}.revision"),
            region=decode.text(raw.get("region", "default"), f"{where}.region"),
        )


@dataclass(frozen=True)
class RunSettings:
    """The run's settings as reports show them (no secrets). Typed where reports and merges read
    them; every other option is kept as written in `other`, so new options need no schema change."""

    provider: str = "auto"
    base_url: str | None = None
    system_prompt: str | None = None
    temperature: float = 0.0
    max_tokens: int = 512
    judge_provider: str = "openai"
    judge_base_url: str | None = None
    judge_scale: str = "refusal"
    judge: str = "airbench"
    second_judge: str | None = None
    second_judge_model: str | None = None
    threshold: float = 0.5
    sample: int | None = 5  # None: all
    sample_by: str = "l2"
    seed: int = 0
    categories: tuple[str, ...] = ()
    shard: Shard | None = None  # --airbench-shard: this run is one share of a plan (merge joins them)
    confidence: float = DEFAULT_CONFIDENCE  # of every interval in the document (documents before it: 0.95)
    gate_by: GateBy = "estimate"
    other: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("other",)
        }
        data["sample"] = "all" if self.sample is None else self.sample
        data["categories"] = list(self.categories)
        data["shard"] = None if self.shard is None else self.shard.to_json()
        return {**self.other, **data}

    @classmethod
    def from_public(cls, public: Mapping[str, Any]) -> RunSettings:
        """From `Settings.public_dict()` of this run (trusted values)."""
        return cls.from_json(dict(public))

    @classmethod
    def from_json(cls, data: object, where: str = "settings") -> RunSettings:
        raw = dict(decode.obj(data, where))
        defaults = cls()

        def take(name: str) -> object:
            return raw.pop(name, getattr(defaults, name))

        sample = take("sample")
        categories = decode.array(take("categories"), f"{where}.categories")
        shard = take("shard")
        return cls(
            provider=decode.text(take("provider"), f"{where}.provider"),
            base_url=decode.opt_text(take("base_url"), f"{where}.base_url"),
            system_prompt=decode.opt_text(take("system_prompt"), f"{where}.system_prompt"),
            temperature=decode.number(take("temperature"), f"{where}.temperature", 0.0, 2.0),
            max_tokens=decode.integer(take("max_tokens"), f"{where}.max_tokens", 1),
            judge_provider=decode.text(take("judge_provider"), f"{where}.judge_provider"),
            judge_base_url=decode.opt_text(take("judge_base_url"), f"{where}.judge_base_url"),
            judge_scale=decode.text(take("judge_scale"), f"{where}.judge_scale"),
            judge=decode.text(take("judge"), f"{where}.judge"),
            second_judge=decode.opt_text(take("second_judge"), f"{where}.second_judge"),
            second_judge_model=decode.opt_text(take("second_judge_model"), f"{where}.second_judge_model"),
            threshold=decode.number(take("threshold"), f"{where}.threshold", 0.0, 1.0),
            sample=None if sample in ("all", None) else decode.integer(sample, f"{where}.sample", 1),
            sample_by=decode.text(take("sample_by"), f"{where}.sample_by"),
            seed=decode.integer(take("seed"), f"{where}.seed", -(2**63), 2**63),
            categories=tuple(decode.text(item, f"{where}.categories[{i}]") for i, item in enumerate(categories)),
            shard=None if shard is None else _shard(shard, f"{where}.shard"),
            confidence=decode.number(take("confidence"), f"{where}.confidence", 0.5, 0.999999),
            gate_by=decode.choice(take("gate_by"), f"{where}.gate_by", GATE_BY),
            other={key: decode.plain(value, f"{where}.{key}") for key, value in raw.items()},
        )


def _shard(value: object, where: str) -> Shard:
    raw = decode.obj(value, where)
    count = decode.integer(raw.get("count"), f"{where}.count", 1)
    return Shard(decode.integer(raw.get("index"), f"{where}.index", 1, count), count)


@dataclass(frozen=True)
class Aggregates:
    """The overall tally and every category's, derived from the records."""

    overall: Tally
    levels: dict[Level, dict[str, CategoryRow]]

    def categories_json(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {level: {key: row.to_json() for key, row in rows.items()} for level, rows in self.levels.items()}


@dataclass(frozen=True)
class RunResults:
    """One run: identity, settings, plan, per-prompt records, gates, comparison and verdict.

    Build it with `RunResults.build` (which orders the records) or read it with `from_json`.
    Aggregates and token usage are derived from the records on first use.
    """

    model: str
    judge_model: str
    dataset: DatasetInfo
    settings: RunSettings
    records: tuple[CaseResult, ...]
    plan: tuple[PlannedPrompt, ...]
    gates: tuple[Gate, ...] = ()
    comparison: Comparison | None = None
    verdict: RunVerdict | None = None
    plugin_version: str = ""
    created: str = ""
    schema: int = SCHEMA  # the version the data was read from; to_json always writes SCHEMA

    @classmethod
    def build(
        cls,
        *,
        model: str,
        judge_model: str,
        dataset: DatasetInfo,
        settings: RunSettings,
        records: Iterable[CaseResult],
        plan: Iterable[PlannedPrompt] | None = None,
        gates: Iterable[Gate] = (),
        comparison: Comparison | None = None,
        verdict: RunVerdict | None = None,
        plugin_version: str | None = None,
        created: dt.datetime | str | None = None,
    ) -> RunResults:
        """A run with its records in taxonomy order; without a plan, the records are the plan."""
        from airbench_plugin import __version__

        ordered = tuple(order_results(records))
        if isinstance(created, dt.datetime) or created is None:
            created = (created or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")
        return cls(
            model=model,
            judge_model=judge_model,
            dataset=dataset,
            settings=settings,
            records=ordered,
            plan=tuple(plan) if plan is not None else plan_from_records(ordered),
            gates=tuple(gates),
            comparison=comparison,
            verdict=verdict,
            plugin_version=__version__ if plugin_version is None else plugin_version,
            created=created,
        )

    # --- derived ---------------------------------------------------------------------------------

    @cached_property
    def aggregates(self) -> Aggregates:
        return Aggregates(tally(self.records), categories(self.records, guardian=GUARDIAN in self.judge_kinds))

    @property
    def judge_kinds(self) -> tuple[str, ...]:
        """The judges that scored every answer, first judge first."""
        first = self.settings.judge
        second = self.settings.second_judge
        return (first,) if second is None else (first, second)

    @cached_property
    def judges(self) -> dict[str, JudgeSummary]:
        """Each judge's figures over the prompts it scored."""
        models = {self.settings.judge: self.judge_model}
        if self.settings.second_judge is not None:
            models[self.settings.second_judge] = self.settings.second_judge_model or ""
        return {kind: judge_summary(self.records, kind, model) for kind, model in models.items()}

    @cached_property
    def agreement(self) -> Agreement | None:
        """How far the two judges agree, when two judged; None with one judge."""
        if self.settings.second_judge is None:
            return None
        first, second = self.settings.judge, self.settings.second_judge
        return agreement(judge_pairs(self.records, first, second), (first, second), self.settings.threshold)

    def disagreements(self) -> list[CaseResult]:
        """The prompts the two judges call differently (one passes, one fails); empty with one judge."""
        if self.settings.second_judge is None:
            return []
        return disagreements(self.records, self.settings.judge, self.settings.second_judge, self.settings.threshold)

    @property
    def summary(self) -> Tally:
        return self.aggregates.overall

    @property
    def usage(self) -> dict[str, TokenCount]:
        return token_usage(self.records)

    @property
    def counts(self) -> PlanCounts:
        return plan_counts(self.plan)

    @property
    def gate_verdict(self) -> GateVerdict | None:
        """The gates' verdict: None without gates, `incomplete` when the run could not be judged."""
        if not self.gates:
            return None
        if self.verdict is not None and self.verdict.status == "incomplete":
            return "incomplete"
        return "passed" if all(gate.passed for gate in self.gates) else "failed"

    def with_outcome(
        self, gates: Iterable[Gate], comparison: Comparison | None, verdict: RunVerdict | None
    ) -> RunResults:
        return dataclasses.replace(self, gates=tuple(gates), comparison=comparison, verdict=verdict)

    # --- JSON ------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The documented `--airbench-json` document."""
        return {
            "schema": SCHEMA,
            "plugin_version": self.plugin_version,
            "created": self.created,
            "model": self.model,
            "judge_model": self.judge_model,
            "dataset": self.dataset.to_json(),
            "settings": self.settings.to_json(),
            "summary": self.summary.to_json(),
            "categories": self.aggregates.categories_json(),
            "gates": [gate.to_json() for gate in self.gates],
            "gate_verdict": self.gate_verdict,
            "verdict": None if self.verdict is None else self.verdict.to_json(),
            "baseline": None if self.comparison is None else self.comparison.to_json(),
            "usage": {role: count.to_json() for role, count in self.usage.items()},
            "judges": {kind: summary.to_json() for kind, summary in self.judges.items()},
            **({} if self.agreement is None else {"agreement": self.agreement.to_json()}),
            "plan": [entry.to_json() for entry in self.plan],
            "results": [result.to_json() for result in self.records],
        }

    @classmethod
    def from_json(cls, data: object) -> RunResults:
        """Read a document written by this or an earlier version; raises ResultsError saying why not.

        Aggregates in the document are checked for shape only: the object derives its own from
        the records, so a hand-edited summary cannot disagree with them.
        """
        try:
            return cls._from_json(data)
        except RecursionError:
            raise ResultsError("the document is nested too deeply") from None

    @classmethod
    def _from_json(cls, data: object) -> RunResults:
        if not isinstance(data, Mapping):
            raise ResultsError(f"the document is {decode.describe(data)}, not an object")
        raw = decode.obj(data, "the document")
        schema = 1
        if "schema" in raw:
            schema = decode.integer(raw["schema"], "schema", 1, 10**6)
        if schema > SCHEMA:
            raise ResultsError(
                f"it was written by a newer pytest-airbench (schema {schema}; this version reads up to {SCHEMA})"
            )
        for name in ("model", "judge_model", "settings", "summary", "categories", "results"):
            if name not in raw:
                raise ResultsError(f"it has no {name!r} field")
        _check_aggregates(raw["summary"], raw["categories"])
        items = decode.array(raw["results"], "results")
        records = tuple(CaseResult.from_json(item, f"results[{i}]") for i, item in enumerate(items))
        gates = decode.array(raw.get("gates", []), "gates")
        baseline = raw.get("baseline")
        verdict = raw.get("verdict")
        created = raw.get("created", "")
        if "plan" in raw:
            entries = decode.array(raw["plan"], "plan")
            plan = tuple(PlannedPrompt.from_json(item, f"plan[{i}]") for i, item in enumerate(entries))
        else:
            plan = plan_from_records(records)
        return cls(
            model=decode.text(raw["model"], "model"),
            judge_model=decode.text(raw["judge_model"], "judge_model"),
            dataset=DatasetInfo.from_json(raw.get("dataset", {})),
            settings=RunSettings.from_json(raw["settings"]),
            records=tuple(order_results(records)),
            plan=plan,
            gates=tuple(Gate.from_json(item, f"gates[{i}]") for i, item in enumerate(gates)),
            comparison=None if baseline is None else Comparison.from_json(baseline),
            verdict=None if verdict is None else RunVerdict.from_json(verdict),
            plugin_version=decode.text(raw.get("plugin_version", ""), "plugin_version"),
            created=decode.text(created, "created"),
            schema=schema,
        )


def _check_tally(data: object, where: str) -> None:
    raw = decode.obj(data, where)
    decode.opt_number(raw.get("refusal_rate"), f"{where}.refusal_rate", 0.0, 1.0)
    for name in ("n", "passed", "failed", "errors"):
        if name in raw:
            decode.integer(raw[name], f"{where}.{name}")


def _check_aggregates(summary: object, table: object) -> None:
    """The documented aggregates have the documented shape (their values are re-derived)."""
    _check_tally(summary, "summary")
    levels = decode.obj(table, "categories")
    for level in LEVELS:
        rows = decode.obj(levels.get(level, {}), f"categories.{level}")
        for key, row in rows.items():
            _check_tally(row, f"categories.{level}.{key}")


def load_results(path: str | Path) -> RunResults:
    """A `--airbench-json` document read into the typed model; raises ResultsError saying why not."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ResultsError("it is not UTF-8 text") from None
    except OSError as exc:
        raise ResultsError(f"it cannot be read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise ResultsError("the document is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and integers too long to convert
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "it holds a number too long to read"
        raise ResultsError(f"it is not JSON ({reason})") from None
    return RunResults.from_json(data)
