"""pytest hooks and fixtures: glue between pytest and the plugin's plain modules.

A little over 450 lines because every hook pytest calls lives here, each a few lines that hand
over to `run/`, `collect.py`, `reports/` or `options/`; the logic is in those modules.
"""

from __future__ import annotations

import atexit
import functools
import gc
import os
import types
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin import markers, options, prefetch, reports, retirement
from airbench_plugin.batch import messages as batch
from airbench_plugin.collect import COLLECTED_COUNT_KEY, COMPACT_FAILURES, CompactFailures, ResultCollector, wait_for
from airbench_plugin.dataset import Case
from airbench_plugin.engine import Engine
from airbench_plugin.options import Settings
from airbench_plugin.providers import ChatProvider
from airbench_plugin.reports import failures
from airbench_plugin.reports.junit import junit_properties
from airbench_plugin.reports.terminal import summary_lines, verdict_lines
from airbench_plugin.results import CaseResult, Outcome, param_id
from airbench_plugin.run import (
    CASE_ARG,
    RUN_KEY,
    AirbenchRun,
    case_of,
    error_message,
    failure_message,
    finish_and_write,
    header_lines,
    iter_cases,
    output_paths,
    record,
    sent_settings,
    spent_lines,
)
from airbench_plugin.scoring import CaseError, CircuitOpen, ScoredAnswer
from airbench_plugin.text import terminal_safe

SKIP_REASON = "AIR-Bench suite skipped: no model under test; pass --airbench-model NAME to run it"
STOPPED_EARLY = "not scored: AIR-Bench stopped the run early (the reason is on the last line)"
HANDOFF_KEY = "airbench_handoff"  # workerinput key: the controller's sampled cases and templates
COLLECTED_KEY = "airbench_suite_collected"  # workeroutput key: the worker collected an AIR-Bench test
BATCH_RUN_KEY = "airbench_batch_run"  # workerinput key: the run id every process's batch mode shares
_SCORED_KEY = pytest.StashKey[ScoredAnswer]()
_ERROR_KEY = pytest.StashKey[str]()
_PREFETCH_KEY = pytest.StashKey["prefetch.Prefetch[Case]"]()
_NEXT_ITEM_KEY = pytest.StashKey["pytest.Item | None"]()
_EXIT_FREEZE: list[bool] = []
GC_FREEZE_MIN_CASES = 1000


def pytest_addoption(parser: pytest.Parser) -> None:
    options.register(parser)


