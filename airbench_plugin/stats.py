"""Error bars: standard errors, intervals and paired differences of refusal scores. Pure functions.

A row is any set of scored prompts (overall, a category, a gate's prefix) with scores in [0, 1].
AIR-Bench prompts come in clusters (about 18 generated variants per level-4 category), so a row
spanning several level-4 categories uses the clustered standard error with the level-4 cate-idx as
cluster; a row within one level-4 category uses the plain one. The recipe is Miller (2024), "Adding
Error Bars to Evals" (arXiv 2411.00640); the clustered formula is inspect_ai's `stderr(cluster=...)`.

The interval on a rate is Wilson's score interval on the effective sample size the (clustered)
standard error implies, so 5 refusals of 5 is [0.57, 1], not [1, 1]. The interval on a paired
difference is the normal one, mean ± z·SE.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from airbench_plugin import decode

DEFAULT_CONFIDENCE = 0.95
POWER = 0.80  # the power `min_detectable_drop` is stated at
_NORMAL = NormalDist()


def z_value(confidence: float) -> float:
    """The two-sided normal quantile of `confidence`: 1.96 at 0.95."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, not {confidence!r}")
    return _NORMAL.inv_cdf(1.0 - (1.0 - confidence) / 2.0)


Z95 = z_value(DEFAULT_CONFIDENCE)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)  # as `results.tally` sums, so a gate and the summary agree to the bit


def clustered_stderr(scores: Sequence[float], clusters: Sequence[str]) -> float | None:
    """The standard error of the mean of `scores`, clustered by `clusters` (one label per score).

    With C >= 2 clusters: `sqrt(C/(C-1) * sum_c (sum_{i in c} (s_i - m))^2) / n`; with one cluster,
    the plain `sqrt(sum (s_i - m)^2 / (n (n-1)))`. None for fewer than two scores.
    """
    if len(scores) != len(clusters):
        raise ValueError("one cluster label per score")
    n = len(scores)
    if n < 2:
        return None
    m = _mean(scores)
    sums: dict[str, list[float]] = defaultdict(list)
    for score, cluster in zip(scores, clusters, strict=True):
        sums[cluster].append(score - m)
    c = len(sums)
    if c < 2:
        return math.sqrt(math.fsum((s - m) ** 2 for s in scores) / (n * (n - 1)))
    between = math.fsum(math.fsum(deviations) ** 2 for deviations in sums.values())
    return math.sqrt(c / (c - 1) * between) / n


def n_effective(mean: float, n: int, stderr: float | None) -> float:
    """The sample size the standard error implies, `min(n, m(1-m)/SE^2)`; `n` when SE is 0 or None."""
    if stderr is None or stderr <= 0.0:
        return float(n)
    return min(float(n), mean * (1.0 - mean) / stderr**2)


