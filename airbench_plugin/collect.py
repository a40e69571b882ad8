"""The controller's own plugin objects: `ResultCollector`, which hears every result on its test report (from
this process or from xdist workers), keeps the progress line (also while a test waits for a batch:
`wait_for`) and the engines' counters for the end's warnings, and `CompactFailures`, which leaves the
AIR-Bench prompts out of pytest's failure sections for the AIR-Bench section to list one line each."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin import progress
from airbench_plugin.dataset import Case
from airbench_plugin.engine import Engine
from airbench_plugin.results import CaseResult
from airbench_plugin.run import AirbenchRun
from airbench_plugin.scoring import ScoredAnswer
from airbench_plugin.store import StoreProblems
from airbench_plugin.suspects import SuspectNumbers
from airbench_plugin.text import terminal_safe

COMPACT_FAILURES = "airbench-compact-failures"  # the name CompactFailures is registered under
COLLECTED_COUNT_KEY = pytest.StashKey[int]()  # how many AIR-Bench tests were collected: the progress line's total


class ResultCollector:
    """The controller's ear: results arrive on test reports, from this process or from workers."""

    def __init__(self, run: AirbenchRun, config: pytest.Config) -> None:
        self.run = run
        self.config = config
        self.engines: dict[str, dict[str, Any]] = {}
        self.pacer = progress.Pacer()
        self.started: float | None = None  # when the first test started: the progress line's rate and ETA

    def pytest_runtest_logstart(self) -> None:
        if self.started is None:
            self.started = time.monotonic()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "airbench", None)
        seen = self.run.seen
        if isinstance(data, dict):
            self.run.results.append(CaseResult.from_json(data))
            self._progress(report)
        elif report.nodeid in seen.selected and report.failed and report.when not in ("setup", "call", "teardown"):
            seen.crashed.add(report.nodeid)  # xdist reports a test whose worker died with when="???"
        elif report.nodeid in seen.selected and report.skipped and report.when == "setup":
            seen.skipped.add(report.nodeid)
        elif report.failed:
            # Anything else that failed (another test, a teardown error) must fail the run too.
            self.run.other_failures += 1

    def _progress(self, report: pytest.TestReport | None) -> None:
        """Every few seconds, a line of engine counters; only on a terminal, never in CI logs."""
        snapshot = getattr(report, "airbench_engine", None)
        if isinstance(snapshot, dict):
            worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", "main")
            self.engines[str(worker)] = snapshot
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        now = time.monotonic()
        if terminal is None or not terminal.isatty or not self.pacer.due(now):
            return
        total = self.config.stash.get(COLLECTED_COUNT_KEY, None)
        elapsed = None if self.started is None else now - self.started
        line = progress.progress_line(len(self.run.results), total, progress.merge(self.engines), elapsed)
        line += progress.batch_part(self.engines)
        progress.write_progress(terminal, terminal_safe(line, one_line=True))

    def warnings(self, cache_dir: Path) -> list[str]:
        """The end's warnings over every process's engine: storage that failed (one line per kind),
        numbers no server should send and usage a budget needs (one line per endpoint)."""
        snapshots = list(self.engines.values())
        problems = StoreProblems.merged(snapshot.get("store", {}) for snapshot in snapshots)
        suspect = SuspectNumbers.merged(snapshot.get("suspect", {}) for snapshot in snapshots)
        return [*problems.warnings(cache_dir), *suspect.warnings()]

    def waiting(self, snapshot: dict[str, Any]) -> None:
        """A test waits for a batch: the progress line goes on, from this process's engine."""
        self.engines["main"] = snapshot
        self._progress(None)


class CompactFailures:
    """Takes the AIR-Bench prompts out of pytest's FAILURES and ERRORS sections (and its short summary),
    for the AIR-Bench section to list one line each; their count in pytest's last line stays."""

    def __init__(self) -> None:
        self.results: list[tuple[CaseResult, str | None]] = []  # each with what its test said

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Generator[None]:
        stats: dict[str, list[Any]] = terminalreporter.stats
        taken: dict[str, list[Any]] = {}
        for key in ("error", "failed"):
            reports = stats.get(key, [])
            ours = [report for report in reports if isinstance(getattr(report, "airbench", None), dict)]
            if ours:
                taken[key] = ours
                stats[key] = [report for report in reports if not any(report is mine for mine in ours)]
                self.results += [(CaseResult.from_json(report.airbench), report.longreprtext) for report in ours]
        try:
            return (yield)
        finally:
            for key, ours in taken.items():
                stats[key] = [*stats.get(key, []), *ours]  # pytest's last line counts them


def wait_for(item: pytest.Item, case: Case, engine: Engine) -> ScoredAnswer:
    """The case's scored answer; while a batch keeps it waiting, the progress line goes on (without xdist)."""
    collector = item.config.pluginmanager.get_plugin("airbench-results")
    if engine.batch is None or not isinstance(collector, ResultCollector):
        return engine.scored(case)
    future = engine.submit(case)
    while True:
        try:
            return future.result(timeout=collector.pacer.every)
        except concurrent.futures.TimeoutError:
            collector.waiting(engine.stats.snapshot())
