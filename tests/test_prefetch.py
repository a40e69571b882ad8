"""Which cases a process starts ahead of their tests: the plain decisions, and xdist's queue."""

from __future__ import annotations

import pytest

from airbench_plugin.prefetch import Prefetch, upcoming


def test_without_xdist_everything_starts_at_the_first_test() -> None:
    plan: Prefetch[str] = Prefetch(worker=False)
    assert plan.step("a", ["b", "c", "d"]) == ([], ["b", "c", "d"])
    assert plan.step("b", ["c", "d"]) == ([], [])
    assert plan.deepest == 3


def test_a_worker_starts_its_queue_and_cancels_what_left_it() -> None:
    plan: Prefetch[str] = Prefetch(worker=True)
    assert plan.step("a", ["b", "c"]) == ([], ["b", "c"])
    assert plan.step("b", ["c", "d", "e"]) == ([], ["d", "e"])  # c is already on its way
    assert plan.step("c", ["d"]) == (["e"], [])  # e went to another worker
    assert plan.deepest == 3


def test_under_worksteal_a_worker_starts_the_head_half_only() -> None:
    plan: Prefetch[str] = Prefetch(worker=True, worksteal=True)
    assert plan.step("a", ["b", "c", "d", "e", "f", "g"]) == ([], ["b", "c", "d"])
    assert plan.step("b", ["c"]) == (["d"], [])
    assert plan.deepest == 3


def test_a_worker_without_xdists_queue_runs_the_next_test_ahead(pytester: pytest.Pytester) -> None:
    """The fallback when xdist's private queue is gone: the real next item, nothing more."""
    first, second, third = pytester.getitems("def test_a(): pass\ndef test_b(): pass\ndef test_c(): pass\n")
    first.session.items = [first, second, third]  # as a full collection leaves them
    assert list(upcoming(first, None)) == [second, third]  # no xdist: every later test
    first.config.workerinput = {"workerid": "gw0"}  # type: ignore[attr-defined]  # as xdist sets it
    try:
        assert list(upcoming(first, second)) == [second]
        assert list(upcoming(third, None)) == []
    finally:
        del first.config.workerinput  # type: ignore[attr-defined]
