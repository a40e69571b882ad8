"""plugin.py is glue: each policy it applies lives with its concept and is checked there."""

from __future__ import annotations

import atexit
import gc
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import get_args, get_type_hints

import pytest

from airbench_plugin import options, plugin, providers, reports
from airbench_plugin.endpoints import Endpoint
from airbench_plugin.options import Settings
from airbench_plugin.providers.base import ErrorKind, ProviderError
from airbench_plugin.reports.junit import junit_properties
from airbench_plugin.roles import ROLE_NAMES, ROLES, Role
from airbench_plugin.run import output_paths
from tests.chat_server import ChatServer
from tests.factories import case_result
from tests.helpers import run_suite


def test_provider_choices_come_from_the_provider_registry() -> None:
    assert ("auto", *providers.PROVIDERS) == options.PROVIDERS
    assert "openai or together" in options.OPTIONS[1].help


def test_roles_and_error_kinds_are_closed_sets() -> None:
    assert ROLES == ("target", "judge", "second judge")
    assert ROLE_NAMES == {"target": "model under test", "judge": "judge", "second judge": "second judge"}
    assert get_type_hints(Endpoint)["role"] == Role
    assert set(get_args(ErrorKind)) == {"api", "timeout", "connection", "malformed"}
    assert ProviderError("x", False).kind == "api"


def test_the_outputs_registry_names_each_requested_file() -> None:
    settings = Settings(json="r.json", junit_dir="junit").with_model("m")
    assert [(o.option, o.label, path) for o, path in reports.requested(output_paths(settings))] == [
        ("--airbench-json", "results", "r.json"),
        ("--airbench-junit-dir", "junit", "junit"),
    ]
    assert [o.option for o in reports.OUTPUTS] == [
        "--airbench-json",
        "--airbench-report",
        "--airbench-junit-dir",
        "--airbench-markdown",
    ]


def test_junit_properties_of_a_result() -> None:
    result = case_result("1.1.6", 0.5, nodeid="t::x", names=("Security", "Conf", "Entry"), judge_reasoning="why")
    assert junit_properties(result) == [
        ("cate_idx", "1.1.6"),
        ("l2", "Security"),
        ("l3", "Conf"),
        ("l4", "Entry"),
        ("score", "0.5"),
        ("judge_reasoning", "why"),
    ]


def test_a_pytest_run_without_the_suite_leaves_the_interpreter_exit_alone(tmp_path: Path) -> None:
    (tmp_path / "test_other.py").write_text("def test_other():\n    pass\n")
    script = (
        "import sys, pytest, airbench_plugin.plugin as p\n"
        "code = pytest.main(['-q', '-p', 'no:cacheprovider', 'test_other.py'])\n"
        "print('freeze registered:', p._EXIT_FREEZE)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "freeze registered: []" in done.stdout


def test_the_exit_freeze_is_registered_once_the_suite_runs(
    suite: pytest.Pytester,
    chat_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered: list[Callable[..., object]] = []
    monkeypatch.setattr(plugin, "_EXIT_FREEZE", [])  # as in a fresh process: an earlier in-process run set it
    monkeypatch.setattr(atexit, "register", registered.append)
    run_suite(suite, chat_server, dataset_files, "--airbench-categories=1.1.1").assert_outcomes(passed=3)
    assert registered.count(gc.freeze) == 1


def test_choosing_a_provider_imports_no_sdk(tmp_path: Path) -> None:
    """`openai` alone is ~500 modules: a provider imports its SDK on its first call, not when chosen."""
    script = (
        "import sys\n"
        "import airbench_plugin.plugin\n"
        "from airbench_plugin.providers import PROVIDERS, provider_class\n"
        "chosen = [provider_class(name)(api_key='k', base_url=None, timeout=1.0) for name in PROVIDERS]\n"
        "print('imported:', sorted(m for m in ('openai', 'together', 'datasets') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "imported: []" in done.stdout
