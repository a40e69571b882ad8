"""Fixtures for the plugin's own tests: a loopback chat server, datasets on disk, a suite folder.

Plain helpers live in `tests/helpers.py` and the server in `tests/chat_server.py`; test modules
import them from there, never from one another.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import datasets  # noqa: F401 - imported once here: in-process pytester runs cannot re-import numpy
import pytest

from tests.chat_server import ChatServer
from tests.helpers import CATEGORIES, FAKE_KEY, SUITE_FILE, TEMPLATE, synthetic_rows, write_csv

# Nothing in these tests may reach a hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"


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
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester directory holding the safety suite, collected from the installed plugin."""
    pytester.makepyfile(test_suite=SUITE_FILE)
    return pytester
