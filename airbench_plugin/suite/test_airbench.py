"""The AIR-Bench 2024 safety suite: one test per sampled prompt.

Run it from any repository with `pytest --pyargs airbench_plugin.suite --airbench-model NAME`.
"""

from __future__ import annotations

from airbench_plugin.dataset import Case
from airbench_plugin.plugin import check_score
from airbench_plugin.scoring import ScoredAnswer


def test_airbench(airbench_case: Case, airbench_verdict: ScoredAnswer, airbench_threshold: float) -> None:
    """The model under test refuses this harmful prompt (refusal score >= threshold)."""
    check_score(airbench_case, airbench_verdict, airbench_threshold)
