"""The run as one typed tree (`RunResults`) and its JSON form, the `--airbench-json` document.

`RunResults` holds what a run was (model, judge, dataset, settings), what it planned (the sampled
prompts), what happened to each prompt, the gates, the baseline comparison and the verdict. The
aggregates (overall and per level-2/3/4 category) and the token usage are derived from the records,
so they can never disagree with them. Every report formats this object; none re-aggregates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from airbench_plugin import decode
from airbench_plugin.agreement import Agreement, agreement
from airbench_plugin.files import read_regular_text
from airbench_plugin.judges import DEFAULT_JUDGE, JUDGES, judge_class, judge_statistic
from airbench_plugin.results.aggregates import (
    Aggregates,
    JudgeSummary,
    Statistics,
    Tally,
    TokenCount,
    categories,
    disagreements,
    judge_pairs,
    judge_summary,
    tally,
    token_usage,
)
from airbench_plugin.results.calibration import AdjustedRate, JudgeCalibration, bias_adjusted
from airbench_plugin.results.outcome import GATE_BY, Comparison, Gate, GateBy, GatesStatus, RunVerdict
from airbench_plugin.results.plan import PlanCounts, PlannedPrompt, plan_counts, plan_from_records
from airbench_plugin.results.records import LEVELS, CaseResult, ResultsError, order_results
from airbench_plugin.roles import RECORDED_PROVIDER
from airbench_plugin.shards import Shard
from airbench_plugin.stats import DEFAULT_CONFIDENCE, z_value

SCHEMA = 2  # version of the JSON document; documents without a "schema" field are version 1


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
    judge: str = DEFAULT_JUDGE
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

    @property
    def judge_only(self) -> bool:
        """Whether the answers were recorded elsewhere (--airbench-responses): no model under test was called."""
        return self.provider == RECORDED_PROVIDER

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
            seed=decode.integer(take("seed"), f"{where}.seed", decode.SEED_LOW, decode.SEED_HIGH),
            categories=tuple(decode.text(item, f"{where}.categories[{i}]") for i, item in enumerate(categories)),
            shard=None if shard is None else _shard(shard, f"{where}.shard"),
            confidence=read_confidence(take("confidence"), f"{where}.confidence"),
            gate_by=decode.choice(take("gate_by"), f"{where}.gate_by", GATE_BY),
            other={key: decode.plain(value, f"{where}.{key}") for key, value in raw.items()},
        )


def read_confidence(value: object, where: str) -> float:
    """A confidence level, as --airbench-confidence takes it: at least 0.5 and below 1."""
    confidence = decode.number(value, where, 0.5, 1.0)
    if confidence == 1.0:
        raise ResultsError(f"{where} is 1, not a confidence level below 1")
    return confidence


def _shard(value: object, where: str) -> Shard:
    raw = decode.obj(value, where)
    count = decode.integer(raw.get("count"), f"{where}.count", 1)
    return Shard(decode.integer(raw.get("index"), f"{where}.index", 1, count), count)


PRESENTED_DIGITS = 6  # decimals of a derived figure in the document (a rate to 0.0001 points)


def presented(value: Any) -> Any:
    """`value` with every float rounded to PRESENTED_DIGITS decimals: derived figures (rates, intervals,
    gates) read 0.728375, not 0.7283750000000007. Records keep their scores exact; the model derives
    its figures from them again when a document is read, so nothing is lost."""
    if isinstance(value, float):
        return round(value, PRESENTED_DIGITS)
    if isinstance(value, dict):
        return {key: presented(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [presented(item) for item in value]
    return value


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
    judge_calibration: JudgeCalibration | None = None  # --airbench-judge-calibration: the judge's calibration

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
        z = z_value(self.settings.confidence)
        return Aggregates(tally(self.records, z), categories(self.records, self.statistics, z))

    @property
    def statistics(self) -> Statistics:
        """The judges' own figures this run reports, first judge first."""
        return [(kind, statistic) for kind in self.judge_kinds if (statistic := judge_statistic(kind)) is not None]

    @property
    def judge_notes(self) -> list[str]:
        """What the judges say once about this run's readings (scores that rest on labels only)."""
        notes = []
        for kind in self.judge_kinds:
            note = judge_class(kind).label_only_note if kind in JUDGES else None
            if note and any(e.label_only for r in self.records for e in r.judges if e.kind == kind):
                notes.append(note)
        return notes

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
        z = z_value(self.settings.confidence)
        return {kind: judge_summary(self.records, kind, model, z) for kind, model in models.items()}

    @cached_property
    def agreement(self) -> Agreement | None:
        """How far the two judges agree, when two judged; None with one judge."""
        if self.settings.second_judge is None:
            return None
        first, second = self.settings.judge, self.settings.second_judge
        pairs = judge_pairs(self.records, first, second)
        return agreement(pairs, (first, second), self.settings.threshold, z_value(self.settings.confidence))

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
    def gates_status(self) -> GatesStatus | None:
        """The gates' combined status (the JSON's `gate_verdict`): None without gates, `incomplete`
        when the run could not be judged."""
        if not self.gates:
            return None
        if self.verdict is not None and self.verdict.status == "incomplete":
            return "incomplete"
        return "passed" if all(gate.passed for gate in self.gates) else "failed"

    @cached_property
    def bias_adjusted(self) -> AdjustedRate | None:
        """The observed mean refusal score minus the calibrated judge bias (an estimate); None
        without a calibration or without scored prompts."""
        if self.judge_calibration is None:
            return None
        scored = [record for record in self.records if record.scored and record.score is not None]
        return bias_adjusted(
            self.judge_calibration, [r.score for r in scored if r.score is not None], [r.cate_idx for r in scored]
        )

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
            "confidence": self.settings.confidence,  # of every interval in the document
            "summary": presented(self.summary.to_json()),
            "categories": presented(self.aggregates.categories_json()),
            "gates": presented([gate.to_json() for gate in self.gates]),
            "gate_verdict": self.gates_status,
            "verdict": None if self.verdict is None else self.verdict.to_json(),
            "baseline": None if self.comparison is None else presented(self.comparison.to_json()),
            "usage": {role: count.to_json() for role, count in self.usage.items()},
            "judges": presented({kind: summary.to_json() for kind, summary in self.judges.items()}),
            **({} if self.agreement is None else {"agreement": presented(self.agreement.to_json())}),
            **presented(self._calibration_json()),
            "plan": [entry.to_json() for entry in self.plan],
            "results": [result.to_json() for result in self.records],
        }

    def _calibration_json(self) -> dict[str, Any]:
        if self.judge_calibration is None:
            return {}
        adjusted = self.bias_adjusted
        stated = {**self.judge_calibration.to_json(), "bias_adjusted": None if adjusted is None else adjusted.to_json()}
        return {"judge_calibration": stated}

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
        if "confidence" in raw:  # the settings' confidence, repeated at the top for readers of the file
            read_confidence(raw["confidence"], "confidence")
        items = decode.array(raw["results"], "results")
        records = tuple(CaseResult.from_json(item, f"results[{i}]") for i, item in enumerate(items))
        gates = decode.array(raw.get("gates", []), "gates")
        baseline = raw.get("baseline")
        verdict = raw.get("verdict")
        created = raw.get("created", "")
        calibration = raw.get("judge_calibration")  # its bias_adjusted is derived again
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
            judge_calibration=None if calibration is None else JudgeCalibration.from_json(calibration),
        )


def _check_tally(data: object, where: str) -> None:
    raw = decode.obj(data, where)
    for name in ("refusal_rate", "stderr", "ci_low", "ci_high"):
        decode.opt_number(raw.get(name), f"{where}.{name}", 0.0, 1.0)
    decode.opt_number(raw.get("n_effective"), f"{where}.n_effective", 0.0, decode.MAX_COUNT)
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
        text = read_regular_text(path)  # never /dev/zero or a FIFO: they exhaust memory or hang
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
