"""The on-disk cache through the plugin: reruns, re-scoring, and a run killed part-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from airbench_plugin.store import CallStore
from tests.chat_server import JUDGE_MODEL, TARGET_MODEL, ChatServer
from tests.helpers import suite_args


def test_a_rerun_and_a_new_threshold_make_no_calls(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    args = suite_args(chat_server, *dataset_files, "--airbench-sample=all")
    suite.runpytest(*args).assert_outcomes(passed=18)
    assert len(chat_server.calls()) == 36
    assert (suite.path / ".airbench_cache").is_dir()
    # Only the threshold changes: every answer and judgement comes from the cache.
    suite.runpytest(*args, "--airbench-threshold=1", "--airbench-min-refusal-rate=0.9").assert_outcomes(passed=18)
    assert len(chat_server.calls()) == 36
    # --airbench-no-cache neither reads nor writes it.
    suite.runpytest(*args, "--airbench-no-cache").assert_outcomes(passed=18)
    assert len(chat_server.calls()) == 72


def test_a_fully_cached_rerun_shows_what_its_answers_cost(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    """The same counts as the run that paid for them, marked as read from the cache, not zeros."""
    args = suite_args(chat_server, *dataset_files, "--airbench-json=r.json")
    first = suite.runpytest(*args)
    paid = [line for line in first.outlines if line.startswith("tokens: ")]
    assert len(paid) == 1 and "from cache" not in paid[0]
    usage = json.loads((suite.path / "r.json").read_text())["usage"]
    assert usage["target"]["prompt_tokens"] > 0 and usage["target"]["cached_prompt_tokens"] == 0
    again = suite.runpytest(*args)
    assert len(chat_server.calls()) == 26  # the rerun made no call
    target, judge = paid[0].removeprefix("tokens: ").split("; ")
    again.stdout.fnmatch_lines([f"tokens: {target} (all from cache); {judge} (all from cache)"])
    cached = json.loads((suite.path / "r.json").read_text())["usage"]["target"]
    assert (
        (cached["prompt_tokens"], cached["completion_tokens"])
        == (
            cached["cached_prompt_tokens"],
            cached["cached_completion_tokens"],
        )
        == (usage["target"]["prompt_tokens"], usage["target"]["completion_tokens"])
    )


def test_cache_directory_option(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str, tmp_path: Path
) -> None:
    cache = tmp_path / "elsewhere"
    suite.runpytest(*suite_args(chat_server, *dataset_files, f"--airbench-cache={cache}")).assert_outcomes(passed=13)
    store = CallStore(cache)
    assert len(store) == 26
    store.close()
    assert not (suite.path / ".airbench_cache").exists()


@pytest.mark.heavy
def test_a_killed_run_resumes_without_repeating_a_completed_call(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    out = suite.path / "results.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        *suite_args(chat_server, *dataset_files),
        "--airbench-sample=all",
        f"--airbench-json={out}",
        "--airbench-concurrency=4",
    ]
    chat_server.hold_after = 11  # answer 11 requests, then hold every later one unanswered
    process = subprocess.Popen(command, cwd=suite.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = suite.path / ".airbench_cache"
    try:
        deadline = time.monotonic() + 120  # a guard against a hung child, not a speed requirement
        while time.monotonic() < deadline:
            answered = len([r for r in chat_server.answered])
            if answered == 11 and cache.is_dir():
                store = CallStore(cache)
                stored = len(store)
                store.close()
                if stored == answered:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the first run never stored its 11 answers")
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    chat_server.release(drop=True)  # the held requests' client is gone: they are never answered
    assert not out.exists()

    chat_server.hold_after = None
    rerun = suite.runpytest(*command[3:])  # in-process: only the killed run needs a process of its own
    assert rerun.ret == pytest.ExitCode.OK
    for model in (TARGET_MODEL, JUDGE_MODEL):
        answered_prompts = Counter(r["messages"][-1]["content"] for r in chat_server.answered if r["model"] == model)
        assert len(answered_prompts) == 18
        assert set(answered_prompts.values()) == {1}, answered_prompts
    document = json.loads(out.read_text())
    assert document["summary"]["n"] == 18