def pytest_configure(config: pytest.Config) -> None:
    settings = options.resolve_settings(config)
    run = AirbenchRun(settings=settings, rootdir=Path(str(config.rootpath)))
    workerinput = getattr(config, "workerinput", {})
    run.processes = int(workerinput.get("workercount", 1))
    run.batch_run = str(workerinput.get(BATCH_RUN_KEY, run.batch_run))
    # The model under test may be the user's own `airbench_target` fixture, which needs no key. Without
    # xdist, collection shows which fixture the suite uses before any call; under xdist only the workers
    # collect, so the controller goes by the conftest files loaded so far.
    own_target = _conftest_defines_target(config) or getattr(config.option, "dist", "no") == "no"
    run.prepare(os.environ, Path.cwd(), handed=workerinput.get(HANDOFF_KEY), own_target=own_target)
    # Once per run (xdist workers are handed the answers), and not while a missing key may still stop it.
    if settings.active and not is_worker(config) and not config.option.collectonly and not run.target_key_problem:
        run.look_up_models(retirement.today())
    config.stash[RUN_KEY] = run
    if settings.active:
        run.start_scrubbing_logs()
    if not is_worker(config):
        config.pluginmanager.register(ResultCollector(run, config), "airbench-results")
        arguments = failures.pytest_arguments(
            config.invocation_params.args, os.environ.get("PYTEST_ADDOPTS", ""), config.getini("addopts")
        )
        if settings.active and not failures.tb_chosen(arguments):
            config.pluginmanager.register(CompactFailures(), COMPACT_FAILURES)
    config.addinivalue_line("markers", "airbench: an AIR-Bench 2024 safety test (one prompt)")
    for line in markers.marker_lines(run.cases):
        config.addinivalue_line("markers", line)
    if config.pluginmanager.hasplugin("html") and not is_worker(config):
        from airbench_plugin.reports.pytest_html_hooks import HtmlIntegration

        config.pluginmanager.register(HtmlIntegration(lambda: run.finished), "airbench-html")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist, on the controller: hand each worker the sampled cases, so no worker loads the dataset."""
    run = node.config.stash.get(RUN_KEY, None)
    handoff = run.handoff() if run is not None else None
    if handoff is not None:
        node.workerinput[HANDOFF_KEY] = handoff
    if run is not None:
        node.workerinput[BATCH_RUN_KEY] = run.batch_run


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    run.stop_scrubbing_logs()
    run.close_store()
    if is_worker(config) or run.finished is None:
        return
    xmlpath = getattr(config.option, "xmlpath", None)
    if xmlpath:
        from airbench_plugin.reports.junit import enrich_junit

        enrich_junit(xmlpath, run.finished)


@pytest.hookimpl(tryfirst=True, specname="pytest_configure")
def pytest_configure_check_outputs(config: pytest.Config) -> None:
    """Before the dataset is read and any call is paid for, and before pytest-html makes its folder:
    every file the run will write, ours and the other plugins' (--junitxml, --html)."""
    settings = options.resolve_settings(config)
    if not settings.active or is_worker(config) or config.option.collectonly:
        return
    others = [("--junitxml", getattr(config.option, "xmlpath", None))]
    others.append(("--html", getattr(config.option, "htmlpath", None)))
    problem = reports.output_problem(output_paths(settings), others)
    if problem is not None:
        raise pytest.UsageError(terminal_safe(problem, one_line=True))


@pytest.hookimpl(tryfirst=True, specname="pytest_configure")
def pytest_configure_thaw_last(config: pytest.Config) -> None:
    """Registered first, so it runs last: after every unconfigure hook and pytest's own cleanups,
    which make full collections that would otherwise walk every object of a long run again
    (0.2 s per 2,000 prompts), and also when one of them raises."""
    config.add_cleanup(functools.partial(_thaw, config))


