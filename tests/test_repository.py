"""The repository itself: what a run leaves is ignored by git, and the packaging installs cleanly."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chat_server import ChatServer
from tests.helpers import suite_args

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def readme_run_command() -> list[str]:
    """The pytest arguments of the README's command that runs the safety suite."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    line = next(line for line in readme.splitlines() if "pytest --airbench-model" in line and "OPENAI_API_KEY" in line)
    words = shlex.split(line.split("&&")[-1])
    return words[words.index("pytest") + 1 :]


def _untracked(folder: Path) -> set[str]:
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return {line[3:] for line in status.stdout.splitlines()}


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_gitignore_covers_what_the_readme_command_writes(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    # The README's command, pointed at the loopback server, in a git work tree holding our .gitignore.
    args = readme_run_command()
    for endpoint in ("--airbench-model", "--airbench-judge-model"):  # the loopback server's models instead
        index = args.index(endpoint)
        del args[index : index + 2]
    jobs = args.index("-n")  # the outputs are the same without workers; in-process is faster
    del args[jobs : jobs + 2]
    shutil.copy(REPO / ".gitignore", suite.path / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=suite.path, check=True)
    before = _untracked(suite.path)

    result = suite.runpytest(*suite_args(chat_server, *dataset_files), *args)

    result.assert_outcomes(passed=13)
    written = {"report.html", "assets/style.css", "airbench.xml", "airbench.html", "airbench.json", ".airbench_cache"}
    assert all((suite.path / name).exists() for name in written)
    assert _untracked(suite.path) == before


def test_editable_install_uses_a_plain_path_entry() -> None:
    """`package-dir = {"" = "."}` makes setuptools' editable install a .pth entry for the root.

    Without it, setuptools picks its import-finder strategy for the flat layout, and every
    `pip install -e .` prints "Please be careful with folders in your working directory with the
    same name as your package". Checked by hand with `pip install -e .` in a fresh venv; a pip
    install is too slow and needs an index, so this test locks the setting instead.
    """
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = config["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"": "."}
    assert setuptools["packages"]["find"]["include"] == ["airbench_plugin*"]
