"""Statistics of a judge calibration that a run has no use for: Student's t quantile, the paired
bias of one judge against another, and Cohen's quadratic-weighted kappa on AIR-Bench's three score
levels. Pure functions.

Student's t distribution function is the regularised incomplete beta function (Abramowitz and
Stegun 26.7.1), evaluated by its continued fraction with the modified Lentz method (Numerical
Recipes, 3rd ed., 6.4); the quantile inverts it by bisection. No scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

LEVELS = (0.0, 0.5, 1.0)  # the only scores an AIR-Bench judge gives, on the refusal scale
LEVEL_KEYS = ("0", "0.5", "1")  # how reports name them

_FRACTION_STEPS = 300
_TINY = 1e-300
_EPSILON = 1e-15


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _FRACTION_STEPS + 1):
        m2 = 2 * m
        even = m * (b - m) * x / ((qam + m2) * (a + m2))
        odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        for numerator in (even, odd):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPSILON:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must lie in [0, 1], not {x!r}")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    # The fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, not {df!r}")
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The `p` quantile of Student's t with `df` degrees of freedom: t_quantile(0.975, 9) = 2.2622."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie strictly between 0 and 1, not {p!r}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if middle in (low, high):
            break
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


@dataclass(frozen=True)
class Bias:
    """The mean of paired differences (candidate − official) with Student's t interval.

    `ci_low`/`ci_high` are `mean ± t(1 − α/2, n − 1)·sd/√n` with the sample sd (n − 1); they, `sd`
    and `stderr` are None below two pairs.
    """

    n: int
    mean: float | None
    sd: float | None
    stderr: float | None
    ci_low: float | None
    ci_high: float | None

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high, "sd": self.sd, "stderr": self.stderr}


def paired_bias(differences: Sequence[float], confidence: float = 0.95) -> Bias:
    """The bias over `differences` (one candidate − official difference per item)."""
    n = len(differences)
    if n == 0:
        return Bias(0, None, None, None, None, None)
    mean = math.fsum(differences) / n
    if n < 2:
        return Bias(n, mean, None, None, None, None)
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in differences) / (n - 1))
    stderr = sd / math.sqrt(n)
    half = t_quantile(1.0 - (1.0 - confidence) / 2.0, n - 1) * stderr
    return Bias(n, mean, sd, stderr, mean - half, mean + half)


def level_index(score: float) -> int:
    """The position of `score` among LEVELS; raises ValueError for any other number."""
    for index, level in enumerate(LEVELS):
        if score == level:
            return index
    raise ValueError(f"{score!r} is not one of the scores 0, 0.5 and 1")


def level_confusion(pairs: Sequence[tuple[float, float]]) -> list[list[int]]:
    """Counts of (first, second) score pairs: rows the first's level, columns the second's."""
    table = [[0] * len(LEVELS) for _ in LEVELS]
    for first, second in pairs:
        table[level_index(first)][level_index(second)] += 1
    return table


def quadratic_weighted_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Cohen's kappa with quadratic weights over a square table of counts.

    κ_w = 1 − Σ w_ij O_ij / Σ w_ij E_ij with w_ij = (i − j)² / (k − 1)² and E_ij = row_i · col_j / n.
    None without pairs, or when the expected disagreement is 0 (both raters used one and the same level).
    """
    k = len(table)
    n = sum(sum(row) for row in table)
    if n == 0 or k < 2:
        return None
    rows = [sum(row) for row in table]
    columns = [sum(table[i][j] for i in range(k)) for j in range(k)]
    weight = [[(i - j) ** 2 / (k - 1) ** 2 for j in range(k)] for i in range(k)]
    observed = math.fsum(weight[i][j] * table[i][j] for i in range(k) for j in range(k))
    expected = math.fsum(weight[i][j] * rows[i] * columns[j] / n for i in range(k) for j in range(k))
    if expected == 0.0:
        return None
    return 1.0 - observed / expected
