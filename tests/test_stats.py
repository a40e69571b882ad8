"""The error-bar formulas of issue #18, against hand-computed values and independent computations."""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

import pytest

from airbench_plugin.stats import (
    clustered_stderr,
    correlation,
    half_width,
    n_effective,
    paired_difference,
    prompts_for,
    rate_estimate,
    resolution_text,
    wilson_interval,
    z_value,
)
from tests.helpers import reference_error_bar

Z95 = 1.959963984540054


def test_z_value_is_the_two_sided_normal_quantile() -> None:
    assert z_value(0.95) == pytest.approx(Z95, abs=1e-12)
    assert z_value(0.90) == pytest.approx(1.6448536, abs=1e-6)
    assert z_value(0.99) == pytest.approx(2.5758293, abs=1e-6)
    for bad in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(ValueError):
            z_value(bad)


def test_plain_stderr_within_one_cluster_by_hand() -> None:
    # m = 0.625; squared deviations 0.140625 + 0.140625 + 0.390625 + 0.015625 = 0.6875; / (4 * 3)
    assert clustered_stderr([1, 1, 0, 0.5], ["1.1.1"] * 4) == pytest.approx(math.sqrt(0.6875 / 12), abs=1e-12)
    assert math.sqrt(0.6875 / 12) == pytest.approx(0.2393568, abs=1e-7)


def test_plain_stderr_equals_the_sample_standard_deviation_over_root_n() -> None:
    scores = [1, 0, 0.5, 1, 1, 0, 1, 0.5, 1]
    expected = statistics.stdev(scores) / math.sqrt(len(scores))
    assert clustered_stderr(scores, ["x"] * len(scores)) == pytest.approx(expected, rel=1e-12)


def test_clustered_stderr_by_hand() -> None:
    # m = 0.5; cluster sums of deviations +1 and -1; sqrt(2 / 1 * 2) / 4 = 0.5
    assert clustered_stderr([1, 1, 0, 0], ["a", "a", "b", "b"]) == pytest.approx(0.5, abs=1e-12)
    # Each cluster's mean is the overall mean: the clusters do not vary, so SE = 0.
    assert clustered_stderr([1, 0, 1, 0], ["a", "a", "b", "b"]) == 0.0


def test_clustered_stderr_with_singleton_clusters_is_the_plain_one() -> None:
    scores = [1, 0, 0.5, 1, 1, 0]
    singletons = [str(i) for i in range(len(scores))]
    assert clustered_stderr(scores, singletons) == pytest.approx(clustered_stderr(scores, ["one"] * 6), rel=1e-12)


def test_clustered_stderr_with_equal_clusters_is_the_stderr_of_cluster_means() -> None:
    rng = random.Random(18)
    scores = [rng.choice((0.0, 0.5, 1.0)) for _ in range(6 * 7)]
    clusters = [f"c{i // 7}" for i in range(len(scores))]
    means = [statistics.fmean(scores[i : i + 7]) for i in range(0, len(scores), 7)]
    expected = statistics.stdev(means) / math.sqrt(len(means))
    assert clustered_stderr(scores, clusters) == pytest.approx(expected, rel=1e-12)


def test_clustered_stderr_agrees_with_a_cluster_bootstrap() -> None:
    # Clusters of unequal size with their own rates: the bootstrap over clusters (seeded, so the
    # figure is fixed) lands within a few per cent of the formula times sqrt((C-1)/C).
    rng = random.Random(2411)
    groups = [
        [1.0 if rng.random() < p else 0.0 for _ in range(size)]
        for p, size in ((0.9, 18), (0.2, 12), (0.6, 20), (0.5, 15), (0.95, 18), (0.1, 9), (0.7, 18), (0.4, 16))
    ]
    scores = [s for group in groups for s in group]
    clusters = [str(i) for i, group in enumerate(groups) for _ in group]
    boot = random.Random(0)
    means = []
    for _ in range(4000):
        picked = [groups[boot.randrange(len(groups))] for _ in groups]
        flat = [s for group in picked for s in group]
        means.append(statistics.fmean(flat))
    c = len(groups)
    formula = clustered_stderr(scores, clusters)
    assert formula is not None
    assert statistics.stdev(means) == pytest.approx(formula * math.sqrt((c - 1) / c), rel=0.08)


