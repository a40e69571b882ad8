"""`airbench merge`: join the `--airbench-json` files of one run's shards, gate them as the run would
have been gated, and write the reports."""

from __future__ import annotations

import argparse
import glob
import os
import sys
from collections.abc import Mapping
from typing import Any

from airbench_plugin.cli.common import CliError, add_declared, declared_value, read_run
from airbench_plugin.gates import BaselineError, GateSettings, load_baseline
from airbench_plugin.github import fork_pull_request
from airbench_plugin.merge import MergeError, MergeOptions, merge_runs, merged_exit_status
from airbench_plugin.options import OPERATIONAL_SETTINGS, gate_options
from airbench_plugin.reports import write_outputs
from airbench_plugin.reports.markdown import publish_step_summary
from airbench_plugin.reports.terminal import summary_lines, verdict_lines
from airbench_plugin.wording import plural

# How this command words a gate option where a run's help would mislead: given nothing, a merge keeps
# the shards' own confidence and gate-by, and its partial run is one missing a shard.
MERGE_HELP = {
    "confidence": "confidence level of the intervals and of gates judged by interval (default: the shards')",
    "gate-by": "what a gate compares with its threshold: estimate or interval (default: the shards')",
    "allow-partial": "gate on the shards given even when some are missing",
}


def merge_options(args: argparse.Namespace) -> MergeOptions:
    """The command's options: its gates, each checked by the plugin's own validator, as one `GateSettings`."""
    values = {spec.field_name: declared_value(args, spec) for spec in gate_options()}
    given = GateSettings(**{name: value for name, value in values.items() if value is not None})
    if given.max_regression is not None and given.baseline is None:
        raise CliError("--max-regression needs --baseline PATH (a previous --airbench-json file).")
    return MergeOptions(
        operational=OPERATIONAL_SETTINGS,
        gates=given,
        # Not given: the merged run keeps the shards' own.
        from_shards=frozenset(name for name in ("confidence", "gate_by") if getattr(args, name) is None),
        json=args.json,
        report=args.report,
        junit_dir=args.junit_dir,
        markdown=args.markdown,
        no_step_summary=args.no_step_summary,
    )


def no_shard_message(pattern: str, environ: Mapping[str, str]) -> str:
    """Why `pattern` (a shell glob the shell passed on unmatched) names no file: no shard wrote its results."""
    said = (
        f"no shard's results to merge: no file matches {pattern!r} (a shell passes a pattern that matches "
        "nothing as it is), so no shard ran to its end"
    )
    fork = fork_pull_request(environ)
    if fork is not None:
        return (
            f"{said}: this is a pull request from the fork {fork}, and GitHub gives its runs no secrets, so every "
            "shard skipped for want of an API key; run the workflow on a branch of this repository to gate it."
        )
    return f"{said}; see the shard jobs' logs (a shard without an API key skips)."


def run_merge(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    options = merge_options(args)
    unmatched = [path for path in args.files if glob.has_magic(path) and not os.path.exists(path)]
    if unmatched and len(unmatched) == len(args.files):
        raise CliError(no_shard_message(unmatched[0], environ))
    files = [read_run(path) for path in args.files]
    baseline = None
    if options.gates.baseline is not None:
        try:
            baseline = load_baseline(options.gates.baseline)
        except BaselineError as exc:
            raise CliError(str(exc)) from None
    try:
        merged = merge_runs(files, options, baseline)
    except MergeError as exc:
        raise CliError(str(exc)) from None
    failures = write_outputs(merged.run, options.outputs(), prefix="--")
    if not options.no_step_summary:
        failures += publish_step_summary(merged.run, environ)
    print(f"merged {plural(len(files), 'file')}: {plural(len(merged.run.records), 'prompt')}")
    if merged.missing:
        were = "was" if merged.missing == 1 else "were"
        print(f"partial: {plural(merged.missing, 'planned prompt')} {were} run by no file (--allow-partial)")
    for line in (*summary_lines(merged.run), *verdict_lines(merged.run)):
        print(line)
    for failure in failures:
        print(f"ERROR: {failure}", file=sys.stderr)
    return merged_exit_status(merged, failures)


def add(commands: Any) -> None:
    """The `merge` subcommand and its options (the run's gate and output options, without `--airbench-`)."""
    merge = commands.add_parser(
        "merge",
        help="join the --airbench-json files of a run's shards, gate them and write the reports",
        description="Join the --airbench-json files of one run's shards (--airbench-shard or pytest-split), "
        "evaluate the gates and write the reports. Exit status: the gates' verdict (0 met, 1 not), 2 for "
        "files that cannot be merged.",
    )
    merge.add_argument("files", nargs="+", metavar="SHARD.json", help="the --airbench-json file of every shard")
    merge.add_argument("--json", required=True, metavar="OUT", help="write the merged results here")
    merge.add_argument("--report", metavar="OUT.html", help="write the self-contained HTML report")
    merge.add_argument("--junit-dir", metavar="DIR", help="write one JUnit XML file per level-2 category")
    merge.add_argument("--markdown", metavar="OUT.md", help="write the Markdown summary")
    for spec in gate_options():  # the run's gate options without `--airbench-`: one declaration for both
        add_declared(merge, spec, help=MERGE_HELP.get(spec.name, spec.help))
    merge.add_argument(
        "--no-step-summary", action="store_true", help="do not append the summary to $GITHUB_STEP_SUMMARY"
    )
    merge.set_defaults(handler=run_merge)
