"""The suite under `-n 2`: what only a real process tree can show.

Each test here is one pytest-xdist run (its controller in this process, its two workers real
processes: a second of CPU each), so there are few: one
run that carries every output, the workers' prefetch depth, the hand-off of the cases to the
workers and an announced shutdown date (asked once per run, not per worker), and is compared with
the same run without xdist; the worksteal run;
and a run the circuit breaker stops (beside its in-process twin). Report contents, gates and
exit status are checked in detail, in-process, by the other test files.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.prefetch import DEPTH_KEY
from airbench_plugin.retirement import today
from tests.chat_server import JUDGE_MODEL, REFUSAL, TARGET_MODEL, ChatServer, Reply, model_object
from tests.helpers import assert_error_bars, run_suite

HOSTILE = "<script>window.__xss=1</script><img src=x onerror=\"document.title='pwned'\"></textarea>"

# On the controller, after the workers ended: how far ahead of its running test each one started
# cases, and whether it imported `datasets` (it should not: the controller hands it the cases).
# Once the controller has loaded the dataset, the files go: a worker that read them would fail.
PROBE_CONFTEST = """
import json
import os
import sys

import pytest

DATASET_FILES = {files!r}
WORKERS = []


def pytest_configure_node(node):
    for path in DATASET_FILES:
        if os.path.exists(path):
            os.remove(path)


def pytest_sessionfinish(session):
    if hasattr(session.config, "workerinput"):
        session.config.workeroutput["datasets_imported"] = "datasets" in sys.modules


def pytest_testnodedown(node, error):
    WORKERS.append({{"depth": node.workeroutput.get({depth!r}), "datasets": node.workeroutput["datasets_imported"]}})


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line("workers: " + json.dumps(WORKERS))
"""


def outputs(folder: str) -> list[str]:
    """Every output the plugin and pytest can write, into `folder`, and a gate that passes."""
    return [
        "--airbench-sample=all",
        "--airbench-no-cache",
        "--airbench-min-refusal-rate=0.8",  # 15 of 18 refused: met despite 3 failed tests
        f"--airbench-json={folder}/r.json",
        f"--airbench-report={folder}/report.html",
        f"--airbench-junit-dir={folder}/junit",
        f"--junitxml={folder}/junit.xml",
        f"--html={folder}/page.html",
        "--self-contained-html",
        "-o",
        "junit_family=xunit1",  # testcases with file= and per-testcase properties
    ]


def comparable(document: dict[str, Any], folder: str) -> dict[str, Any]:
    """The results document without what differs between two runs by design: time and output paths."""
    document.pop("created")
    document["settings"] = {
        name: value
        for name, value in document["settings"].items()
        if not (isinstance(value, str) and value.startswith(folder))
    }
    return document


def junit_cases(path: Path) -> dict[str, dict[str, str | None]]:
    """Each testcase's file, properties and captured output, by test name."""
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        props: dict[str, str | None] = {p.get("name", ""): p.get("value") for p in case.iter("property")}
        props["file"] = case.get("file")
        out = case.find("system-out")
        props["system-out"] = None if out is None else out.text
        cases[case.get("name", "")] = props
    return cases


def junit_dir(folder: Path) -> dict[str, tuple[str | None, ...]]:
    """Each per-category file's suite name, test count, failure count and testcase files."""
    summary: dict[str, tuple[str | None, ...]] = {}
    for path in sorted(folder.iterdir()):
        suite_el = ET.parse(path).getroot().find("testsuite")
        assert suite_el is not None
        files = ",".join(sorted({case.get("file") or "" for case in suite_el.iter("testcase")}))
        summary[path.name] = (suite_el.get("name"), suite_el.get("tests"), suite_el.get("failures"), files)
    return summary


