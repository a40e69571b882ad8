"""What a built wheel and sdist must hold; `.ci/run` checks the files `python -m build` made.

`python -m tests.distribution dist/` prints one line per problem and exits 1 when there is any.
The checks are plain functions, unit-tested in `tests/test_distribution.py` on archives made there,
since the suite itself never builds (an isolated build installs setuptools from the network).
"""

from __future__ import annotations

import configparser
import sys
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "airbench_plugin"
ENTRY_POINTS = {
    "console_scripts": {"airbench": "airbench_plugin.cli:main"},
    "pytest11": {"airbench": "airbench_plugin.plugin"},
}
SDIST_EXTRA = ("README.md", "pyproject.toml")


def package_files(root: Path = ROOT) -> list[str]:
    """Every file of the package in the source tree (modules, templates, the suite, py.typed), as
    paths relative to the root; what the wheel must hold."""
    return sorted(
        path.relative_to(root).as_posix()
        for path in (root / PACKAGE).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def _missing(expected: Iterable[str], held: set[str], archive: str) -> list[str]:
    return [f"{archive} lacks {name}" for name in expected if name not in held]


def check_wheel(wheel: Path, root: Path = ROOT) -> list[str]:
    """One sentence per problem of a wheel: a package file it lacks, an entry point missing or wrong."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        problems = _missing(package_files(root), names, wheel.name)
        entry_files = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        if not entry_files:
            return [*problems, f"{wheel.name} has no entry_points.txt"]
        parser = configparser.ConfigParser()
        parser.optionxform = str  # type: ignore[assignment,method-assign]  # names are case-sensitive
        parser.read_string(archive.read(entry_files[0]).decode("utf-8"))
    for group, entries in ENTRY_POINTS.items():
        for name, target in entries.items():
            found = parser.get(group, name, fallback=None)
            if found != target:
                problems.append(f"{wheel.name}: entry point [{group}] {name} is {found!r}, expected {target!r}")
    return problems


def check_sdist(sdist: Path, root: Path = ROOT) -> list[str]:
    """One sentence per file of the package, the README or pyproject.toml that the sdist lacks."""
    with tarfile.open(sdist) as archive:
        names = {name.partition("/")[2] for name in archive.getnames()}
    return _missing([*package_files(root), *SDIST_EXTRA], names, sdist.name)


def check_dist(folder: Path, root: Path = ROOT) -> list[str]:
    """The problems of the one wheel and the one sdist in `folder`."""
    wheels, sdists = sorted(folder.glob("*.whl")), sorted(folder.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        return [f"{folder} should hold one wheel and one sdist, not {len(wheels)} and {len(sdists)}"]
    return check_wheel(wheels[0], root) + check_sdist(sdists[0], root)


def main(argv: list[str]) -> int:
    problems = check_dist(Path(argv[0]) if argv else ROOT / "dist")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
