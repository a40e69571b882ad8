"""How far two judges agree: each reading binarised as refusal score >= threshold. Pure functions.

Over the prompts both judges scored: the agreement rate, Cohen's kappa and the 2x2 counts, overall
and per level-2 category.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airbench_plugin.stats import Z95, wilson_interval


@dataclass(frozen=True)
class Confusion:
    """The 2x2 counts of two judges' pass/fail calls on the same prompts."""

    both_pass: int = 0
    both_fail: int = 0
    first_only_pass: int = 0
    second_only_pass: int = 0

    @property
    def n(self) -> int:
        return self.both_pass + self.both_fail + self.first_only_pass + self.second_only_pass

    @property
    def agreement_rate(self) -> float | None:
        """The share of prompts both judges pass or both fail; None without prompts."""
        return (self.both_pass + self.both_fail) / self.n if self.n else None

    @property
    def cohen_kappa(self) -> float | None:
        """Agreement beyond chance, (p_o - p_e) / (1 - p_e); None without prompts, or when chance
        agreement is certain (both judges gave every prompt the same call), where it is undefined."""
        n = self.n
        if not n:
            return None
        observed = (self.both_pass + self.both_fail) / n
        first_pass = (self.both_pass + self.first_only_pass) / n
        second_pass = (self.both_pass + self.second_only_pass) / n
        chance = first_pass * second_pass + (1 - first_pass) * (1 - second_pass)
        if chance >= 1.0:
            return None
        return (observed - chance) / (1 - chance)

    def add(self, first_passes: bool, second_passes: bool) -> Confusion:
        return Confusion(
            self.both_pass + (first_passes and second_passes),
            self.both_fail + (not first_passes and not second_passes),
            self.first_only_pass + (first_passes and not second_passes),
            self.second_only_pass + (second_passes and not first_passes),
        )

    def interval(self, z: float) -> tuple[float, float] | None:
        """The agreement rate's Wilson interval at the normal quantile `z` (the prompts are its trials)."""
        rate = self.agreement_rate
        return None if rate is None else wilson_interval(rate, self.n, z)

    def figures(self, z: float = Z95) -> dict[str, Any]:
        """`n`, `agreement_rate` with its interval, `cohen_kappa` and `confusion`, as the JSON document shows them."""
        interval = self.interval(z)
        return {
            "n": self.n,
            "agreement_rate": self.agreement_rate,
            "ci_low": None if interval is None else interval[0],
            "ci_high": None if interval is None else interval[1],
            "cohen_kappa": self.cohen_kappa,
            "confusion": {
                "both_pass": self.both_pass,
                "both_fail": self.both_fail,
                "first_only_pass": self.first_only_pass,
                "second_only_pass": self.second_only_pass,
            },
        }


@dataclass(frozen=True)
class ScoredPair:
    """One prompt both judges scored: its level-2 category and the two refusal scores."""

    l2: str
    l2_name: str
    first: float
    second: float


@dataclass(frozen=True)
class CategoryAgreement:
    name: str
    confusion: Confusion

    def to_json(self, z: float = Z95) -> dict[str, Any]:
        return {"name": self.name, **self.confusion.figures(z)}


@dataclass(frozen=True)
class Agreement:
    """Two judges' agreement over the prompts both scored, overall and per level-2 category."""

    judges: tuple[str, str]
    threshold: float
    confusion: Confusion
    l2: dict[str, CategoryAgreement]
    z: float = Z95  # the normal quantile of the run's confidence, for the agreement rates' intervals

    def to_json(self) -> dict[str, Any]:
        return {
            "judges": list(self.judges),
            **self.confusion.figures(self.z),
            "l2": {key: row.to_json(self.z) for key, row in self.l2.items()},
        }


def passes(score: float, threshold: float) -> bool:
    """A reading binarised as a test would be: it passes at refusal score >= threshold."""
    return score >= threshold


def agreement(pairs: Iterable[ScoredPair], judges: tuple[str, str], threshold: float, z: float = Z95) -> Agreement:
    """The agreement of `judges` over `pairs`; level-2 rows in the order the pairs first name them."""
    overall = Confusion()
    l2: dict[str, CategoryAgreement] = {}
    for pair in pairs:
        first, second = passes(pair.first, threshold), passes(pair.second, threshold)
        overall = overall.add(first, second)
        row = l2.get(pair.l2, CategoryAgreement(pair.l2_name, Confusion()))
        l2[pair.l2] = CategoryAgreement(row.name, row.confusion.add(first, second))
    return Agreement(judges, threshold, overall, l2, z)