def test_rate_estimates_agree_with_a_computation_apart() -> None:
    # tests.helpers.reference_error_bar: the variance from cluster means, Wilson from its quadratic.
    rng = random.Random(20)
    for _ in range(200):
        n = rng.randint(2, 40)
        results: list[dict[str, Any]] = [
            {"cate_idx": f"1.1.{rng.randint(1, 5)}", "score": rng.choice((0.0, 0.5, 1.0)), "outcome": "passed"}
            for _ in range(n)
        ]
        estimate = rate_estimate([r["score"] for r in results], [r["cate_idx"] for r in results], Z95)
        assert estimate is not None
        stderr, low, high = reference_error_bar(results)
        assert (estimate.stderr, estimate.ci_low, estimate.ci_high) == pytest.approx((stderr, low, high), abs=1e-9)


def test_no_stderr_below_two_scores() -> None:
    assert clustered_stderr([1.0], ["a"]) is None
    assert clustered_stderr([], []) is None
    with pytest.raises(ValueError):
        clustered_stderr([1.0, 0.0], ["a"])


def test_all_equal_rows_have_zero_stderr() -> None:
    assert clustered_stderr([1, 1, 1], ["a", "b", "c"]) == 0.0
    assert clustered_stderr([0.5, 0.5, 0.5], ["a", "a", "a"]) == 0.0


def test_n_effective() -> None:
    assert n_effective(0.5, 4, 0.5) == pytest.approx(1.0)  # 0.25 / 0.25
    assert n_effective(0.5, 4, 0.1) == 4.0  # 25 capped at n
    assert n_effective(1.0, 5, 0.0) == 5.0
    assert n_effective(1.0, 1, None) == 1.0


def test_wilson_five_of_five_is_not_a_point() -> None:
    # center = (1 + z²/10) / (1 + z²/5) = 0.782759; half = z / (1 + z²/5) * sqrt(z²/100) = 0.217241
    low, high = wilson_interval(1.0, 5, Z95)
    assert low == pytest.approx(0.565518, abs=1e-6)
    assert high == pytest.approx(1.0, abs=1e-12)
    low, high = wilson_interval(0.0, 5, Z95)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(0.434482, abs=1e-6)


def test_wilson_by_hand_at_0775_of_80() -> None:
    # z²/n = 0.048018; center = 0.762399; half = 1.870163 * sqrt(0.0021797 + 0.0001501) = 0.090268
    low, high = wilson_interval(0.775, 80, Z95)
    assert low == pytest.approx(0.672131, abs=1e-5)
    assert high == pytest.approx(0.852667, abs=1e-5)


@pytest.mark.parametrize(("mean", "n"), [(0.775, 80), (0.5, 5), (0.1, 12.5), (0.9, 3), (0.5, 1)])
def test_wilson_bounds_solve_the_score_test(mean: float, n: float) -> None:
    # Independent of the closed form: Wilson's bounds are the p where |m - p| = z sqrt(p (1 - p) / n).
    for p in wilson_interval(mean, n, Z95):
        assert abs(mean - p) == pytest.approx(Z95 * math.sqrt(p * (1 - p) / n), abs=1e-9)


def test_rate_estimate_of_five_refusals_clustered_in_one_category() -> None:
    estimate = rate_estimate([1, 1, 1, 1, 1], ["1.1.1"] * 5, Z95)
    assert estimate is not None
    assert (estimate.mean, estimate.n, estimate.stderr, estimate.n_effective) == (1.0, 5, 0.0, 5.0)
    assert estimate.ci_low == pytest.approx(0.565518, abs=1e-6)
    assert rate_estimate([], [], Z95) is None


def test_rate_estimate_of_one_prompt_has_no_stderr_but_an_interval() -> None:
    estimate = rate_estimate([0.5], ["2.1.1"], Z95)
    assert estimate is not None
    assert estimate.stderr is None and estimate.n_effective == 1.0
    assert estimate.ci_low < 0.5 < estimate.ci_high


def test_rate_estimate_uses_the_clustered_effective_size() -> None:
    # SE 0.5 at m 0.5: n_eff = 1, so the interval is Wilson's on one prompt.
    estimate = rate_estimate([1, 1, 0, 0], ["a", "a", "b", "b"], Z95)
    assert estimate is not None
    assert estimate.n_effective == pytest.approx(1.0)
    assert (estimate.ci_low, estimate.ci_high) == pytest.approx(wilson_interval(0.5, 1.0, Z95))


def test_resolution_and_planning() -> None:
    # The header's example: 80 prompts resolve ±11 points overall, 5 prompts ±33 points.
    assert round(half_width(80, Z95) * 100) == 11
    assert round(half_width(5, Z95) * 100) == 33
    for target in (0.01, 0.02, 0.03, 0.05):
        n = prompts_for(target, Z95)
        assert half_width(n, Z95) <= target < half_width(n - 1, Z95)
    assert prompts_for(0.05, Z95) == 381  # (z / 0.1)² - z² = 384.15 - 3.84 = 380.3, rounded up


def test_paired_difference_by_hand() -> None:
    # d = [1, 0, 1, 0]: mean 0.5, SE sqrt(1 / 12) = 0.288675 (one cluster: the plain formula)
    diff = paired_difference([1, 1, 1, 0], [0, 1, 0, 0], ["1.1.1"] * 4, Z95)
    se = math.sqrt(1 / 12)
    assert diff.shared == 4
    assert diff.mean == pytest.approx(0.5)
    assert diff.stderr == pytest.approx(se)
    assert diff.ci_low == pytest.approx(0.5 - Z95 * se)
    assert diff.ci_high == 1.0  # 0.5 + z SE = 1.066, but a difference of two rates is at most 1
    assert diff.p_value == pytest.approx(0.083265, abs=1e-6)  # 2 (1 - Φ(sqrt 3))
    assert diff.correlation == pytest.approx(1 / 3)  # 0.25 / sqrt(0.75 * 0.75)
    assert diff.min_detectable_drop == pytest.approx((Z95 + 0.8416212) * se, rel=1e-6)
    assert not diff.significant()


def test_paired_difference_clusters_the_differences() -> None:
    now, base, clusters = [1, 1, 0, 0], [0, 0, 0, 0], ["a", "a", "b", "b"]
    diff = paired_difference(now, base, clusters, Z95)
    assert diff.stderr == pytest.approx(clustered_stderr([1, 1, 0, 0], clusters))
    assert diff.correlation is None  # the baseline is constant


def test_paired_difference_edge_cases() -> None:
    assert paired_difference([], [], [], Z95).to_json() == {
        "shared": 0,
        "mean": None,
        "stderr": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "correlation": None,
        "min_detectable_drop": None,
    }
    one = paired_difference([0.0], [1.0], ["a"], Z95)
    assert (one.shared, one.mean, one.stderr, one.p_value) == (1, -1.0, None, None)
    same = paired_difference([1, 0, 0.5], [1, 0, 0.5], ["a", "b", "c"], Z95)
    assert (same.mean, same.stderr, same.p_value, same.ci_low, same.ci_high) == (0.0, 0.0, 1.0, 0.0, 0.0)
    assert same.correlation == pytest.approx(1.0)
    shifted = paired_difference([0, 0, 0], [1, 1, 1], ["a", "b", "c"], Z95)
    assert (shifted.p_value, shifted.significant()) == (0.0, True)


def test_correlation_is_pearsons() -> None:
    assert correlation([1, 0, 1], [1, 0, 1]) == pytest.approx(1.0)
    assert correlation([1, 0], [0, 1]) == pytest.approx(-1.0)
    assert correlation([1], [1]) is None
    assert correlation([1, 1], [0, 1]) is None


def test_the_headers_resolution_line() -> None:
    assert resolution_text(80, [5] * 16, 0.95) == "80 prompts: overall ±11 points, level-2 ±33 points at 95 %"
    # Sampled by level-3, level-2 categories differ in size: the range, narrowest first.
    assert (
        resolution_text(300, [10, 40, 100], 0.95) == "300 prompts: overall ±6 points, level-2 ±10 to ±26 points at 95 %"
    )
    assert resolution_text(80, [5] * 16, 0.9) == "80 prompts: overall ±9 points, level-2 ±30 points at 90 %"
    assert resolution_text(1, [1], 0.95) == "1 prompt: overall ±45 points, level-2 ±45 points at 95 %"
    assert resolution_text(0, [], 0.95) == "0 prompts: nothing to resolve at 95 %"
