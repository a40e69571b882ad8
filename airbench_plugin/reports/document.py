"""The `--airbench-json` file: the typed run results written as JSON."""

from __future__ import annotations

import json
import os

from airbench_plugin.files import write_atomic
from airbench_plugin.results import (
    RunResults,
)
from airbench_plugin.text import valid_unicode


def write_json(run: RunResults, path: str | os.PathLike[str]) -> None:
    """Write the document atomically, so a reader never sees half a file."""
    # valid_unicode: the last guard against a lone surrogate, which UTF-8 cannot encode.
    write_atomic(path, valid_unicode(json.dumps(run.to_json(), indent=2, ensure_ascii=False)) + "\n")
