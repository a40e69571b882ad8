"""The progress line's content and pacing."""

from __future__ import annotations

from pathlib import Path

import pytest

from airbench_plugin import progress
from airbench_plugin.progress import Pacer, merge, progress_line
from tests.chat_server import ChatServer
from tests.helpers import suite_args

TTY_CONFTEST = """
class Tty:  # pytest reads `isatty` both as a bool and as a method
    def __bool__(self):
        return True

    def __call__(self):
        return True

def pytest_sessionstart(session):
    session.config.pluginmanager.get_plugin("terminalreporter").isatty = Tty()
"""


def test_progress_line_adds_up_every_worker() -> None:
    snapshots = {
        "gw0": {"calls": 40, "cached": 2, "in_flight": 8, "retried": 1, "errored": 0, "tokens": {"target": [100, 900]}},
        "gw1": {
            "calls": 38,
            "cached": 0,
            "in_flight": 7,
            "retried": 2,
            "errored": 1,
            "tokens": {"target": [90, 12_000], "judge": [0, 0]},
        },
    }
    line = progress_line(30, 5694, merge(snapshots))
    assert line == "airbench: 30/5694 prompts · 15 in flight · 78 calls (2 cached) · 3 retried · 1 errored · 13k tokens"
    assert progress_line(3, None, merge({})).startswith("airbench: 3 prompts · 0 in flight")


def test_the_line_gives_rate_and_eta() -> None:
    counters = merge({"main": {"calls": 300, "in_flight": 64}})
    line = progress_line(150, 5694, counters, elapsed=12.0)
    assert line == (
        "airbench: 150/5694 prompts · 12.5 prompts/s · ETA 7 min 24 s · 64 in flight · 300 calls (0 cached) · "
        "0 retried · 0 errored · 0 tokens"
    )
    assert progress_line(5694, 5694, counters, elapsed=455.5).startswith(
        "airbench: 5694/5694 prompts · 12.5 prompts/s · 64"
    )
    assert progress_line(0, 5694, counters, elapsed=3.0).startswith("airbench: 0/5694 prompts · 64 in flight")


@pytest.mark.parametrize(
    ("done", "total", "elapsed", "expected"),
    [
        (10, 100, 5.0, "2.0 prompts/s · ETA 45 s · "),
        (3, 5694, 60.0, "3.0 prompts/min · ETA 31 h 37 min · "),
        (100, None, 10.0, "10.0 prompts/s · "),  # no total, no ETA
        (0, 100, 10.0, ""),
        (5, 100, None, ""),
    ],
)
def test_pace(done: int, total: int | None, elapsed: float | None, expected: str) -> None:
    assert progress.pace(done, total, elapsed) == expected


def test_duration() -> None:
    assert [progress.duration(s) for s in (0, 44.6, 60, 459, 3600, 7500)] == [
        "0 s",
        "45 s",
        "1 min 0 s",
        "7 min 39 s",
        "1 h 00 min",
        "2 h 05 min",
    ]


def test_pacer() -> None:
    pacer = Pacer(every=5)
    assert [pacer.due(t) for t in (0, 1, 5, 6, 10.5)] == [False, False, True, False, True]


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "not-a-terminal"])
def test_progress_lines_only_on_a_terminal(
    suite: pytest.Pytester,
    chat_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
    tty: bool,
) -> None:
    """With a line due after every prompt, a terminal gets them and a log file gets none."""
    monkeypatch.setattr(progress, "PROGRESS_EVERY", 0.0)
    if tty:
        suite.makeconftest(TTY_CONFTEST)
    result = suite.runpytest(*suite_args(chat_server, *dataset_files))
    result.assert_outcomes(passed=13)
    lines = [line for line in result.outlines if line.startswith("airbench: ") and "in flight" in line]
    if tty:
        assert len(lines) == 12  # every result after the first
        assert lines[-1].startswith("airbench: 13/13 prompts · ")
        assert all(" prompts/" in line for line in lines)  # a rate from the first result on
        assert " · ETA " in lines[0] and " · ETA " not in lines[-1]  # none left to wait for at the end
    else:
        assert lines == []


@pytest.mark.parametrize("verbosity", ["-q", "--verbosity=0", "-v"])
def test_progress_lines_start_a_line_of_their_own(
    suite: pytest.Pytester,
    chat_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
    verbosity: str,
) -> None:
    """With -q the dot row has no file name on it; the line still starts after it.

    (Without -q, pytest starts the next file-name row with a newline of its own, as after any
    plugin's `write_line`, so a blank line follows there; with -q the dots follow directly.)
    """
    monkeypatch.setattr(progress, "PROGRESS_EVERY", 0.0)
    suite.makeconftest(TTY_CONFTEST)
    result = suite.runpytest(*suite_args(chat_server, *dataset_files), verbosity)
    result.assert_outcomes(passed=13)
    out = result.outlines
    shown = [i for i, line in enumerate(out) if "in flight" in line]
    assert len(shown) == 12
    assert all(out[i].startswith("airbench: ") for i in shown)
    if verbosity == "-q":
        assert out[shown[0] - 1] == ".."  # the dot row before it, ended
        assert out[shown[0] + 1] == "."  # and the next dot on the next row
