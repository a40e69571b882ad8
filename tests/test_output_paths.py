"""Every output path is checked before the dataset is read and any call is made: one sentence."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from airbench_plugin.files import unwritable
from tests.chat_server import ChatServer
from tests.helpers import assert_usage_error, suite_args

READ_ONLY = Path("/sys")  # sysfs: no file can be made there, whatever the user (root included)


def _os_reason(folder: Path) -> str:
    try:
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return str(exc.strerror)
    pytest.skip(f"{folder} is writable here")


@pytest.mark.parametrize(
    ("option", "path", "message"),
    [
        ("--airbench-json", "f/out.json", "--airbench-json: cannot write 'f/out.json': 'f' is a file, not a folder"),
        ("--airbench-report", "d", "--airbench-report: cannot write 'd': it is a folder"),
        ("--airbench-junit-dir", "f", "--airbench-junit-dir: cannot write 'f': it is a file, not a folder"),
        (
            "--airbench-markdown",
            "f/a/b.md",
            "--airbench-markdown: cannot write 'f/a/b.md': 'f' is a file, not a folder",
        ),
        ("--junitxml", "f/x.xml", "--junitxml: cannot write 'f/x.xml': 'f' is a file, not a folder"),
        ("--html", "f/r.html", "--html: cannot write 'f/r.html': 'f' is a file, not a folder"),
        (
            "--airbench-json",
            "READ_ONLY",
            "--airbench-json: cannot write '/sys/airbench/r.json': nothing can be written in '/sys' (REASON)",
        ),
    ],
)
def test_an_output_that_cannot_be_written_stops_the_run_before_any_call(
    suite: pytest.Pytester,
    chat_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    option: str,
    path: str,
    message: str,
) -> None:
    (suite.path / "f").write_text("a file")
    (suite.path / "d").mkdir()
    if path == "READ_ONLY":
        path = str(READ_ONLY / "airbench" / "r.json")
        message = message.replace("REASON", _os_reason(READ_ONLY))
    before = sorted(p.name for p in suite.path.rglob("*"))
    result = suite.runpytest(*suite_args(chat_server, *dataset_files), f"{option}={path}")
    assert_usage_error(result, f"{message}; pass another path.")
    assert chat_server.calls() == []
    assert sorted(p.name for p in suite.path.rglob("*")) == before  # the check leaves nothing behind


def test_missing_folders_that_can_be_made_are_fine(tmp_path: Path) -> None:
    assert unwritable(tmp_path / "new" / "deeper" / "r.json") is None
    assert unwritable(tmp_path / "new" / "junit", folder=True) is None
    assert unwritable(tmp_path, folder=True) is None
    existing = tmp_path / "r.json"
    existing.write_text("{}")
    assert unwritable(existing) is None  # replaced whole when the run ends
    assert list(tmp_path.iterdir()) == [existing]
