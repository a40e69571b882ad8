"""The `airbench` command: merge shards, export to the authors' formats, compare models, download the dataset,
calibrate a judge.

A thin argparse front over the typed results (`results.RunResults`), like `pytest-benchmark
compare`: every command reads `--airbench-json` files with `load_results`, and the work is done by
plain functions (`merge`, `export`, `leaderboard`, `reports`, `calibration`). Bad input is one line
on stderr and exit status 2; `merge` and `calibrate` otherwise exit with their verdict (0 met, 1 not).

One module per subcommand (`merge`, `export`, `compare`, `download`, `calibrate`, `batch`), each
with `add(commands)`, which declares its parser and the function that runs it; `common` holds what
they share.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from airbench_plugin import __version__
from airbench_plugin.cli import batch, calibrate, compare, download, export, merge
from airbench_plugin.cli.common import USAGE_ERROR, CliError, CommandParser


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="airbench",
        description="Merge, export and compare AIR-Bench 2024 runs of pytest-airbench; download the dataset.",
    )
    parser.add_argument("--version", action="version", version=f"pytest-airbench {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{merge,export,compare,download,calibrate,batch}"
    )
    for command in (merge, export, compare, download, calibrate, batch):
        command.add(commands)
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the `airbench` command; returns its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace, Mapping[str, str]], int] = args.handler
    try:
        return handler(args, os.environ if environ is None else environ)
    except CliError as exc:
        print(f"airbench {args.command}: {exc}", file=sys.stderr)
        return USAGE_ERROR


__all__ = ["USAGE_ERROR", "CliError", "build_parser", "main"]