def _thaw(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        run.thaw_gc()


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _conftest_defines_target(config: pytest.Config) -> bool:
    """Whether a conftest.py loaded so far defines an `airbench_target` fixture (the user's application)."""
    return any(
        isinstance(plugin, types.ModuleType)
        and Path(getattr(plugin, "__file__", None) or "").name == "conftest.py"
        and hasattr(plugin, "airbench_target")
        for plugin in config.pluginmanager.get_plugins()
    )


def iter_items(session: pytest.Session) -> Iterator[pytest.Item]:
    """The session's AIR-Bench test items."""
    return (item for item in session.items if case_of(item) is not None)


def _default_target_used(item: pytest.Item) -> bool:
    """Whether the test gets the plugin's own `airbench_target` (the model through its provider)."""
    info = getattr(item, "_fixtureinfo", None)
    definitions: Sequence[Any] = info.name2fixturedefs.get("airbench_target", ()) if info is not None else ()
    return bool(definitions) and getattr(definitions[-1].func, "__module__", None) == __name__


def pytest_report_header(config: pytest.Config) -> list[str]:
    return header_lines(config.stash[RUN_KEY], retirement.today())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if CASE_ARG not in metafunc.fixturenames:
        return
    run = metafunc.config.stash[RUN_KEY]
    if not run.settings.active:
        metafunc.parametrize(CASE_ARG, [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-model")])
        return
    params = [
        pytest.param(case, id=case.test_id, marks=[getattr(pytest.mark, name) for name in markers.case_markers(case)])
        for case in run.cases
    ]
    metafunc.parametrize(CASE_ARG, params)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if CASE_ARG in getattr(item, "fixturenames", ()):
            item.add_marker("airbench")
            config.stash[RUN_KEY].seen.suite_collected = True


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[COLLECTED_COUNT_KEY] = sum(1 for _ in iter_cases(session.items))
    run = session.config.stash[RUN_KEY]
    # Before any call: the suite runs the model through its provider, and there is no key for it.
    problem = run.target_key_problem
    if problem is not None and not is_worker(session.config) and any(map(_default_target_used, iter_items(session))):
        raise pytest.UsageError(problem)
    for item in session.items:
        case = case_of(item)
        if case is not None:
            run.seen.selected[item.nodeid] = case.test_id


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist, on the controller: a worker that collected the suite but selected none of it (`-k`)
    says so, so that its prompts count as deselected, not as never collected."""
    run = node.config.stash.get(RUN_KEY, None)
    if run is not None and getattr(node, "workeroutput", {}).get(COLLECTED_KEY):
        run.seen.suite_collected = True


def pytest_deselected(items: Sequence[pytest.Item]) -> None:
    """Planned prompts left out by -k, -m, --lf or --deselect: the run will say so."""
    for item in items:
        case = case_of(item)
        if case is not None:
            item.config.stash[RUN_KEY].seen.deselected[item.nodeid] = case.test_id


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    node.config.stash[COLLECTED_COUNT_KEY] = len(ids)
    # The controller sees no items, only the node ids its workers selected.
    run = node.config.stash[RUN_KEY]
    planned = {case.test_id for case in run.cases}
    for nodeid in ids:
        if param_id(nodeid) in planned:
            run.seen.selected[nodeid] = param_id(nodeid)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def airbench_settings(pytestconfig: pytest.Config) -> Settings:
    """The validated AIR-Bench options of this run."""
    return pytestconfig.stash[RUN_KEY].settings


@pytest.fixture(scope="session")
def airbench_threshold(airbench_settings: Settings) -> float:
    """A test passes when the refusal score is at least this."""
    return airbench_settings.threshold


@pytest.fixture(scope="session")
def airbench_target(request: pytest.FixtureRequest) -> ChatProvider | Callable[[str], Any]:
    """The model under test. Override it in a conftest.py to test your own application:
    return a function that takes the prompt and returns the answer (sync or async)."""
    run = request.config.stash[RUN_KEY]
    if run.target_key_problem is not None:
        # Only an xdist worker gets here (elsewhere collection stopped the run): stop after this test.
        request.session.shouldstop = run.target_key_problem
        pytest.fail(run.target_key_problem, pytrace=False)
    return run.default_target()


@pytest.fixture(scope="session")
def airbench_engine(
    pytestconfig: pytest.Config, airbench_target: ChatProvider | Callable[[str], Any], request: pytest.FixtureRequest
) -> Generator[Engine]:
    """The process's engine: concurrency, retries and the cache around the target and the judge."""
    run = pytestconfig.stash[RUN_KEY]
    # Imports, the dataset and the collected items live until the end: moving them out of the
    # collector's sight saves seconds of full collections that would stall the event loop. A short
    # run skips it: the full collection it starts with would cost more than it saves. Thawed after
    # pytest's last cleanup: see pytest_configure_thaw_last.
    if len(run.cases) >= GC_FREEZE_MIN_CASES:
        run.freeze_gc(collect=True)
    _freeze_at_exit()
    engine = run.start_engine(airbench_target)
    if run.settings.batch:
        # Every process collected the same tests: each knows the whole run, and one of them sends it.
        engine.start_batch(list(iter_cases(request.session.items)))
    try:
        yield engine
    finally:
        run.stop_engine()


def _freeze_at_exit() -> None:
    """At interpreter exit, skip CPython's last full collections over every object of the run (a
    second and more after a full benchmark); memory is released by exit anyway. Only once the
    suite runs: a pytest run without AIR-Bench tests keeps the interpreter's usual exit."""
    if not _EXIT_FREEZE:
        atexit.register(gc.freeze)
        _EXIT_FREEZE.append(True)


@pytest.fixture
def airbench_verdict(request: pytest.FixtureRequest, airbench_case: Case, airbench_engine: Engine) -> ScoredAnswer:
    """The scored answer for this test's prompt. Errors the test when it cannot be scored.

    The fixture keeps its published name; what it returns is a `ScoredAnswer`, not the run's verdict."""
    item = request.node
    airbench_engine.submit(airbench_case)  # first, so its calls go before those of later tests
    _prefetch(item, airbench_case, airbench_engine)
    shown: str | None = None
    try:
        scored = wait_for(item, airbench_case, airbench_engine)
    except CircuitOpen as exc:
        # The reason ends the run's output once ("Interrupted: ..."); the results keep it per test.
        reason = terminal_safe(str(exc), one_line=True)  # it quotes the server's error message
        item.session.shouldstop = reason
        item.stash[_ERROR_KEY] = reason
        shown = STOPPED_EARLY
    except CaseError as exc:
        item.stash[_ERROR_KEY] = shown = error_message(airbench_case, exc)
    if shown is not None:
        pytest.fail(shown, pytrace=False)  # outside `except`: no "During handling of ..." chain
    item.stash[_SCORED_KEY] = scored
    return scored


def _prefetch(item: pytest.Item, case: Case, engine: Engine) -> None:
    """Start the cases of the tests this process will run next; cancel those it will not run after all."""
    config = item.config
    plan = config.stash.get(_PREFETCH_KEY, None)
    if plan is None:
        worksteal = getattr(config.option, "dist", None) == "worksteal"
        plan = config.stash[_PREFETCH_KEY] = prefetch.Prefetch(worker=is_worker(config), worksteal=worksteal)
    if plan.all_started:
        return
    nextitem = item.stash.get(_NEXT_ITEM_KEY, None)
    cancel, start = plan.step(case, list(iter_cases(prefetch.upcoming(item, nextitem))))
    for gone in cancel:
        engine.cancel(gone)
    for upcoming in start:
        engine.submit(upcoming)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    # The next test, for the prefetch's fallback when xdist's queue cannot be read.
    item.stash[_NEXT_ITEM_KEY] = nextitem
    return (yield)


def check_score(case: Case, scored: ScoredAnswer, threshold: float) -> None:
    """Fail the running test, with the category, prompt, response and judge reasoning, below threshold."""
    if scored.score < threshold:
        pytest.fail(failure_message(case, scored, threshold), pytrace=False)


# --- results: workers publish them on reports, the controller collects them --------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    case = case_of(item)
    if case is None:
        return report
    result: CaseResult | None = None
    if report.when == "setup" and report.failed:
        error = item.stash.get(_ERROR_KEY, None)
        if error is None:
            error = call.excinfo.exconly() if call.excinfo is not None else "the test's setup failed"
        result = record(item.nodeid, case, None, "error", error)
    elif report.when == "call":
        scored = item.stash.get(_SCORED_KEY, None)
        # An xfailed test is reported as skipped; its score still counts in every rate.
        outcome: Outcome = "passed" if report.passed else "failed"
        result = record(item.nodeid, case, scored, outcome, None)
    if result is not None:
        report.airbench = result.to_json()  # type: ignore[attr-defined]
        engine = item.config.stash[RUN_KEY].engine
        if engine is not None:
            report.airbench_engine = engine.stats.snapshot()  # type: ignore[attr-defined]
        # junitxml reads the properties from the teardown report, which copies them from the item.
        item.user_properties.extend(junit_properties(result))
        if item.config.pluginmanager.hasplugin("html"):
            from airbench_plugin.reports.pytest_html_hooks import result_extras

            report.extras = [*getattr(report, "extras", []), *result_extras(result)]  # type: ignore[attr-defined]
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    run = config.stash[RUN_KEY]
    plan = config.stash.get(_PREFETCH_KEY, None)
    if is_worker(config) and plan is not None:
        config.workeroutput[prefetch.DEPTH_KEY] = plan.deepest  # type: ignore[attr-defined]
    if is_worker(config):
        seen = run.seen
        collected = seen.suite_collected or bool(seen.selected or seen.deselected)
        config.workeroutput[COLLECTED_KEY] = collected  # type: ignore[attr-defined]
    if is_worker(config) or not run.settings.active:
        return
    collector = config.pluginmanager.get_plugin("airbench-results")
    if isinstance(collector, ResultCollector):
        run.sent = sent_settings(collector.engines.values())
    if config.option.collectonly or (session.exitstatus == pytest.ExitCode.USAGE_ERROR and not run.results):
        return  # nothing ran: no verdict to give and no outputs to write
    status = int(session.exitstatus)
    stopped = bool(session.shouldfail or session.shouldstop) or status == pytest.ExitCode.INTERRUPTED
    finished = finish_and_write(run, status, stopped, os.environ)
    assert finished.verdict is not None
    session.exitstatus = finished.verdict.exit_status


@pytest.hookimpl(trylast=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_freeze(session: pytest.Session) -> None:
    """The run is over and its objects stay until the process ends: frozen (no collection first,
    O(1)), pytest's two full collections at unconfigure walk only what comes after, 0.1-0.3 s less
    per process (each xdist worker). Thawed by the last cleanup, as a long run's freeze is."""
    run = session.config.stash.get(RUN_KEY, None)
    if run is not None and run.settings.active:
        run.freeze_gc(collect=False)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    collector = config.pluginmanager.get_plugin("airbench-results")
    if run is not None and isinstance(collector, ResultCollector):
        for line in collector.warnings(run.cache_dir):
            terminalreporter.write_line(terminal_safe(line, one_line=True), yellow=True)
        # --airbench-price: what this run paid, by endpoint (answers from the cache cost nothing).
        for line in spent_lines(run, collector.engines.values()):
            terminalreporter.write_line(terminal_safe(line, one_line=True))
    if run is not None and run.settings.active and run.settings.batch:
        for line in batch.end_lines(run.cache_dir, run.batch_run):
            terminalreporter.write_line(terminal_safe(line, one_line=True), yellow=True)
    if run is None or run.finished is None:
        return
    terminalreporter.write_sep("=", "AIR-Bench 2024")
    compact = config.pluginmanager.get_plugin(COMPACT_FAILURES)
    if isinstance(compact, CompactFailures):
        verbosity = int(config.getoption("verbose") or 0)
        for line in failures.failure_lines(compact.results, run.settings.threshold, verbosity):
            terminalreporter.write_line(line)  # each line is terminal-safe already
    # Category names, gate details and paths come from files and the command line: no raw controls.
    never_collected = run.finished.counts.not_run.get("not_collected", 0) > 0
    for line in [] if never_collected else summary_lines(run.finished):  # an empty table says nothing
        terminalreporter.write_line(terminal_safe(line, one_line=True))
    for failure in run.write_failures:
        terminalreporter.write_line(terminal_safe(f"ERROR: {failure}", one_line=True), red=True)
    for label, path in run.written:
        terminalreporter.write_line(terminal_safe(f"airbench {label}: {path}", one_line=True))
    verdict = verdict_lines(run.finished)
    for line in verdict[:-1]:
        terminalreporter.write_line(terminal_safe(line, one_line=True))
    if verdict:
        passed = run.finished.verdict is not None and run.finished.verdict.status == "passed"
        terminalreporter.write_line(verdict[-1], bold=True, green=passed, red=not passed)
