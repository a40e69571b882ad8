"""The plan: the sampled prompts and what became of each (scored, errored, not run and why)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from airbench_plugin import decode
from airbench_plugin.results.records import CaseResult, read_cate_idx

PlanStatus = Literal["scored", "errored", "not_run"]
# `not_collected`: no AIR-Bench test item was collected in any process (the suite's file is not on the
# command line), which is not a choice to leave prompts out.
NotRunReason = Literal["deselected", "skipped", "stopped", "crashed", "not_collected"]


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
            cate_idx=read_cate_idx(raw.get("cate_idx"), f"{where}.cate_idx"),
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
