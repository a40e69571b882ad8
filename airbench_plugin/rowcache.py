"""A parsed copy of each table the suite has read, so that the next run skips `datasets`.

Importing `datasets` and building its Arrow table costs 0.8 s of start-up for a local CSV and more
for the hub; every run of an unchanged dataset paid it again. The rows are stored once they have
been read through `datasets`, keyed by what they were read from:

- a local file by the SHA-256 of its bytes (an edited file is a new key);
- a hub table only at a full 40-hex commit (a branch or tag can move; those are never stored).

The copy lives in `$AIRBENCH_ROWS_CACHE`, else `$XDG_CACHE_HOME/pytest-airbench/rows`, else
`~/.cache/pytest-airbench/rows`; `AIRBENCH_ROWS_CACHE=off` turns it off. It is an optimisation
only: an entry that cannot be read or written is ignored, and the table is read again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

FORMAT = 1  # bump when what is stored, or how `dataset.load_rows` turns a table into rows, changes
_COMMIT = re.compile(r"[0-9a-f]{40}")

Rows = list[dict[str, str]]


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where the copies live, or None when the user turned them off."""
    chosen = environ.get("AIRBENCH_ROWS_CACHE", "").strip()
    if chosen.lower() in ("off", "0", "false", "no"):
        return None
    if chosen:
        return Path(chosen)
    base = environ.get("XDG_CACHE_HOME", "").strip()
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no HOME and no passwd entry (a container run under an arbitrary uid)
            return None
    return Path(base) / "pytest-airbench" / "rows"


def file_key(path: Path, config_name: str, columns: Sequence[str]) -> str | None:
    """The key of a local file's table: its content hash; None when the file cannot be read."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return _key("file", digest.hexdigest(), path.suffix.lower(), config_name, columns)


def hub_key(repo: str, revision: str | None, config_name: str, columns: Sequence[str]) -> str | None:
    """The key of a hub table at a commit; None for a branch, a tag or no revision (they move), and
    for a local folder named like a repository, which `datasets` reads as it is, whatever the commit."""
    if revision is None or not _COMMIT.fullmatch(revision) or Path(repo).exists():
        return None
    return _key("hub", repo, revision, config_name, columns)


def _key(*parts: str | Sequence[str]) -> str:
    text = json.dumps([FORMAT, *parts], ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def read(directory: Path | None, key: str | None, columns: Sequence[str]) -> Rows | None:
    """The stored rows, or None when there are none (or they are not what was stored)."""
    if directory is None or key is None:
        return None
    try:
        rows = json.loads((directory / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    wanted = set(columns)
    if not isinstance(rows, list) or not all(
        isinstance(row, dict) and row.keys() == wanted and all(isinstance(v, str) for v in row.values()) for row in rows
    ):
        return None
    return rows


def write(directory: Path | None, key: str | None, rows: Rows) -> None:
    """Store the rows, whole or not at all; a cache that cannot be written is no error."""
    if directory is None or key is None:
        return
    partial: str | None = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=directory, prefix=f".{key[:16]}-", suffix=".partial", delete=False
        ) as handle:
            partial = handle.name
            json.dump(rows, handle, ensure_ascii=False)
        os.replace(partial, directory / f"{key}.json")
        partial = None
    except (OSError, ValueError):
        pass
    finally:
        if partial is not None:
            with contextlib.suppress(OSError):
                os.unlink(partial)
