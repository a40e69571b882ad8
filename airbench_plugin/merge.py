"""Join the results of one run split over several jobs (`airbench merge`). Pure functions over `RunResults`.

Shards come from `--airbench-shard I/K` or from a test-splitting plugin (pytest-split, `-k`): each
file holds part of one plan. Files are refused, with one sentence, when they are not parts of the
same run (model, judge, settings, dataset revision, seed), when two hold the same prompt, or when
part of the plan is missing (unless partial runs are allowed). The merged run is then exactly the
run one job would have written: the records joined, the aggregates derived from them, the gates
evaluated again with the merge's own options. Each file is verified against its own plan first
(`verify`): its results are its plan's, once each, with the outcome their scores give.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from airbench_plugin.dataset import cate_sort_key
from airbench_plugin.endpoints import field_name
from airbench_plugin.gates import GateSettings, RunFacts, compare, decide, evaluate_gates
from airbench_plugin.reports import OutputPaths
from airbench_plugin.results import PlannedPrompt, RunResults, RunSettings, RunVerdict
from airbench_plugin.stats import z_value

# Settings that say how a job ran or what it wrote, not what was measured, may differ between shards;
# the merged run takes the merge's own (outputs, gates) or the first file's. Each option says which it
# is on its declaration (`OptionSpec.measured`), and the caller passes that set (`MergeOptions.operational`);
# a run fact that is no option is named here.
RUN_FACTS = frozenset({"shutdown_dates"})  # what the endpoints announced when the job started
SENT_PREFIX = "sent_"  # what each endpoint was sent (run.finish): taken from the first file, like the other run facts
JUDGE_SETTINGS = (
    "judge",
    "judge_scale",
    "judge_prompts",
    "second_judge",
    # Where each judge was asked and how: its endpoint's settings that change its readings.
    *(
        field_name(role, setting)
        for role in ("judge", "second judge")
        for setting in ("model", "provider", "base_url", "max_tokens", "reasoning_effort")
    ),
)


class MergeError(Exception):
    """Files that cannot be merged; the message is one sentence for the user."""


@dataclass(frozen=True)
class RunFile:
    """One shard's results and the path they were read from (for messages)."""

    path: str
    run: RunResults


@dataclass(frozen=True)
class MergeOptions:
    """What `airbench merge` was asked for: the gates (one `GateSettings`, as a run's) and the outputs.

    `operational` names the settings that may differ between shards (the options declared not
    measured, given by the caller: merge knows no option declarations). `from_shards` names the gate
    settings not given, which the merged run takes from the shards (`confidence`, `gate_by`).
    """

    operational: frozenset[str]
    gates: GateSettings = field(default_factory=GateSettings)
    from_shards: frozenset[str] = frozenset()
    json: str | None = None
    report: str | None = None
    junit_dir: str | None = None
    markdown: str | None = None
    no_step_summary: bool = False

    def outputs(self) -> OutputPaths:
        """Where the merged run's outputs go."""
        return OutputPaths(json=self.json, report=self.report, junit_dir=self.junit_dir, markdown=self.markdown)

    def gates_for(self, shards: RunSettings) -> GateSettings:
        """The merged run's gate settings: as given, and as the shards ran those not given."""
        return dataclasses.replace(self.gates, **{name: getattr(shards, name) for name in self.from_shards})

    def settings_overrides(self, gates: GateSettings) -> dict[str, object]:
        """The merged run's settings for these outputs and `gates`, as a single job's document records them."""
        return {
            "json": self.json,
            "report": self.report,
            "junit_dir": self.junit_dir,
            "markdown": self.markdown,
            "no_step_summary": self.no_step_summary,
            **gates.to_json(),
        }


@dataclass(frozen=True)
class Merged:
    """The merged run, the exit status its gates decide, and what it lacks (with --allow-partial)."""

    run: RunResults
    missing: int  # planned prompts no file ran
    allow_partial: bool = False  # --allow-partial: gate on what the files hold
    absent_shards: tuple[str, ...] = ()  # `--airbench-shard` shards no file holds, as "2/4"


# --- the checks -----------------------------------------------------------------------------------


def _measured(settings: RunSettings, operational: frozenset[str]) -> dict[str, object]:
    """The settings that must be equal for two files to be parts of one run (all but `operational`
    ones and the run's facts)."""
    data = settings.to_json()
    return {
        key: value
        for key, value in data.items()
        if key not in operational and key not in RUN_FACTS and not key.startswith(SENT_PREFIX)
    }


def _show(value: object) -> str:
    return "none" if value is None else repr(value)


Identity = Callable[[RunResults], object]
IDENTITIES: tuple[tuple[str, Identity], ...] = (
    ("models", lambda run: run.model),
    ("judges", lambda run: (run.judge_model, *(run.settings.to_json().get(key) for key in JUDGE_SETTINGS))),
    ("dataset revisions", lambda run: (run.dataset.source, run.dataset.revision, run.dataset.region)),
    # A local template file's content hash (hub templates: their revision); files from before it have none.
    ("judge templates", lambda run: run.settings.other.get("judge_prompts_revision")),
    ("seeds", lambda run: run.settings.seed),
    ("judge calibrations", lambda run: run.judge_calibration and dataclasses.replace(run.judge_calibration, source="")),
)


