"""The checks `.ci/run` applies to the built wheel and sdist, on archives made here."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from tests.distribution import ROOT, check_dist, package_files

ENTRY_POINTS = (
    "[console_scripts]\nairbench = airbench_plugin.cli:main\n\n[pytest11]\nairbench = airbench_plugin.plugin\n"
)


def _wheel(folder: Path, leave_out: str = "", entry_points: str = ENTRY_POINTS) -> Path:
    wheel = folder / "pytest_airbench-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in package_files():
            if name != leave_out:
                archive.write(ROOT / name, name)
        archive.writestr("pytest_airbench-0.1.0.dist-info/entry_points.txt", entry_points)
    return wheel


def _sdist(folder: Path, leave_out: str = "") -> Path:
    sdist = folder / "pytest_airbench-0.1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name in [*package_files(), "README.md", "pyproject.toml"]:
            if name != leave_out:
                archive.add(ROOT / name, f"pytest_airbench-0.1.0/{name}")
    return sdist


def test_the_package_data_a_wheel_must_hold() -> None:
    files = package_files()
    assert "airbench_plugin/reports/templates/report.html.j2" in files
    assert "airbench_plugin/reports/templates/compare.html.j2" in files
    assert "airbench_plugin/suite/test_airbench.py" in files
    assert "airbench_plugin/py.typed" in files
    assert not [name for name in files if "__pycache__" in name]


def test_a_complete_build_passes(tmp_path: Path) -> None:
    _wheel(tmp_path)
    _sdist(tmp_path)
    assert check_dist(tmp_path) == []


def test_a_wheel_without_its_templates_or_entry_points_is_named(tmp_path: Path) -> None:
    _wheel(tmp_path, "airbench_plugin/reports/templates/report.html.j2", ENTRY_POINTS.replace("[pytest11]", "[other]"))
    _sdist(tmp_path, "airbench_plugin/suite/test_airbench.py")
    assert check_dist(tmp_path) == [
        "pytest_airbench-0.1.0-py3-none-any.whl lacks airbench_plugin/reports/templates/report.html.j2",
        "pytest_airbench-0.1.0-py3-none-any.whl: entry point [pytest11] airbench is None, expected "
        "'airbench_plugin.plugin'",
        "pytest_airbench-0.1.0.tar.gz lacks airbench_plugin/suite/test_airbench.py",
    ]


def test_a_folder_without_one_of_each(tmp_path: Path) -> None:
    _wheel(tmp_path)
    assert check_dist(tmp_path) == [f"{tmp_path} should hold one wheel and one sdist, not 1 and 0"]


def test_ci_builds_checks_and_installs_the_distributions() -> None:
    """`.ci/run` builds both, has twine check them, checks their contents, and runs the installed wheel."""
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    steps = ["python -m build", "twine check --strict dist/*", "python -m tests.distribution dist"]
    steps.append('airbench" --version')
    for step in steps:
        assert step in script
    extras = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"build>=' in extras and '"twine>=' in extras
