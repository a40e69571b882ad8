"""Output files written whole or not at all: a reader never sees half a file, a failure leaves nothing."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
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


class NotRegularFile(OSError):
    """An input path that names a device, a FIFO, a socket or a directory: reading it would never end
    (`/dev/zero`), block for a writer (a FIFO) or fail later with a worse message."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(errno.EINVAL, "it is not a regular file", str(path))


def read_regular_text(path: str | os.PathLike[str], encoding: str = "utf-8") -> str:
    """The text of `path` when it is a regular file; raises NotRegularFile, OSError or UnicodeDecodeError.

    The file is opened without blocking and checked on the open descriptor, so a FIFO never waits
    for a writer and a path swapped after a check cannot slip a device in.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise NotRegularFile(path)
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read()
    finally:
        os.close(descriptor)
    return data.decode(encoding)


def is_regular_file(path: str | os.PathLike[str]) -> bool:
    """Whether `path` names a regular file (following symbolic links), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False
