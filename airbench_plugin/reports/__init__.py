"""The run's outputs, one registry: which options ask for which file, and who writes it.

Each report module formats `RunResults` (results.py) and nothing else. Adding a format is one
entry in `OUTPUTS`; the plugin writes every requested output and names each in the summary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from airbench_plugin.options import Settings
from airbench_plugin.results import RunResults


def _json(run: RunResults, path: str) -> None:
    from airbench_plugin.reports.document import write_json

    write_json(run, path)


def _html(run: RunResults, path: str) -> None:
    from airbench_plugin.reports.html import write_html

    write_html(run, path)


def _markdown(run: RunResults, path: str) -> None:
    from airbench_plugin.reports.markdown import markdown_summary, write_markdown

    write_markdown(markdown_summary(run), path)


def _junit_dir(run: RunResults, path: str) -> None:
    from airbench_plugin.reports.junit import write_junit_dir

    write_junit_dir(run, path)


@dataclass(frozen=True)
class Output:
    """One kind of file a run can write."""

    option: str  # as users type it, for messages
    label: str  # the summary's `airbench <label>: <path>` line
    path: Callable[[Settings], str | None]  # where this run asked for it, if it did
    write: Callable[[RunResults, str], None]  # modules are imported only when their output is asked for


OUTPUTS: tuple[Output, ...] = (
    Output("--airbench-json", "results", lambda s: s.json, _json),
    Output("--airbench-report", "report", lambda s: s.report, _html),
    Output("--airbench-junit-dir", "junit", lambda s: s.junit_dir, _junit_dir),
    Output("--airbench-markdown", "markdown", lambda s: s.markdown, _markdown),
)


def requested(settings: Settings) -> list[tuple[Output, str]]:
    """The outputs this run asked for, with their paths, in registry order."""
    return [(output, path) for output in OUTPUTS if (path := output.path(settings))]


def write_outputs(settings: Settings, run: RunResults) -> list[str]:
    """Write each requested output; one sentence for each that could not be written."""
    failures = []
    for output, path in requested(settings):
        try:
            output.write(run, path)
        except OSError as exc:
            failures.append(f"{output.option}: could not write {path}: {exc.strerror or exc}")
    return failures
