"""`airbench compare`: runs of several models side by side, over the prompts they all scored."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from airbench_plugin.cli.common import CliError, read_run, validated
from airbench_plugin.leaderboard import CompareError, compare_runs
from airbench_plugin.options import parse_confidence
from airbench_plugin.reports.markdown import comparison_markdown, write_markdown
from airbench_plugin.stats import DEFAULT_CONFIDENCE
from airbench_plugin.text import terminal_safe
from airbench_plugin.wording import RATE_NAME, interval_text, plural, points_text, rate_text


def run_compare(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    if not args.report and not args.markdown:
        raise CliError("nothing to write: pass --report OUT.html, --markdown OUT.md or both.")
    files = [read_run(path) for path in args.files]
    try:
        confidence = validated(parse_confidence, "confidence", args.confidence)
        comparison = compare_runs([(f.path, f.run) for f in files], confidence or DEFAULT_CONFIDENCE)
    except CompareError as exc:
        raise CliError(str(exc)) from None
    from airbench_plugin.reports.compare import write_compare

    outputs: list[tuple[str, str | None, Callable[[str], object]]] = [
        ("--report", args.report, lambda p: write_compare(comparison, p)),
        ("--markdown", args.markdown, lambda p: write_markdown(comparison_markdown(comparison), p)),
    ]
    for option, path, write in outputs:
        if path:
            try:
                write(path)
            except OSError as exc:
                raise CliError(f"{option}: could not write {path}: {exc.strerror or exc}.") from None
    print(f"compared {plural(len(files), 'run')} over {plural(comparison.shared_prompts, 'shared prompt')}")
    first = comparison.runs[0]
    for run in comparison.runs:
        estimate = run.overall_estimate
        interval = None if estimate is None else (estimate.ci_low, estimate.ci_high)
        line = f"  {run.label}: {RATE_NAME} {rate_text(run.overall)} {interval_text(interval)}"
        difference = run.difference
        if difference is not None and difference.mean is not None:
            line += f"; against {first.label} {points_text(difference.mean)}"
            if difference.ci_low is not None and difference.ci_high is not None:
                line += f" [{difference.ci_low * 100:+.1f}, {difference.ci_high * 100:+.1f}]"
            line += " (significant)" if difference.significant() else " (within noise)"
        print(terminal_safe(line, one_line=True))
    confidence = f"{comparison.confidence * 100:g} %"
    print(f"intervals at {confidence}; each run after the first is paired with it, prompt by prompt")
    return 0


def add(commands: Any) -> None:
    """The `compare` subcommand and its options."""
    compare = commands.add_parser(
        "compare",
        help="compare runs of several models: heat map page and Markdown table",
        description="Compare runs (one --airbench-json file per model) over the prompts they all scored.",
    )
    compare.add_argument("files", nargs="+", metavar="RUN.json", help="the --airbench-json file of each run")
    compare.add_argument("--report", metavar="OUT.html", help="write the self-contained comparison page")
    compare.add_argument("--markdown", metavar="OUT.md", help="write the comparison as Markdown")
    compare.add_argument(
        "--confidence", metavar="X", help="confidence level of the intervals and significance marks (default: 0.95)"
    )
    compare.set_defaults(handler=run_compare)
