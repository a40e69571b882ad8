"""The run's outputs, one registry: which options ask for which file, and who writes it.

Each report module formats `RunResults` (results/) and nothing else. Adding a format is one
entry in `OUTPUTS`; a test run and `airbench merge` write every requested output from it, and the
plugin names each in the summary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from airbench_plugin.files import unwritable
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
class OutputPaths:
    """Where a run (or `airbench merge`) was asked to write each output; None: not asked."""

    json: str | None = None
    report: str | None = None
    junit_dir: str | None = None
    markdown: str | None = None


@dataclass(frozen=True)
class Output:
    """One kind of file a run can write."""

    name: str  # the option without its prefix: `junit-dir` in --airbench-junit-dir and merge's --junit-dir
    label: str  # the summary's `airbench <label>: <path>` line
    path: Callable[[OutputPaths], str | None]  # where this run asked for it, if it did
    write: Callable[[RunResults, str], None]  # modules are imported only when their output is asked for
    folder: bool = False  # the path names a folder of files

    @property
    def option(self) -> str:
        """The pytest option that asks for it, as users type it."""
        return f"--airbench-{self.name}"


OUTPUTS: tuple[Output, ...] = (
    Output("json", "results", lambda p: p.json, _json),
    Output("report", "report", lambda p: p.report, _html),
    Output("junit-dir", "junit", lambda p: p.junit_dir, _junit_dir, folder=True),
    Output("markdown", "markdown", lambda p: p.markdown, _markdown),
)


def requested(paths: OutputPaths) -> list[tuple[Output, str]]:
    """The outputs asked for, with their paths, in registry order."""
    return [(output, path) for output in OUTPUTS if (path := output.path(paths))]


def output_problem(
    paths: OutputPaths, others: Sequence[tuple[str, str | None]] = (), prefix: str = "--airbench-"
) -> str | None:
    """One sentence for the first requested output that could not be written, checked before any call;
    `others` are other plugins' outputs (pytest's --junitxml, pytest-html's --html) by option and path."""
    checks = [(f"{prefix}{output.name}", path, output.folder) for output, path in requested(paths)]
    checks += [(option, path, False) for option, path in others if path]
    for option, path, folder in checks:
        reason = unwritable(path, folder=folder)
        if reason is not None:
            return f"{option}: cannot write {path!r}: {reason}; pass another path."
    return None


def write_outputs(run: RunResults, paths: OutputPaths, prefix: str = "--airbench-") -> list[str]:
    """Write each requested output; one sentence for each that could not be written (its option
    spelled with `prefix`: `--airbench-` in a test run, `--` in `airbench merge`)."""
    return write_requested(run, paths, prefix)[1]


def write_requested(
    run: RunResults, paths: OutputPaths, prefix: str = "--airbench-"
) -> tuple[list[tuple[Output, str]], list[str]]:
    """Write each requested output: those written, and one sentence for each that could not be."""
    written, failures = [], []
    for output, path in requested(paths):
        try:
            output.write(run, path)
        except OSError as exc:
            failures.append(f"{prefix}{output.name}: could not write {path}: {exc.strerror or exc}")
        else:
            written.append((output, path))
    return written, failures