@pytest.mark.heavy
def test_every_output_is_the_same_with_and_without_xdist(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    suite.makeconftest(PROBE_CONFTEST.format(files=[str(path) for path in dataset_files], depth=DEPTH_KEY))
    shutdown = today() + dt.timedelta(days=42)  # the judge's, announced by GET /models/{id}
    chat_server.models[JUDGE_MODEL] = model_object(JUDGE_MODEL, shutdown_date=shutdown.isoformat())
    chat_server.models[TARGET_MODEL] = model_object(TARGET_MODEL)  # served, no date announced
    runs = {}
    for folder, dist in (("one", []), ("n2", ["-n", "2"])):
        chat_server.inject(Reply(HOSTILE), times=3, model=TARGET_MODEL, prompt_contains="for Race")
        before, lookups = len(chat_server.calls()), len(chat_server.lookups)
        result = run_suite(suite, chat_server, dataset_files, *outputs(folder), *dist)
        result.assert_outcomes(passed=15, failed=3)
        assert result.ret == pytest.ExitCode.OK  # the gate decides, on the controller under -n too
        result.stdout.fnmatch_lines(["gates: PASSED (the release gates decide the exit status)"])
        # The days are counted from the day the run started (a run may cross midnight).
        result.stdout.re_match_lines([rf"airbench: judge {JUDGE_MODEL}: shuts down {shutdown} \(4[12] days\)"])
        assert result.stdout.str().count("shuts down") == 1
        assert sorted(chat_server.lookups[lookups:]) == sorted([JUDGE_MODEL, TARGET_MODEL])  # not once per worker
        calls = chat_server.calls()[before:]
        for model in (TARGET_MODEL, JUDGE_MODEL):  # every prompt called once across the workers
            prompts = [c["messages"][-1]["content"] for c in calls if c["model"] == model]
            assert len(prompts) == len(set(prompts)) == 18
        runs[folder] = result

    one, n2 = suite.path / "one", suite.path / "n2"
    assert comparable(json.loads((n2 / "r.json").read_text()), "n2") == comparable(
        json.loads((one / "r.json").read_text()), "one"
    )
    assert_error_bars(json.loads((n2 / "r.json").read_text()))  # computed on the controller, as without -n
    assert json.loads((n2 / "r.json").read_text())["settings"]["shutdown_dates"] == {
        "judge": {"model": JUDGE_MODEL, "shutdown_date": shutdown.isoformat()}
    }
    cases = junit_cases(n2 / "junit.xml")
    assert cases == junit_cases(one / "junit.xml")
    assert len(cases) == 18
    assert all(props["cate_idx"] for props in cases.values())
    assert {props["file"] for props in cases.values()} == {"test_suite.py"}  # the file the user ran
    assert [props["system-out"] for name, props in cases.items() if "race" in name] == [HOSTILE] * 3
    per_category = junit_dir(n2 / "junit")
    assert per_category == junit_dir(one / "junit")
    assert {files for *_rest, files in per_category.values()} == {"test_suite.py"}
    page = (n2 / "page.html").read_text()
    assert "airbench-summary" in page and "cate-idx" in page
    assert HOSTILE not in page
    report = (n2 / "report.html").read_text()
    assert "l2-chart" in report
    assert report.count('class="case') >= 18
    assert HOSTILE not in report
    workers = json.loads(runs["n2"].stdout.str().split("workers: ")[1].splitlines()[0])
    assert [worker["datasets"] for worker in workers] == [False, False]  # the cases came from the controller
    assert not dataset_files[0].exists()  # deleted before the workers started: they never read it
    # Workers start several of their queued cases ahead of the running test. If xdist's queue could not
    # be read, the prefetch would fall back to the next test only: a depth of at most 1 on every worker.
    # (One worker alone may stay at 1 on a loaded machine, when the other takes almost every test.)
    depths = [worker["depth"] for worker in workers]
    assert max(depths) > 1, depths


@pytest.mark.heavy
def test_worksteal_never_pays_twice_for_a_prompt(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    """At the default concurrency, a case that xdist moves to another worker while its calls are out is
    paid once: the new worker waits for the answer in the store instead of sending the call again."""
    for needle in ("Network intrusion", "Unauthorized network entry", "Data tampering"):
        chat_server.inject(Reply(REFUSAL, delay=0.7), times=3, model=TARGET_MODEL, prompt_contains=needle)
    result = run_suite(
        suite,
        chat_server,
        dataset_files,
        "--airbench-sample=all",
        "-n",
        "2",
        "--dist",
        "worksteal",
    )
    result.assert_outcomes(passed=18)
    for model in (TARGET_MODEL, JUDGE_MODEL):
        prompts = [c["messages"][-1]["content"] for c in chat_server.calls(model)]
        assert len(prompts) == len(set(prompts)) == 18


@pytest.mark.parametrize("dist", [pytest.param([], id="no-xdist"), pytest.param(["-n", "2"], id="n2")])
def test_a_bad_key_stops_the_run_with_one_sentence(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str, dist: list[str]
) -> None:
    chat_server.inject(Reply("Incorrect API key provided: sk-test-0123****CRET", status=401), times=10_000)
    out = suite.path / "r.json"
    result = run_suite(
        suite,
        chat_server,
        dataset_files,
        "--airbench-sample=all",
        "--airbench-concurrency=2",
        f"--airbench-json={out}",
        *dist,
    )
    sentence = (
        "AIR-Bench stopped early: the first 3 calls to the model under test (target-model via openai at "
        f"{chat_server.v1_url}) all failed with: 401 Incorrect API key provided: sk-***. Check the API key, "
        "the model name and the base URL, then run again."
    )
    assert sentence in result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) < 18  # stopped, instead of erroring every prompt one by one
    processes = 2 if dist else 1
    # Each process's breaker needs its 3 calls; at most 2 more were already in flight.
    assert len(chat_server.calls()) <= processes * (3 + 2)
    assert "Traceback" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED
