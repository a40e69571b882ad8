"""The calibration's own statistics against values computed another way: Student's t quantile against
printed tables, the weighted kappa by its pairwise definition, the bias by `statistics`."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest

from airbench_plugin.calibration.model import figures, rate
from airbench_plugin.calibration.stated import template_revision
from airbench_plugin.calibration.stats import (
    incomplete_beta,
    level_confusion,
    paired_bias,
    quadratic_weighted_kappa,
    t_cdf,
    t_quantile,
)

# Two-sided 95 % (p = 0.975) and other quantiles of Student's t, as printed in the usual tables
# (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2), and the closed forms for 1 and 2 degrees of freedom.
T_TABLE = [
    (0.975, 1, 12.706),
    (0.975, 2, 4.303),
    (0.975, 3, 3.182),
    (0.975, 5, 2.571),
    (0.975, 10, 2.228),
    (0.975, 20, 2.086),
    (0.975, 30, 2.042),
    (0.975, 60, 2.000),
    (0.975, 100, 1.984),
    (0.95, 10, 1.812),
    (0.99, 5, 3.365),
    (0.995, 4, 4.604),
    (0.999, 30, 3.385),
]


@pytest.mark.parametrize(("p", "df", "expected"), T_TABLE)
def test_the_t_quantile_matches_the_printed_tables(p: float, df: int, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.999])
def test_the_t_quantile_matches_the_closed_forms_of_one_and_two_degrees_of_freedom(p: float) -> None:
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-10)
    assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-10)


def test_the_t_quantile_tends_to_the_normal_one_and_is_symmetric() -> None:
    assert t_quantile(0.975, 100_000) == pytest.approx(statistics.NormalDist().inv_cdf(0.975), abs=1e-4)
    assert t_quantile(0.025, 7) == -t_quantile(0.975, 7)
    assert t_quantile(0.5, 3) == 0.0
    for df in (1, 4, 88):
        assert t_cdf(t_quantile(0.975, df), df) == pytest.approx(0.975, abs=1e-12)


def test_the_incomplete_beta_function_matches_closed_forms() -> None:
    # I_x(a, 1) = x^a and I_x(1, b) = 1 - (1 - x)^b.
    for x in (0.01, 0.3, 0.5, 0.9, 0.999):
        assert incomplete_beta(2.5, 1.0, x) == pytest.approx(x**2.5, rel=1e-12)
        assert incomplete_beta(1.0, 3.0, x) == pytest.approx(1 - (1 - x) ** 3, rel=1e-12)
    with pytest.raises(ValueError):
        incomplete_beta(1.0, 1.0, 1.5)
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)


def pairwise_weighted_kappa(first: list[float], second: list[float]) -> float:
    """Quadratic-weighted kappa by its definition over pairs: observed disagreement over the items,
    expected disagreement over every (item, item) combination of the two raters' scores."""
    weight = {(a, b): ((a - b) / 1.0) ** 2 for a in (0.0, 0.5, 1.0) for b in (0.0, 0.5, 1.0)}
    n = len(first)
    observed = sum(weight[a, b] for a, b in zip(first, second, strict=True)) / n
    expected = sum(weight[a, b] for a, b in itertools.product(first, second)) / (n * n)
    return 1 - observed / expected


def test_the_weighted_kappa_equals_its_pairwise_definition() -> None:
    first = [0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0, 1.0, 1.0]
    second = [0.0, 0.5, 0.5, 1.0, 0.5, 1.0, 0.0, 0.0, 1.0, 0.0]
    table = level_confusion(list(zip(first, second, strict=True)))
    assert table == [[2, 1, 0], [1, 1, 0], [1, 1, 3]]
    assert quadratic_weighted_kappa(table) == pytest.approx(pairwise_weighted_kappa(first, second), rel=1e-12)


def test_the_weighted_kappa_is_one_for_identical_scores_and_undefined_without_spread() -> None:
    scores = [0.0, 0.5, 1.0, 1.0]
    assert quadratic_weighted_kappa(level_confusion(list(zip(scores, scores, strict=True)))) == pytest.approx(1.0)
    assert quadratic_weighted_kappa(level_confusion([(1.0, 1.0)] * 5)) is None
    assert quadratic_weighted_kappa(level_confusion([])) is None
    with pytest.raises(ValueError, match=r"0\.7 is not one of the scores"):
        level_confusion([(0.7, 1.0)])


def test_the_bias_is_the_mean_difference_with_the_paired_t_interval() -> None:
    differences = [0.0, -0.5, 0.0, 0.5, -1.0, 0.0, 0.0, -0.5]
    bias = paired_bias(differences)
    mean, sd = statistics.fmean(differences), statistics.stdev(differences)
    half = 2.365 * sd / math.sqrt(len(differences))  # t(0.975, 7) from the table: 2.365
    assert bias.mean == pytest.approx(mean)
    assert bias.sd == pytest.approx(sd)
    assert bias.stderr == pytest.approx(sd / math.sqrt(8))
    assert bias.ci_low == pytest.approx(mean - half, abs=1e-3)
    assert bias.ci_high == pytest.approx(mean + half, abs=1e-3)


def test_the_bias_interval_needs_two_items_and_is_a_point_without_spread() -> None:
    assert paired_bias([]).to_json() == {"mean": None, "ci_low": None, "ci_high": None, "sd": None, "stderr": None}
    assert paired_bias([0.5]).to_json() == {"mean": 0.5, "ci_low": None, "ci_high": None, "sd": None, "stderr": None}
    same = paired_bias([-0.5, -0.5, -0.5])
    assert (same.mean, same.ci_low, same.ci_high, same.sd) == (-0.5, -0.5, -0.5, 0.0)


def wilson(hits: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_an_agreement_rate_carries_its_wilson_interval() -> None:
    for hits, n in ((9, 10), (10, 10), (0, 3), (61, 80)):
        share = rate(hits, n)
        assert share is not None
        low, high = wilson(hits, n)
        assert (share.rate, share.ci_low, share.ci_high) == pytest.approx((hits / n, low, high), abs=1e-12)
    assert rate(0, 0) is None


def test_the_figures_of_a_handful_of_pairs() -> None:
    pairs = [(1.0, 1.0), (1.0, 0.5), (0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (0.0, 1.0)]
    f = figures(pairs, threshold=0.5)
    assert f.items == 6
    assert f.exact_agreement is not None and f.exact_agreement.rate == pytest.approx(2 / 6)
    # Pass at >= 0.5: official P P F P P F, candidate P P F F F P -> same call on 3 of 6.
    assert f.pass_agreement is not None and f.pass_agreement.rate == pytest.approx(3 / 6)
    p_o, p_first, p_second = 3 / 6, 4 / 6, 3 / 6
    p_e = p_first * p_second + (1 - p_first) * (1 - p_second)
    assert f.kappa == pytest.approx((p_o - p_e) / (1 - p_e))
    assert f.confusion == ((1, 0, 1), (1, 0, 0), (1, 1, 1))
    assert f.official_mean == pytest.approx(3.5 / 6) and f.candidate_mean == pytest.approx(2.5 / 6)
    assert f.bias.mean == pytest.approx(-1 / 6)
    assert f.to_json()["confusion"] == {
        "0": {"0": 1, "0.5": 0, "1": 1},
        "0.5": {"0": 1, "0.5": 0, "1": 0},
        "1": {"0": 1, "0.5": 1, "1": 1},
    }


def test_the_template_revision_names_the_templates_not_their_order() -> None:
    one = template_revision({"1.1.1": "a", "2.5.1": "b"})
    assert one == template_revision({"2.5.1": "b", "1.1.1": "a"})
    assert one != template_revision({"1.1.1": "a", "2.5.1": "b "})
    assert one.startswith("sha256:") and len(one) == len("sha256:") + 16
