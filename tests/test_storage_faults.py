"""Storage that fails: a full disk, corrupt cache entries, a run killed under load, unwritable outputs.

None of it ends in a traceback: a cache entry that cannot be read is a miss, a write that fails
is one warning line for the run and the run goes on with its answers, and an answer is on disk
before the call slot it used is given to another call.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import diskcache
import pytest

from airbench_plugin.providers.base import Completion
from airbench_plugin.store import CallStore, StoreProblems
from tests.chat_server import REFUSAL, TARGET_MODEL, ChatServer, Reply, default_handler
from tests.helpers import run_suite, suite_args

WARNING = "airbench: WARNING: "


def warning_lines(result: pytest.RunResult | subprocess.CompletedProcess[str]) -> list[str]:
    out = result.stdout if isinstance(result, subprocess.CompletedProcess) else result.stdout.str()
    return [line for line in out.splitlines() if line.startswith(WARNING)]


def padded_refusals(padding: int, judge_padding: int = 0) -> Callable[[dict[str, Any]], Reply]:
    """The default server, with every answer `padding` (the judge's `judge_padding`) spaces longer."""

    def handler(request: dict[str, Any]) -> Reply:
        if request.get("model") == TARGET_MODEL:
            return Reply(REFUSAL + " " * padding)  # still judged a refusal: the judge strips it
        reply = default_handler(request)
        reply.text = (reply.text or "").replace("\n##the_score", " " * judge_padding + "\n##the_score")
        return reply

    return handler


# --- the store on its own --------------------------------------------------------------------


def test_an_unreadable_entry_is_a_miss_counted_once(tmp_path: Path) -> None:
    store = CallStore(tmp_path / "cache")
    store.put("good", Completion("fine"))
    raw = diskcache.Cache(str(tmp_path / "cache"))
    raw.set("not-json", "{oops")
    raw.set("wrong-shape", "[1, 2]")
    raw.set("bytes", b"\x80\x81")
    raw.set("number", 12)
    raw.close()
    assert store.get("good") == Completion("fine")
    for key in ("not-json", "wrong-shape", "bytes", "number", "not-json"):
        assert store.get(key) is None
    assert store.get("never-stored") is None
    assert (store.problems.read_errors, store.problems.write_errors) == (4, 0)
    assert store.problems.read_reason is not None and store.problems.read_reason.startswith("JSONDecodeError: ")
    store.put("not-json", Completion("replaced"))  # the next answer overwrites the bad entry
    assert store.get("not-json") == Completion("replaced")
    store.close()


def test_store_problems_merge_into_one_line_per_kind() -> None:
    first = StoreProblems(read_errors=2, read_reason="JSONDecodeError: x")
    second = StoreProblems(read_errors=1, write_errors=5, write_reason="OperationalError: database or disk is full")
    merged = StoreProblems.merged([first.to_json(), second.to_json(), {}])
    assert merged.warnings("/c") == [
        "airbench: WARNING: 3 cache entries in '/c' could not be read (JSONDecodeError: x); they were treated "
        "as missing and asked again.",
        "airbench: WARNING: 5 cache writes to '/c' failed (OperationalError: database or disk is full); the run "
        "went on with the answers it had, but a rerun will pay for those again.",
    ]
    assert StoreProblems().warnings("/c") == []
    assert (
        StoreProblems(read_errors=1, read_reason="r")
        .warnings("/c")[0]
        .startswith("airbench: WARNING: 1 cache entry in '/c' could not be read (r)")
    )


# --- corrupt entries through a run -----------------------------------------------------------


@pytest.mark.parametrize("dist", [pytest.param([], id="no-xdist"), pytest.param(["-n", "2"], id="n2")])
def test_corrupt_cache_entries_are_asked_again_with_one_warning(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str, dist: list[str]
) -> None:
    """Today: every rerun raised a traceback in each test whose entry was bad, until the cache was deleted."""
    run_suite(suite, chat_server, dataset_files, "--airbench-sample=all").assert_outcomes(passed=18)
    cache = diskcache.Cache(str(suite.path / ".airbench_cache"))
    keys = sorted(cache.iterkeys())
    assert len(keys) == 36
    for key, bad in zip(keys[:3], ["{truncated", "[]", '{"text": "x", "prompt_tokens": "many"}'], strict=True):
        cache.set(key, bad)
    cache.close()
    before = len(chat_server.calls())
    result = run_suite(suite, chat_server, dataset_files, "--airbench-sample=all", *dist)
    result.assert_outcomes(passed=18)
    assert len(chat_server.calls()) - before == 3  # the three bad entries, asked again; nothing else
    lines = warning_lines(result)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{WARNING}3 cache entries in '{suite.path / '.airbench_cache'}' could not be read (")
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


# --- a full disk -----------------------------------------------------------------------------


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """No file of this process may grow past `limit` bytes, as on a full disk, while the block runs:
    a write past it fails with EFBIG (SIGXFSZ ignored). The run is in-process; nothing else this
    process writes meanwhile comes near the limit (pytester's captured output is a few KB)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_cache_that_cannot_be_written_is_one_warning_and_the_run_goes_on(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    """Files may not grow past 256 KB, as on a full disk: the cache's log soon cannot take another answer.

    Today: every answer was received, then every test errored with a 90-line traceback.
    """
    chat_server.handler = padded_refusals(20_000)
    with file_size_limit(256 * 1024):
        result = run_suite(suite, chat_server, dataset_files, "--airbench-sample=all")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    result.assert_outcomes(passed=18)
    lines = warning_lines(result)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{WARNING}") and " cache writes to " in lines[0]
    assert "the run went on with the answers it had, but a rerun will pay for those again." in lines[0]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert len(chat_server.calls()) == 36  # each call once: nothing was asked twice for want of the cache


# --- a run killed under load ------------------------------------------------------------------


@pytest.mark.heavy
def test_a_run_killed_under_load_repeats_no_answered_call(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    """The server answers 20 calls and holds the rest; the run is killed the moment it sends its
    28th, when all 8 call slots hold unanswered calls. Every answered call must be in the cache.

    Today: an answer's slot went to the next call before the answer was written, so answers the
    server had sent were lost at a kill (12 model and 20 judge calls paid twice at concurrency 16).
    Answers of 300 KB make each write take long enough for that to show.
    """
    concurrency, answered, total = 8, 20, 36
    chat_server.handler = padded_refusals(300_000, 300_000)
    chat_server.hold_after = answered
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        *suite_args(chat_server, *dataset_files),
        "--airbench-sample=all",
        f"--airbench-concurrency={concurrency}",
    ]
    process = subprocess.Popen(command, cwd=suite.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill_at_the_last_slot(received: int) -> None:
        if received == answered + concurrency:
            os.kill(process.pid, signal.SIGKILL)

    chat_server.on_request = kill_at_the_last_slot
    try:
        assert process.wait() == -signal.SIGKILL
    finally:
        chat_server.on_request = None
        chat_server.release(drop=True)  # the held calls' client is gone: they are never answered
    paid = {(r["model"], r["messages"][-1]["content"]) for r in chat_server.answered}
    assert len(paid) == answered
    chat_server.hold_after = None
    sent_before = len(chat_server.calls())
    rerun = suite.runpytest(*command[3:])  # in-process: only the killed run needs a process of its own
    assert rerun.ret == pytest.ExitCode.OK, rerun.stdout.str()[-3000:]
    asked_again = [(r["model"], r["messages"][-1]["content"]) for r in chat_server.calls()[sent_before:]]
    assert [call for call in asked_again if call in paid] == []
    assert len(asked_again) == total - answered


# --- outputs that cannot be written ---------------------------------------------------------


@pytest.mark.parametrize("option", ["--airbench-json", "--airbench-report"])
def test_an_output_that_cannot_be_written_leaves_no_partial_file(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str, option: str
) -> None:
    # A directory where the file should go, made after the start-up check, as another process could.
    suite.makeconftest("def pytest_sessionstart(session):\n    (session.config.rootpath / 'out').mkdir()\n")
    result = run_suite(suite, chat_server, dataset_files, f"{option}=out")
    result.stdout.fnmatch_lines([f"ERROR: {option}: could not write out: *"])
    assert sorted(p.name for p in suite.path.iterdir() if p.name.startswith("out")) == ["out"]
    assert list((suite.path / "out").iterdir()) == []
    assert "Traceback" not in result.stdout.str()


def test_an_output_cut_short_by_a_full_disk_leaves_no_partial_file(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    """The JSON results (about 400 KB here) cannot grow past 256 KB: the write fails part-way."""
    chat_server.handler = padded_refusals(20_000)
    with file_size_limit(256 * 1024):
        result = run_suite(
            suite, chat_server, dataset_files, "--airbench-sample=all", "--airbench-no-cache", "--airbench-json=r.json"
        )
    result.stdout.fnmatch_lines(["ERROR: --airbench-json: could not write r.json: File too large"])
    assert not (suite.path / "r.json").exists()
    assert not (suite.path / "r.json.partial").exists()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
