"""`airbench download`: one dataset revision's prompts and judge templates saved as local files."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airbench_plugin.cli.common import CliError
from airbench_plugin.dataset import DatasetError
from airbench_plugin.options import HELM_REVISION, HF_REPO, REGIONS


def run_download(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from airbench_plugin.download import download

    try:
        saved = download(Path(args.directory), args.region, args.revision, args.repo)
    except DatasetError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"could not write to {args.directory}: {exc.strerror or exc}.") from None
    print(
        f"saved {saved.prompt_count:,} prompts ({saved.region}) and {saved.template_count:,} judge templates "
        f"of {saved.source} to {args.directory}"
    )
    print(f"run with: {saved.options()}")
    return 0


def add(commands: Any) -> None:
    """The `download` subcommand and its options."""
    fetch = commands.add_parser(
        "download",
        help="save the prompts and judge prompts of one dataset revision as local files",
        description="Save one revision's prompts (of one region) and judge templates as Parquet files in DIR, "
        "for runs without access to the Hugging Face Hub (--airbench-dataset=FILE --airbench-judge-prompts=FILE).",
    )
    fetch.add_argument("directory", metavar="DIR", help="the folder to write (created if missing)")
    fetch.add_argument("--region", choices=REGIONS, default="default", help="dataset config (default: default)")
    fetch.add_argument("--revision", default=HELM_REVISION, metavar="REV", help="commit (default: HELM's, 976d9fb)")
    fetch.add_argument("--repo", default=HF_REPO, metavar="OWNER/NAME", help=f"hub repository (default: {HF_REPO})")
    fetch.set_defaults(handler=run_download)
