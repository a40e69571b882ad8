"""Output files written whole or not at all: a reader never sees half a file, a failure leaves nothing."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path` through a `.partial` file renamed into place.

    When anything fails (a full disk, a directory where the file should be), the `.partial`
    file is removed and the error raised: no empty or truncated file is left behind.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    blob = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with partial.open("wb") as handle:
            handle.write(blob)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
