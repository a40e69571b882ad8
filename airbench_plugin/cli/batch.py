"""`airbench batch`: list or cancel the Batch-API batches a `--airbench-batch` run recorded."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airbench_plugin.cli.common import CliError


def run_batch(args: argparse.Namespace, environ: Mapping[str, str]) -> int:

    from airbench_plugin.batch.commands import BatchCommandError, cancel_lines, status_lines
    from airbench_plugin.credentials import CredentialsError

    lines = status_lines if args.action == "status" else cancel_lines
    try:
        for line in lines(Path(args.cache), environ, Path.cwd()):
            print(line)
    except (BatchCommandError, CredentialsError) as exc:
        raise CliError(f"{exc}.") from None
    return 0


def add(commands: Any) -> None:
    """The `batch` subcommand and its options."""
    batch = commands.add_parser(
        "batch",
        help="list or cancel the Batch-API batches recorded in a cache directory (--airbench-batch)",
        description="List the batches a --airbench-batch run recorded in its cache directory, with their status at "
        "the provider, or cancel those not collected yet (a run with the same cache collects what they finished).",
    )
    batch.add_argument("action", choices=("status", "cancel"), help="list them, or cancel the running ones")
    batch.add_argument("--cache", default=".airbench_cache", metavar="DIR", help="the cache (default: .airbench_cache)")
    batch.set_defaults(handler=run_batch)