def check_same_run(files: Sequence[RunFile], operational: frozenset[str]) -> None:
    """Refuse files that are not parts of one run: different model, judge, dataset, seed or settings
    (other than the `operational` ones)."""
    first = files[0]
    for other in files[1:]:
        for what, identity in IDENTITIES:
            mine, theirs = identity(first.run), identity(other.run)
            if mine != theirs:
                shown = f" ({_show(mine)} and {_show(theirs)})" if what in ("models", "seeds") else ""
                raise MergeError(
                    f"cannot merge {first.path!r} and {other.path!r}: they were run with different {what}{shown}; "
                    "merge only the shards of one run."
                )
        mine_settings = _measured(first.run.settings, operational)
        their_settings = _measured(other.run.settings, operational)
        for key in sorted(set(mine_settings) | set(their_settings)):
            if mine_settings.get(key) != their_settings.get(key):
                raise MergeError(
                    f"cannot merge {first.path!r} and {other.path!r}: they were run with different settings "
                    f"({key}: {_show(mine_settings.get(key))} and {_show(their_settings.get(key))}); "
                    "merge only the shards of one run."
                )


def verify(file: RunFile) -> None:
    """Refuse a file whose results disagree with its own plan: a result outside the plan or twice,
    an outcome its score and threshold do not give, a planned prompt without its result.

    A shard is input like any file: a record repeated 40 times, a deleted failing record or an
    outcome edited to `passed` would otherwise change the merged verdict.
    """
    run = file.run
    threshold = run.settings.threshold
    planned = {entry.nodeid: entry for entry in run.plan if entry.nodeid is not None and entry.status != "not_run"}
    seen: set[str] = set()

    def refuse(detail: str) -> MergeError:
        return MergeError(
            f"cannot merge: {file.path!r} does not hold what its run wrote: {detail}; merge the unedited "
            "--airbench-json files of the shards."
        )

    for number, record in enumerate(run.records, 1):
        where = f"result {number} ({record.nodeid})"
        entry = planned.get(record.nodeid)
        if entry is None:
            raise refuse(f"{where} is not a prompt its plan ran")
        if record.nodeid in seen:
            raise refuse(f"{where} appears more than once")
        seen.add(record.nodeid)
        if record.cate_idx != entry.cate_idx:
            raise refuse(f"{where} has cate-idx {record.cate_idx}, its plan {entry.cate_idx}")
        expected = _outcome(record.score, threshold) if entry.status == "scored" else "error"
        if record.outcome != expected:
            score = "no score" if record.score is None else f"score {record.score:g}"
            raise refuse(f"{where} is {record.outcome!r} with {score} and threshold {threshold:g}, not {expected!r}")
    missing = [nodeid for nodeid in planned if nodeid not in seen]
    if missing:
        raise refuse(f"its plan ran {missing[0]} but it holds no result for it")


def _outcome(score: float | None, threshold: float) -> str:
    """The outcome a scored prompt's test has: passed at or above the threshold (suite.check_score)."""
    if score is None:
        return "error"
    return "passed" if score >= threshold else "failed"


def check_shards(files: Sequence[RunFile], allow_partial: bool) -> tuple[str, ...]:
    """`--airbench-shard` files: the same K, each index once, every index present (unless partial)."""
    sharded = [f for f in files if f.run.settings.shard is not None]
    if not sharded:
        return ()
    if len(sharded) != len(files):
        plain = next(f for f in files if f.run.settings.shard is None)
        raise MergeError(
            f"cannot merge {plain.path!r} with --airbench-shard files: it was not run with --airbench-shard."
        )
    seen: dict[int, RunFile] = {}
    count = None
    for file in sharded:
        shard = file.run.settings.shard
        assert shard is not None
        if count is not None and shard.count != count:
            raise MergeError(
                f"cannot merge {sharded[0].path!r} and {file.path!r}: they split the run into {count} and "
                f"{shard.count} shards; merge the shards of one split."
            )
        count = shard.count
        if shard.index in seen:
            raise MergeError(
                f"cannot merge {seen[shard.index].path!r} and {file.path!r}: both are shard {shard}; "
                "pass each shard's file once."
            )
        seen[shard.index] = file
    assert count is not None
    absent = tuple(f"{index}/{count}" for index in range(1, count + 1) if index not in seen)
    if absent and not allow_partial:
        raise MergeError(
            f"cannot merge: shard {', '.join(absent)} {'is' if len(absent) == 1 else 'are'} missing; "
            "pass every shard's file, or --allow-partial to gate on part of the run."
        )
    return absent


