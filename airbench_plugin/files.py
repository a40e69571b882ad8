"""Output files written whole or not at all: a reader never sees half a file, a failure leaves nothing."""

from __future__ import annotations

import contextlib
import os
import tempfile
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


def unwritable(path: str | os.PathLike[str], folder: bool = False) -> str | None:
    """Why `path` (a file, or with `folder` a folder of files) could not be written, found before any
    work is done; None when it can. A probe file is made in the nearest existing folder and removed."""
    target = Path(path)
    if folder and target.exists() and not target.is_dir():
        return "it is a file, not a folder"
    if not folder and target.is_dir():
        return "it is a folder"
    nearest = target if folder and target.is_dir() else target.parent
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not nearest.is_dir():
        return f"{str(nearest)!r} is a file, not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=nearest, prefix=".airbench-probe-"):
            pass
    except OSError as exc:
        return f"nothing can be written in {str(nearest)!r} ({exc.strerror or exc})"
    return None
