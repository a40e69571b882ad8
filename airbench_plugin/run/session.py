"""The session object: settings, the sampled cases, the engine and the collected results.

One `AirbenchRun` per pytest process, reached through `RUN_KEY` in `config.stash`. Workers
evaluate cases and publish each result on its test report; the controller (or the only process
without xdist) collects the results and owns the outputs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.calibration.stated import (
    CalibrationFileError,
    JudgeCalibration,
    check_calibration,
    load_judge_calibration,
    template_revision,
)
from airbench_plugin.credentials import (
    CredentialsError,
    find_key,
    missing_key_message,
    read_dotenv,
    unset_key_env_message,
)
from airbench_plugin.dataset import Case, DatasetError, load_suite, load_templates, require_templates
from airbench_plugin.endpoints import Endpoint, EndpointSettings, JudgeEndpoint
from airbench_plugin.engine import BatchSetup, Engine
from airbench_plugin.gates import (
    BaselineError,
    Gate,
    RunFacts,
    check_category_gates,
    compare,
    decide,
    evaluate_gates,
    load_baseline,
)
from airbench_plugin.judges import JudgeKind, JudgeSetup, judge_class
from airbench_plugin.judges.airbench import ScaleError, resolve_scale, template_problems
from airbench_plugin.options import DEFAULT_TARGET_MAX_TOKENS, Settings
from airbench_plugin.providers import ChatProvider, provider_class
from airbench_plugin.providers.base import display_url
from airbench_plugin.providers.callable import CallableTarget
from airbench_plugin.providers.recorded import RecordedTarget
from airbench_plugin.redaction import LogScrubber, Redactor
from airbench_plugin.responses import RecordedAnswers, ResponsesError, read_responses
from airbench_plugin.results import CaseResult, PlannedCase, RunResults, Sightings, settle_plan
from airbench_plugin.retirement import Lookup, ShutDown, Shutdown, check_not_shut_down, look_up_shutdowns, model_url
from airbench_plugin.roles import ROLE_NAMES, ROLES, Role
from airbench_plugin.run.outputs import Revisions, build_results
from airbench_plugin.shards import select_shard
from airbench_plugin.stats import z_value
from airbench_plugin.store import CallStore
from airbench_plugin.text import terminal_safe

RUN_KEY = pytest.StashKey["AirbenchRun"]()


@dataclass
class AirbenchRun:
    """Everything the plugin knows about this run, in one place."""

    settings: Settings
    rootdir: Path
    keys: dict[Role, str | None] = field(default_factory=dict)
    planned: list[Case] = field(default_factory=list)  # every prompt of the run, all shards
    cases: list[Case] = field(default_factory=list)  # the prompts this job runs: its shard of the plan
    recorded: RecordedAnswers | None = None  # --airbench-responses
    templates: dict[str, str] = field(default_factory=dict)
    baseline: RunResults | None = None
    results: list[CaseResult] = field(default_factory=list)
    seen: Sightings = field(default_factory=Sightings)  # which planned tests were selected, skipped, crashed
    other_failures: int = 0
    revisions: Revisions | None = None  # the dataset's and templates' revisions, read when loaded
    engine: Engine | None = None
    store: CallStore | None = None  # opened by `prepare`, then the engine's (one open per process, not two)
    finished: RunResults | None = None  # the controller's typed results, once the run is over
    write_failures: list[str] = field(default_factory=list)
    written: list[tuple[str, str]] = field(default_factory=list)  # (label, path) of each output written
    redactor: Redactor = field(default_factory=Redactor)
    scrubber: LogScrubber | None = None
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # generation settings sent, by role
    processes: int = 1  # pytest processes that call the APIs (xdist workers): they share the token budget
    scale_read: bool = False  # whether the judge scale was read from the templates (`auto`)
    shutdowns: list[Shutdown] = field(default_factory=list)  # dates the endpoints announced (look_up_models)
    batch_run: str = field(default_factory=lambda: uuid.uuid4().hex)  # one id for every process of the run
    calibration: JudgeCalibration | None = None  # --airbench-judge-calibration, checked against the judge
    gc_frozen: bool = False  # the collector skips the run's long-lived objects until pytest's own last collection
    # The model under test has no key: fine when a conftest's `airbench_target` fixture replaces it,
    # so the sentence waits until collection shows which fixture the suite's tests use.
    target_key_problem: str | None = None

    # --- start-up: everything that can fail does so here, before any request ------------------

    def prepare(
        self,
        environ: Mapping[str, str],
        workdir: Path,
        handed: Mapping[str, Any] | None = None,
        own_target: bool = False,
    ) -> None:
        """Check keys, load the dataset and the baseline; raises pytest.UsageError with one sentence.

        An xdist worker is `handed` the controller's sampled cases and templates (see `handoff`), so
        it neither imports `datasets` nor reads the dataset again. With `own_target` (the model under
        test may be the user's `airbench_target` fixture) a missing key for the model under test is
        kept in `target_key_problem` for the plugin to raise once it knows the default fixture is used.
        """
        settings = self.settings
        if settings.baseline is not None:
            try:
                self.baseline = load_baseline(settings.baseline)
            except BaselineError as exc:
                raise pytest.UsageError(str(exc)) from None
        if not settings.active:
            return
        if not settings.no_cache:
            try:
                self.store = CallStore(self.cache_dir)
            except Exception as exc:  # sqlite and the file system raise several types
                raise pytest.UsageError(
                    f"--airbench-cache: cannot use {str(self.cache_dir)!r} as the response cache ({exc}); "
                    "pass another directory or --airbench-no-cache."
                ) from None
        try:
            dotenv = read_dotenv(workdir)
        except CredentialsError as exc:
            raise pytest.UsageError(f"AIR-Bench: {exc}") from None
        for endpoint in settings.called:
            provider = provider_class(endpoint.resolved_provider)
            key_env, base_url = endpoint.api_key_env, endpoint.base_url
            key = find_key(provider, environ, dotenv, base_url=base_url, key_env=key_env)
            if key is None and key_env is not None:
                raise pytest.UsageError(unset_key_env_message(endpoint.option("api-key-env"), key_env))
            # A self-hosted OpenAI-compatible server (vLLM, Ollama) usually needs no key.
            if key is None and base_url is None:
                problem = missing_key_message(provider, endpoint.role_name, endpoint.model or "")
                if endpoint.role != "target" or not own_target:
                    raise pytest.UsageError(problem)
                self.target_key_problem = problem
            self.keys[endpoint.role] = key
        self.redactor = Redactor.for_run(self.keys.values(), (settings.endpoint(role).base_url for role in ROLES))
        try:
            if settings.responses is not None:
                planned = self._load_recorded(settings.responses)
            elif handed is not None:
                planned = [Case(*row) for row in handed["planned"]]
                self.templates = dict(handed["templates"])
                self.shutdowns = [
                    Shutdown(role, model, dt.date.fromisoformat(date)) for role, model, date in handed["shutdowns"]
                ]
            else:
                planned, self.templates = load_suite(
                    settings.dataset,
                    settings.judge_prompts if settings.needs_templates else None,
                    settings.region,
                    settings.categories,
                    settings.sample,
                    settings.sample_by,
                    settings.seed,
                )
        except ResponsesError as exc:
            raise pytest.UsageError(str(exc)) from None
        except DatasetError as exc:
            # The sentence may quote the dataset's own text (category names): no raw control characters.
            raise pytest.UsageError(terminal_safe(f"AIR-Bench: {exc}", one_line=True)) from None
        if handed is None:  # as loaded: the files may change or go before the end (a worker needs none)
            self.revisions = Revisions.of(self.settings)
        problems = template_problems(self.templates, (case.cate_idx for case in planned))
        if problems and settings.needs_templates:
            shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            raise pytest.UsageError(
                terminal_safe(
                    f"AIR-Bench: the judge templates in {settings.judge_prompts!r} cannot show the judge what it "
                    f"grades: {shown}; fix the file or use the judge prompts of the dataset's revision.",
                    one_line=True,
                )
            )
        self.planned = planned
        self.cases = planned if settings.shard is None else select_shard(planned, settings.shard)
        unmeasurable = check_category_gates(
            [g.prefix for g in settings.category_gates], [(c.cate_idx, c.l2_name) for c in planned]
        )
        if unmeasurable is not None:
            examples = ", ".join(dict.fromkeys(case.l2 for case in planned))
            raise pytest.UsageError(
                f"--airbench-category-gates: no planned prompt lies under {unmeasurable!r}, so that gate "
                f"could never be measured; gate categories this run plans (level 2: {examples})."
            )
        self._check_baseline_templates()
        self._resolve_scale()
        self._check_calibration()

    def _check_calibration(self) -> None:
        """Read --airbench-judge-calibration and refuse one made for another judge; raises pytest.UsageError."""
        s = self.settings
        if s.judge_calibration is None:
            return
        try:
            calibration = load_judge_calibration(s.judge_calibration)
            check_calibration(calibration, s.judge, s.judge_model, s.judge_scale, template_revision(self.templates))
        except CalibrationFileError as exc:
            raise pytest.UsageError(terminal_safe(str(exc), one_line=True)) from None
        self.calibration = calibration

    def _check_baseline_templates(self) -> None:
        """A baseline judged with other judge templates (by content hash) would count a change of
        judge as a change of model: refused with one sentence."""
        settings = self.settings
        if self.baseline is None or not settings.needs_templates:
            return
        theirs = self.baseline.settings.other.get("judge_prompts_revision")
        mine = self.revisions.judge_prompts if self.revisions is not None else None
        if isinstance(theirs, str) and mine is not None and theirs != mine:
            raise pytest.UsageError(
                f"--airbench-baseline: {settings.baseline!r} was judged with other judge templates ({theirs}; this "
                f"run's {settings.judge_prompts!r} is {mine}); compare runs judged with the same templates."
            )

    def _resolve_scale(self) -> None:
        """Decide the airbench judge's scale from its templates; raises pytest.UsageError when it cannot."""
        settings = self.settings
        if not settings.needs_templates:
            return
        try:
            scale = resolve_scale(settings.judge_scale, self.templates, settings.judge_prompts)
        except ScaleError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.scale_read = settings.judge_scale == "auto"
        # Every process reads the same templates, so workers decide the same scale.
        self.settings = dataclasses.replace(settings, judge_scale=scale)

    def _load_recorded(self, source: str) -> list[Case]:
        """Judge-only: the file's prompts, exactly, each joined to its judge template by cate-idx."""
        self.recorded = read_responses(source)
        if self.settings.model is None:
            # Reports need a name: the one the file records (HELM, --airbench-json), else the file's.
            name = self.recorded.model or Path(source).stem
            self.settings = self.settings.with_model(name)
        if not self.settings.needs_templates:
            return list(self.recorded.cases)
        self.templates = load_templates(self.settings.judge_prompts)
        require_templates(
            self.recorded.cases,
            self.templates,
            self.settings.judge_prompts,
            f"every prompt of {source!r} needs its category's template (pass --airbench-judge-prompts)",
        )
        return list(self.recorded.cases)

    def start_scrubbing_logs(self) -> None:
        """Take this run's secrets out of every log record until `stop_scrubbing_logs`."""
        if self.scrubber is None:
            self.scrubber = LogScrubber(self.redactor)
            self.scrubber.install()

    def stop_scrubbing_logs(self) -> None:
        if self.scrubber is not None:
            self.scrubber.uninstall()
            self.scrubber = None

    def handoff(self) -> dict[str, Any] | None:
        """What an xdist worker needs instead of loading the dataset itself: every planned case and
        the judge templates, as plain values (None when workers must read their own inputs)."""
        if not self.settings.active or self.recorded is not None:
            return None
        return {
            "planned": [dataclasses.astuple(case) for case in self.planned],
            "templates": self.templates,
            "shutdowns": [[s.role, s.model, s.date.isoformat()] for s in self.shutdowns],
        }

    def look_up_models(self, today: dt.date) -> None:
        """Ask each endpoint once for its model's shutdown date (the controller's job: workers are handed the
        answers); raises pytest.UsageError with one sentence when a model's date has passed, before any call.

        An endpoint that can only answer with a key it was not given is not asked, and one that does not
        answer, answers 404 or answers garbage within LOOKUP_TIMEOUT announces nothing.
        """
        lookups: list[Lookup] = []
        where: dict[Role, tuple[str, str]] = {}
        for endpoint in self.settings.called:
            provider = provider_class(endpoint.resolved_provider)
            base = endpoint.base_url or getattr(provider, "default_base_url", None)
            models_path = getattr(provider, "models_path", None)
            key = self.keys.get(endpoint.role)
            if base is None or models_path is None or endpoint.model is None or (key is None and not endpoint.base_url):
                continue
            lookups.append(Lookup(endpoint.role, endpoint.model, model_url(base, models_path, endpoint.model), key))
            where[endpoint.role] = (display_url(base) or "", endpoint.option(""))
        self.shutdowns = look_up_shutdowns(lookups) if lookups else []
        try:
            check_not_shut_down(self.shutdowns, today, where)
        except ShutDown as exc:
            raise pytest.UsageError(terminal_safe(str(exc), one_line=True)) from None

    @property
    def cache_dir(self) -> Path:
        return Path(self.settings.cache) if self.settings.cache else self.rootdir / ".airbench_cache"

    # --- the engine -----------------------------------------------------------------------------

    def default_target(self) -> ChatProvider:
        """The model under test through its provider, as the options say, or the recorded answers."""
        if self.recorded is not None:
            return RecordedTarget(self.recorded.answers)
        s = self.settings
        provider = provider_class(s.target_provider)
        return provider(api_key=self.keys.get("target"), base_url=s.target.base_url, timeout=s.timeout)

    def start_engine(self, target: ChatProvider | Callable[[str], Any]) -> Engine:
        """The engine for this process, built around the `airbench_target` fixture's value."""
        s = self.settings
        assert s.model is not None
        if self.recorded is not None:
            target = RecordedTarget(self.recorded.answers)
        cacheable = isinstance(target, ChatProvider) and not isinstance(target, (CallableTarget, RecordedTarget))
        if not isinstance(target, ChatProvider):
            target = CallableTarget(target, s.timeout)
        judges = [self._judge_endpoint(s.judge_endpoint, s.judge)]
        if s.second_judge is not None:
            judges.append(self._judge_endpoint(s.second_judge_endpoint, s.second_judge))
        store = None if s.no_cache else self.store or CallStore(self.cache_dir)
        self.store = None  # the engine's now: it closes it
        self.engine = Engine(
            target=Endpoint(
                "target",
                target,
                s.model,
                s.temperature,
                s.target.max_tokens or DEFAULT_TARGET_MAX_TOKENS,
                cacheable,
                rpm=self.share(s.target.rpm),
                tpm=self.share(s.target.tpm),
                reasoning_effort=s.target.reasoning_effort,
            ),
            judges=judges,
            prompt_suffix=s.prompt_suffix,
            system_prompt=s.system_prompt,
            concurrency=s.concurrency,
            retries=s.retries,
            store=store,
            stall_timeout=s.timeout,
            token_budget=self.share(s.token_budget),
            batch=BatchSetup(self.batch_run, s.batch_poll) if s.batch else None,
        )
        return self.engine

    def _judge_endpoint(self, settings: EndpointSettings, kind: JudgeKind) -> JudgeEndpoint:
        """A judge of `kind` and the endpoint it is reached at, as `settings` say."""
        s = self.settings
        model = settings.model or ""
        judge = judge_class(kind)(model, JudgeSetup(self.templates, s.judge_scale))
        provider = provider_class(settings.resolved_provider)(
            api_key=self.keys.get(settings.role), base_url=settings.base_url, timeout=s.timeout
        )
        endpoint = Endpoint(
            settings.role,
            provider,
            model,
            judge.temperature,
            settings.max_tokens or judge.max_tokens,
            rpm=self.share(settings.rpm),
            tpm=self.share(settings.tpm),
            option_prefix=settings.option(""),
            reasoning_effort=settings.reasoning_effort,
            reasoning_headroom=settings.reasoning_headroom,
        )
        return JudgeEndpoint(judge, endpoint)

    def stop_engine(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def freeze_gc(self, collect: bool) -> None:
        """Move the process's objects out of the collector's sight until `thaw_gc`, after a full
        collection if `collect`. A process that froze objects itself (a long-lived caller of
        pytest.main) keeps its own policy: the thaw would unfreeze its objects too."""
        if self.gc_frozen or gc.get_freeze_count() > 0:
            return
        if collect:
            gc.collect()
        gc.freeze()
        self.gc_frozen = True

    def thaw_gc(self) -> None:
        if self.gc_frozen:
            gc.unfreeze()
            self.gc_frozen = False

    def close_store(self) -> None:
        """Close the store `prepare` opened where no engine took it (the xdist controller, --collect-only)."""
        if self.store is not None:
            self.store.close()
            self.store = None

    # --- the controller's side ------------------------------------------------------------------

    def share(self, limit: int | None) -> int | None:
        """This process's part of a per-run limit (--airbench-rpm, -tpm): xdist workers split it evenly."""
        return None if limit is None else max(1, limit // self.processes)

    def finish(self, pytest_status: int, stopped: bool) -> RunResults:
        """Settle the plan, evaluate the gates, decide the verdict and build the typed results."""
        s = self.settings
        planned = [PlannedCase(case.test_id, case.cate_idx) for case in self.cases]
        plan = settle_plan(planned, self.seen, self.results)
        gate_settings = s.gates
        comparison = None
        if self.baseline is not None and gate_settings.baseline is not None:
            comparison = compare(self.baseline, self.results, gate_settings.baseline, z_value(gate_settings.confidence))
        results = build_results(s, self.results, (), comparison, plan=plan, revisions=self.revisions)
        results = dataclasses.replace(results, judge_calibration=self.calibration)
        gates: list[Gate] = evaluate_gates(self.results, gate_settings, comparison, results.agreement)
        finished = results.with_outcome(gates, comparison, results.verdict)
        if self.sent:
            # What the endpoints were actually sent (a reasoning model gets max_completion_tokens
            # and no temperature), next to the options they came from.
            names: dict[str, str] = {role: name for role, name in ROLE_NAMES.items()}
            sent = {"sent_" + names.get(role, role).replace(" ", "_"): settings for role, settings in self.sent.items()}
            settings = dataclasses.replace(finished.settings, other={**finished.settings.other, **sent})
            finished = dataclasses.replace(finished, settings=settings)
        # The shutdown dates the endpoints announced at start-up, by role: {"judge": {"model", "shutdown_date"}}.
        announced = {ROLE_NAMES[s.role].replace(" ", "_"): s.to_json() for s in self.shutdowns}
        other = {**finished.settings.other, "shutdown_dates": announced}
        finished = dataclasses.replace(finished, settings=dataclasses.replace(finished.settings, other=other))
        self.finished = self.conclude(finished, pytest_status, stopped)
        return self.finished

    def conclude(
        self, run: RunResults, pytest_status: int, stopped: bool, write_failures: Sequence[str] = ()
    ) -> RunResults:
        """`run` with its verdict and exit status, decided by `gates.decide` from what happened."""
        facts = RunFacts(
            pytest_status=pytest_status,
            gates=run.gates,
            counts=run.counts,
            stopped=stopped,
            allow_partial=self.settings.gates.allow_partial,
            other_failures=self.other_failures,
            write_failures=tuple(write_failures),
        )
        return dataclasses.replace(run, verdict=decide(facts))