def wilson_interval(mean: float, n_effective: float, z: float) -> tuple[float, float]:
    """Wilson's score interval on a rate `mean` observed over `n_effective` prompts."""
    if n_effective <= 0:
        raise ValueError("the effective sample size must be positive")
    z2n = z * z / n_effective
    center = (mean + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(max(mean * (1.0 - mean), 0.0) / n_effective + z2n / (4.0 * n_effective))
    return max(0.0, center - half), min(1.0, center + half)


def half_width(n: int, z: float, mean: float = 0.5) -> float:
    """The Wilson half-width at `mean` with n_eff = n: what a row of `n` prompts can resolve."""
    low, high = wilson_interval(mean, n, z)
    return (high - low) / 2.0


def prompts_for(target: float, z: float) -> int:
    """The fewest prompts whose Wilson half-width at m = 0.5 is at most `target` (n_eff = n)."""
    # The half-width at 0.5 is z / (2 sqrt(n + z^2)), so n = (z / 2t)^2 - z^2; round up, then step
    # past any float edge.
    n = max(1, math.ceil((z / (2.0 * target)) ** 2 - z * z))
    while n > 1 and half_width(n - 1, z) <= target:
        n -= 1
    while half_width(n, z) > target:
        n += 1
    return n


def resolution_text(total: int, group_sizes: Sequence[int], confidence: float) -> str:
    """What a plan can resolve, for the header: `80 prompts: overall ±11 points, level-2 ±33 points at 95 %`.

    The Wilson half-width at a rate of 0.5 with n_eff = n, overall and for the level-2 categories
    (`group_sizes`, one per category; a range when they differ).
    """
    z = z_value(confidence)
    overall = f"overall ±{half_width(total, z) * 100:.0f} points" if total else "nothing to resolve"
    level2 = ""
    if group_sizes and total:
        widest, narrowest = (round(half_width(n, z) * 100) for n in (min(group_sizes), max(group_sizes)))
        span = f"±{widest}" if widest == narrowest else f"±{narrowest} to ±{widest}"
        level2 = f", level-2 {span} points"
    prompts = f"{total:,} prompt" + ("" if total == 1 else "s")
    return f"{prompts}: {overall}{level2} at {confidence * 100:g} %"


@dataclass(frozen=True)
class RateEstimate:
    """A rate with its error bar: standard error (None below two prompts), effective sample size
    and the Wilson interval at the run's confidence."""

    mean: float
    n: int
    stderr: float | None
    n_effective: float
    ci_low: float
    ci_high: float

    def to_json(self) -> dict[str, Any]:
        return {"stderr": self.stderr, "ci_low": self.ci_low, "ci_high": self.ci_high, "n_effective": self.n_effective}


def rate_estimate(scores: Sequence[float], clusters: Sequence[str], z: float) -> RateEstimate | None:
    """`scores`' mean with its clustered standard error and Wilson interval; None without scores."""
    if not scores:
        return None
    mean = _mean(scores)
    stderr = clustered_stderr(scores, clusters)
    n_eff = n_effective(mean, len(scores), stderr)
    low, high = wilson_interval(mean, n_eff, z)
    return RateEstimate(mean, len(scores), stderr, n_eff, low, high)


@dataclass(frozen=True)
class PairedDifference:
    """Now minus baseline over the prompts both runs scored, with its clustered standard error.

    `ci_low`/`ci_high` are `mean ± z·SE` (within [-1, 1]); `p_value` is the two-sided normal test of no change;
    `correlation` is Pearson's between the two runs' scores (None where either is constant);
    `min_detectable_drop` is `(z + z_0.80)·SE`, the drop these prompts detect with 80 % power.
    Everything but `shared` and `mean` is None below two shared prompts.
    """

    shared: int
    mean: float | None
    stderr: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    correlation: float | None
    min_detectable_drop: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "shared": self.shared,
            "mean": self.mean,
            "stderr": self.stderr,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "correlation": self.correlation,
            "min_detectable_drop": self.min_detectable_drop,
        }

    @classmethod
    def from_json(cls, data: object, where: str) -> PairedDifference:
        """As `to_json` wrote it; raises `decode.DecodeError` naming the first bad field."""
        raw = decode.obj(data, where)

        def number(name: str, low: float, high: float) -> float | None:
            return decode.opt_number(raw.get(name), f"{where}.{name}", low, high)

        return cls(
            shared=decode.integer(raw.get("shared", 0), f"{where}.shared"),
            mean=number("mean", -1.0, 1.0),
            stderr=number("stderr", 0.0, 1.0),
            ci_low=number("ci_low", -1.0, 1.0),
            ci_high=number("ci_high", -1.0, 1.0),
            p_value=number("p_value", 0.0, 1.0),
            correlation=number("correlation", -1.0, 1.0),
            min_detectable_drop=number("min_detectable_drop", 0.0, 100.0),
        )

    def significant(self) -> bool:
        """Whether the interval excludes no change."""
        return self.ci_low is not None and self.ci_high is not None and (self.ci_low > 0.0 or self.ci_high < 0.0)


def correlation(first: Sequence[float], second: Sequence[float]) -> float | None:
    """Pearson's correlation of two paired score lists; None below two pairs or when either is constant."""
    if len(first) < 2:
        return None
    try:
        return max(-1.0, min(1.0, statistics.correlation(first, second)))
    except statistics.StatisticsError:
        return None


def paired_difference(
    now: Sequence[float], base: Sequence[float], clusters: Sequence[str], z: float
) -> PairedDifference:
    """The paired difference `now - base` over shared prompts (one cluster label per pair)."""
    if not len(now) == len(base) == len(clusters):
        raise ValueError("one baseline score and one cluster label per score")
    shared = len(now)
    if shared == 0:
        return PairedDifference(0, None, None, None, None, None, None, None)
    diffs = [a - b for a, b in zip(now, base, strict=True)]
    mean = _mean(diffs)
    stderr = clustered_stderr(diffs, clusters)
    if stderr is None:
        return PairedDifference(shared, mean, None, None, None, None, None, None)
    # SE = 0: every cluster moved by the same amount, so the change is certain (or there is none).
    p_value = 2.0 * _NORMAL.cdf(-abs(mean) / stderr) if stderr > 0.0 else float(mean == 0.0)
    return PairedDifference(
        shared=shared,
        mean=mean,
        stderr=stderr,
        ci_low=max(-1.0, mean - z * stderr),  # a difference of two rates lies in [-1, 1]
        ci_high=min(1.0, mean + z * stderr),
        p_value=p_value,
        correlation=correlation(now, base),
        min_detectable_drop=(z + _NORMAL.inv_cdf(POWER)) * stderr,
    )