def merged_plan(files: Sequence[RunFile], allow_partial: bool) -> tuple[list[PlannedPrompt], int]:
    """Every planned prompt once, from the file that ran it; refuses overlaps and (unless partial) gaps.

    A prompt counts as run in a file when it was scored or errored there; a file that planned it
    but did not run it (deselected by pytest-split or `-k`, stopped) leaves it to the others.
    """
    ran: dict[str, tuple[RunFile, PlannedPrompt]] = {}
    not_run: dict[str, PlannedPrompt] = {}
    for file in files:
        for entry in file.run.plan:
            if entry.status == "not_run":
                not_run.setdefault(entry.test_id, entry)
                continue
            if entry.test_id in ran:
                earlier = ran[entry.test_id][0]
                raise MergeError(
                    f"cannot merge {earlier.path!r} and {file.path!r}: both ran the prompt {entry.test_id}; "
                    "pass each shard's file once, and shards that do not overlap."
                )
            ran[entry.test_id] = (file, entry)
    missing = [entry for test_id, entry in not_run.items() if test_id not in ran]
    if missing and not allow_partial:
        planned = len(ran) + len(missing)
        raise MergeError(
            f"cannot merge: the files ran {len(ran)} of the {planned} planned prompts "
            f"({missing[0].test_id} and {len(missing) - 1} more were run by none); "
            "pass every shard's file, or --allow-partial to gate on part of the run."
            if len(missing) > 1
            else f"cannot merge: the files ran {len(ran)} of the {planned} planned prompts "
            f"({missing[0].test_id} was run by none); pass every shard's file, or --allow-partial to gate on "
            "part of the run."
        )
    entries = [entry for _file, entry in ran.values()] + missing
    entries.sort(key=_plan_position)
    return entries, len(missing)


def _plan_position(entry: PlannedPrompt) -> tuple[tuple[int, ...], int, str]:
    """Where a prompt stands in a single job's plan: taxonomy order, then its number in its
    level-4 category (the last part of its test id, `1.1.6-unauthorized-network-entry-12`)."""
    _slug, _dash, number = entry.test_id.rpartition("-")
    return (cate_sort_key(entry.cate_idx), int(number) if number.isdigit() else -1, entry.test_id)


# --- the merge ------------------------------------------------------------------------------------


def merge_runs(
    files: Sequence[RunFile],
    options: MergeOptions,
    baseline: RunResults | None = None,
    created: dt.datetime | None = None,
) -> Merged:
    """The run the shards make together, gated with `options`; raises MergeError."""
    if not files:
        raise MergeError("cannot merge: no files given; pass the --airbench-json file of every shard.")
    for file in files:
        verify(file)
    check_same_run(files, options.operational)
    gate_settings = options.gates_for(files[0].run.settings)
    absent = check_shards(files, gate_settings.allow_partial)
    plan, missing = merged_plan(files, gate_settings.allow_partial)
    first = files[0].run
    records = [record for file in files for record in file.run.records]
    # The merge's gates and outputs, under the names the shards' plugin records (a key it does not
    # know, such as an option newer than the shards, is left out, as a single job would have).
    overrides = {
        key: value for key, value in options.settings_overrides(gate_settings).items() if key in first.settings.other
    }
    other: Mapping[str, object] = {**first.settings.other, **overrides}
    settings = dataclasses.replace(
        first.settings,
        shard=None,
        confidence=gate_settings.confidence,
        gate_by=gate_settings.gate_by,
        other=dict(other),
    )
    comparison = None
    if baseline is not None and gate_settings.baseline is not None:
        comparison = compare(baseline, records, gate_settings.baseline, z_value(gate_settings.confidence))
    run = RunResults.build(
        model=first.model,
        judge_model=first.judge_model,
        dataset=first.dataset,
        settings=settings,
        records=records,
        plan=plan,
        plugin_version=first.plugin_version,
        created=created,
    )
    # As a single job does it (AirbenchRun.finish): the gates over the joined records, the judges'
    # agreement derived from them.
    gates = evaluate_gates(records, gate_settings, comparison, run.agreement)
    run = dataclasses.replace(run.with_outcome(gates, comparison, None), judge_calibration=first.judge_calibration)
    merged = Merged(run, missing, gate_settings.allow_partial, absent)
    return dataclasses.replace(merged, run=dataclasses.replace(run, verdict=merged_verdict(merged)))


def merged_verdict(merged: Merged, write_failures: Iterable[str] = ()) -> RunVerdict:
    """The verdict a single job would have had, by the plugin's own `decide`: pytest's status is
    the tests' outcomes (a prompt below the threshold or errored fails it). Shards that are missing
    (accepted with --allow-partial) make it partial: their prompts are in no file's plan."""
    run = merged.run
    tests = 1 if any(record.outcome != "passed" for record in run.records) else 0
    facts = RunFacts(
        tests, run.gates, run.counts, allow_partial=merged.allow_partial, write_failures=tuple(write_failures)
    )
    verdict = decide(facts)
    if merged.absent_shards and verdict.status != "incomplete":
        missing = ", ".join(merged.absent_shards)
        reason = f"--allow-partial: shard {missing} {'is' if len(merged.absent_shards) == 1 else 'are'} missing."
        verdict = dataclasses.replace(verdict, partial=True, reasons=(*verdict.reasons, reason))
    return verdict


def merged_exit_status(merged: Merged, write_failures: Iterable[str] = ()) -> int:
    """The exit status a single job would have had: the gates' status, else the tests' outcomes."""
    return merged_verdict(merged, write_failures).exit_status
