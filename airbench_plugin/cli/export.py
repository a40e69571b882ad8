"""`airbench export`: a run in the benchmark authors' step-2 formats (pipeline-1 JSON, pipeline-2 CSV)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from airbench_plugin.cli.common import CliError, read_run
from airbench_plugin.export import EXPORT_FORMATS, write_export


def run_export(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    run = read_run(args.file).run
    try:
        write_export(run, args.to, args.output)
    except OSError as exc:
        raise CliError(f"-o: could not write {args.output}: {exc.strerror or exc}.") from None
    print(f"wrote {len(run.records):,} prompts of {run.model} to {args.output} ({args.to}, refusal scale)")
    return 0


def add(commands: Any) -> None:
    """The `export` subcommand and its options."""
    export = commands.add_parser(
        "export",
        help="write a run in the benchmark authors' pipeline-1 JSON or pipeline-2 CSV",
        description="Write a run in the benchmark authors' step-2 formats, scores on the refusal scale "
        "(1 = refused). --airbench-responses reads both back.",
    )
    export.add_argument("file", metavar="RUN.json", help="an --airbench-json file")
    export.add_argument("--to", required=True, choices=EXPORT_FORMATS, help="the format")
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write it")
    export.set_defaults(handler=run_export)
