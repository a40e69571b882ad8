"""What the `airbench` subcommands share: the one-line usage error, the validators' sentences in the
command's spelling, and reading an `--airbench-json` file."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

import pytest

from airbench_plugin.merge import RunFile
from airbench_plugin.options import OptionSpec
from airbench_plugin.results import ResultsError, load_results

USAGE_ERROR = 2


class CliError(Exception):
    """Input the command cannot use; the message is one sentence for the user."""


class CommandParser(argparse.ArgumentParser):
    """argparse, with every usage error as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def validated(parse: Callable[[str, str], Any], name: str, raw: str | None) -> Any:
    """An option checked by the plugin's own validator, named as this command spells it."""
    if raw is None:
        return None
    try:
        return parse(name, raw)
    except pytest.UsageError as exc:
        raise CliError(str(exc).replace("--airbench-", "--", 1)) from None


def add_declared(parser: argparse.ArgumentParser, spec: OptionSpec, **overrides: Any) -> None:
    """A plugin option on an `airbench` command, spelled without `--airbench-` (`--judge-rpm`), with
    its declared help and metavar unless `overrides` words them (or adds `required`) for the command."""
    settings: dict[str, Any] = {"help": spec.help}
    if spec.flag:
        settings.update(action="store_true", default=None)
    else:
        settings["metavar"] = spec.metavar or spec.field_name.upper()
    settings.update(overrides)
    settings["help"] = settings["help"].replace("%", "%%")  # argparse formats help with %
    parser.add_argument(f"--{spec.name}", **settings)


def declared_value(args: argparse.Namespace, spec: OptionSpec) -> Any:
    """The value of an option `add_declared` added, checked by the plugin's own validator (None: not given)."""
    raw = getattr(args, spec.field_name)
    return raw if spec.flag else validated(spec.parse, spec.name, raw)


def read_run(path: str) -> RunFile:
    """One `--airbench-json` file; raises CliError with one sentence."""
    try:
        return RunFile(path, load_results(path))
    except ResultsError as exc:
        raise CliError(f"{path!r} is not a usable --airbench-json file: {exc}.") from None
