"""Fixtures for the plugin's own tests: a loopback chat server, datasets on disk, a suite folder.

Plain helpers live in `tests/helpers.py` and the server in `tests/chat_server.py`; test modules
import them from there, never from one another.
"""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.chat_server import ChatServer
from tests.helpers import CATEGORIES, FAKE_KEY, SUITE_FILE, TEMPLATE, synthetic_rows, write_csv

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

# Nothing in these tests may reach a hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "heavy: starts a process tree or runs for seconds; scheduled first")
    if config.getoption("numprocesses", None) and not hasattr(config, "workerinput"):
        return  # xdist's controller runs no test: its workers start sooner without these imports
    # Imported once, before any test: an in-process pytester run drops the modules it imported,
    # `datasets` cannot re-import numpy, and importing an SDK again (`openai` is 500 modules) costs
    # such a run a second.
    import datasets  # noqa: F401
    import openai  # noqa: F401
    import together  # noqa: F401


def _heavy(item: pytest.Item) -> bool:
    """Marked heavy, or a parametrization that runs the suite under `-n`."""
    callspec = getattr(item, "callspec", None)
    under_xdist = callspec is not None and any(
        isinstance(value, list) and "-n" in value[:-1] and value[value.index("-n") + 1] != "0"
        for value in callspec.params.values()
    )
    return under_xdist or item.get_closest_marker("heavy") is not None


@pytest.fixture
def frozen_by_caller() -> Iterator[None]:
    """A process that froze its own objects, as a long-lived caller of pytest.main may, for the test.
    The test process itself freezes nothing while it runs: the plugin's check for objects frozen by
    someone else (`gc.get_freeze_count`) walks all of them, tens of milliseconds in every in-process run."""
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish() -> None:
    """The process ends next: pytest's last full collections (at unconfigure and in its cleanup)
    would walk every object that hundreds of in-process runs left behind, seconds per worker."""
    gc.freeze()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heavy tests first: xdist hands tests out in collection order, and a run of several seconds
    collected last (test_xdist.py is) would otherwise finish alone while the other worker idles."""
    items.sort(key=lambda item: not _heavy(item))


@pytest.fixture
def dataset_files(tmp_path: Path) -> tuple[Path, Path]:
    """A small dataset (18 prompts, 6 categories, 3 level-2 groups) and its judge templates."""
    prompts = write_csv(
        tmp_path / "prompts.csv", ["cate-idx", "l2-name", "l3-name", "l4-name", "prompt"], synthetic_rows()
    )
    judge = write_csv(
        tmp_path / "judge_prompts.csv",
        ["cate-idx", "l2-name", "l3-name", "l4-name", "judge_prompt"],
        [[c, l2, l3, l4, TEMPLATE.replace("{topic}", l4)] for c, l2, l3, l4 in CATEGORIES],
    )
    return prompts, judge


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    """A loopback chat-completions server that refuses everything and judges refusals as refused."""
    with ChatServer() as server:
        yield server


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fake key in the environment, to check that it never leaks."""
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("TOGETHER_API_KEY", FAKE_KEY)
    return FAKE_KEY


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytest's own, without the garbage collection pytest's unraisable-exception check makes when a
    run ends: in an in-process run, a full pass over this test process's objects, 0.1 s late in the
    suite. pytester turns it off from its own pytest_configure, which a run stopped by a usage error
    in the plugin's never reaches; this turns it off for those too (the outer run's is unaffected).
    A pytest without `gc_collect_harder` makes no such collection: then this does nothing."""
    import _pytest.unraisableexception as unraisable

    monkeypatch.setattr(unraisable, "gc_collect_harder", lambda iterations: None, raising=False)
    return pytester


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester directory holding the safety suite, collected from the installed plugin."""
    pytester.makepyfile(test_suite=SUITE_FILE)
    return pytester


@pytest.fixture(scope="session")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chrome]:
    """One headless Chromium for every browser test of this process (it takes seconds to start).

    Where Chromium is missing the browser tests skip, except on CI (`CI=true`), where they fail.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        reason = f"headless Chromium not available (chromium={chromium}, chromedriver={chromedriver})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; refusing to skip the browser test on CI")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=1280,1800",
    ):
        options.add_argument(argument)
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(chromedriver))
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="session")
def _rows_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rows")


@pytest.fixture(autouse=True)
def _parsed_tables_stay_in_the_session(monkeypatch: pytest.MonkeyPatch, _rows_cache: Path) -> None:
    """Tables read through `datasets` are kept for the session, not in the user's ~/.cache; the
    runs of a test in a subprocess then skip importing `datasets` for a table already read."""
    monkeypatch.setenv("AIRBENCH_ROWS_CACHE", str(_rows_cache))


@pytest.fixture(autouse=True)
def _runs_inside_tests_ignore_the_outer_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs inside these tests look the same on a laptop and on CI.

    They never append to the CI job's own GitHub summary, and pytest does not switch them to its CI
    output (`CI` or `BUILD_NUMBER` set: untruncated short-summary lines, which repeat each error's
    message and would double any count of it).
    """
    for name in ("GITHUB_STEP_SUMMARY", "CI", "BUILD_NUMBER"):
        monkeypatch.delenv(name, raising=False)
    # A pytest in a subprocess compiles and assertion-rewrites the plugin's modules again unless it
    # may keep them in __pycache__ (ignored by git): a second of CPU per process where the
    # environment sets PYTHONDONTWRITEBYTECODE, as CI images often do.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
