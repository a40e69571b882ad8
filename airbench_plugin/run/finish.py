"""The controller's end of a run: the typed results settled, gated and decided (`AirbenchRun.finish`),
every output the run asked for written, and the verdict decided again when one could not be."""

from __future__ import annotations

from collections.abc import Mapping

from airbench_plugin import reports
from airbench_plugin.reports.markdown import publish_step_summary
from airbench_plugin.results import RunResults
from airbench_plugin.run.outputs import output_paths
from airbench_plugin.run.session import AirbenchRun


def finish_and_write(run: AirbenchRun, status: int, stopped: bool, environ: Mapping[str, str]) -> RunResults:
    """The run's results with their verdict, once every requested output (and the step summary) is
    written; records on `run` which outputs were written and which could not be."""
    finished = run.finish(status, stopped)
    written, failures = reports.write_requested(finished, output_paths(run.settings))
    if not run.settings.no_step_summary:
        failures += publish_step_summary(finished, environ)
    if failures:
        # The files that could be written must not claim a verdict the exit status contradicts.
        finished = run.finished = run.conclude(finished, status, stopped, failures)
        rewritten, _ = reports.write_requested(finished, output_paths(run.settings))
        written = [output for output in written if output in rewritten]
    run.write_failures = failures
    run.written = [(output.label, path) for output, path in written]  # only these are announced
    return finished
