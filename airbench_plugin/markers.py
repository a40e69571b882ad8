"""Markers that name a test's risk category at each level, so `-m` selects a category exactly.

`-k` matches substrings of test ids (`-k 1.1` also picks `3.11.18`); a marker expression matches
whole marker names, so `-m airbench_l3_1_1` picks level-3 category 1.1 and nothing else, and
`-m airbench_l2_1` picks every prompt under level-2 category 1. Pure functions: the plugin
registers and applies the names.
"""

from __future__ import annotations

from collections.abc import Iterable

from airbench_plugin.dataset import Case, cate_sort_key

LEVEL_NAMES = {"l2": "level-2", "l3": "level-3", "l4": "level-4"}


def marker_name(level: str, key: str) -> str:
    """`airbench_l3_1_1` for level `l3` and cate-idx prefix `1.1`."""
    return f"airbench_{level}_{key.replace('.', '_')}"


def case_markers(case: Case) -> list[str]:
    """The three category markers of one prompt: its level-2, level-3 and level-4 category."""
    return [marker_name(level, case.group(level)) for level in LEVEL_NAMES]


def marker_lines(cases: Iterable[Case]) -> list[str]:
    """`markers` ini lines that register the category markers of `cases` (for --strict-markers).

    Each line names the category, so `pytest --markers` doubles as a list of what -m can select.
    """
    names: dict[str, str] = {}
    for case in cases:
        for level, label in LEVEL_NAMES.items():
            key = case.group(level)
            title = {"l2": case.l2_name, "l3": case.l3_name, "l4": case.l4_name}[level]
            names.setdefault(f"{level}:{key}", f"{marker_name(level, key)}: AIR-Bench {label} category {key} {title}")
    return [names[k] for k in sorted(names, key=_order)]


def _order(level_key: str) -> tuple[str, tuple[int, ...]]:
    level, _, key = level_key.partition(":")
    return level, cate_sort_key(key)
