"""trompa_mer.metrics: hand-computed values on tiny arrays, scipy/sklearn on random data,
undefined cases, refusals, and the per-song aggregation of dynamic metrics."""
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import mean_squared_error, r2_score

from trompa_mer import metrics
from trompa_mer.errors import MERError

T = [1.0, 2.0, 3.0, 4.0]
P = [2.0, 2.0, 3.0, 5.0]


def test_hand_computed_values():
    # errors -1, 0, 0, -1: mean square 0.5
    assert metrics.rmse(T, P) == pytest.approx(math.sqrt(0.5))
    # SS_tot = 2.25 + .25 + .25 + 2.25 = 5, SS_res = 2
    assert metrics.r2(T, P) == pytest.approx(0.6)
    # deviations (-1.5, -.5, .5, 1.5) and (-1, -1, 0, 2): sum of products 5, squares 5 and 6
    assert metrics.pearson_r(T, P) == pytest.approx(5 / math.sqrt(30))
    # population: var_t 1.25, var_p 1.5, cov 1.25, (2.5 - 3)^2 = .25 -> 2.5 / 3
    assert metrics.ccc(T, P) == pytest.approx(2.5 / 3)
    # 6 pairs, 5 concordant, 0 discordant, 1 tied in y_pred only: 5 / sqrt(6 * 5)
    assert metrics.kendall_tau(T, P) == pytest.approx(5 / math.sqrt(30))
    # 1 concordant pair, 2 discordant
    assert metrics.kendall_tau([1, 2, 3], [3, 1, 2]) == pytest.approx(-1 / 3)


def test_perfect_and_shifted_predictions():
    assert metrics.rmse(T, T) == 0 and metrics.r2(T, T) == 1 and metrics.ccc(T, T) == pytest.approx(1)
    shifted = np.add(T, 1.0)
    # a shift keeps the correlations at 1 but costs concordance: 2 * 1.25 / (2.5 + 1)
    assert metrics.pearson_r(T, shifted) == pytest.approx(1)
    assert metrics.kendall_tau(T, shifted) == pytest.approx(1)
    assert metrics.ccc(T, shifted) == pytest.approx(2.5 / 3.5)


@pytest.mark.parametrize("seed", range(5))
def test_against_scipy_and_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    t = rng.normal(size=n)
    p = 0.6 * t + rng.normal(scale=0.8, size=n)
    if seed == 4:  # ties on both sides: tau-b's correction matters
        t, p = np.round(t), np.round(p)
    assert metrics.rmse(t, p) == pytest.approx(math.sqrt(mean_squared_error(t, p)), rel=1e-12)
    assert metrics.r2(t, p) == pytest.approx(r2_score(t, p), rel=1e-12)
    assert metrics.pearson_r(t, p) == pytest.approx(stats.pearsonr(t, p).statistic, rel=1e-10)
    assert metrics.kendall_tau(t, p) == pytest.approx(stats.kendalltau(t, p).statistic, rel=1e-10)
    expected_ccc = 2 * np.cov(t, p, bias=True)[0, 1] / (t.var() + p.var() + (t.mean() - p.mean()) ** 2)
    assert metrics.ccc(t, p) == pytest.approx(expected_ccc, rel=1e-12)


def test_undefined_cases_are_nan():
    assert metrics.rmse([1.0], [2.0]) == 1.0          # rmse is defined for one point
    for name in ("r2", "pearson_r", "kendall_tau", "ccc"):
        assert math.isnan(metrics.METRICS[name]([1.0], [2.0])), name
    assert math.isnan(metrics.r2([1, 1, 1], [1, 2, 3]))          # constant truth
    assert math.isnan(metrics.pearson_r([1, 2, 3], [5, 5, 5]))   # constant prediction
    assert math.isnan(metrics.kendall_tau([1, 1, 1], [1, 2, 3]))
    assert math.isnan(metrics.ccc([2, 2, 2], [2, 2, 2]))         # 0 / 0
    assert metrics.ccc([2, 2, 2], [3, 3, 3]) == 0.0              # constant but apart: 0 / 1
    assert metrics.r2([1, 2, 3], [5, 5, 5]) < 0                  # a constant prediction is fine


@pytest.mark.parametrize("t, p, message", [
    ([1, 2, 3], [1, 2], "y_true has 3 values, y_pred 2"),
    ([1, np.nan, 3], [1, 2, 3], r"y_true\[1\] is nan"),
    ([1, 2, 3], [1, 2, np.inf], r"y_pred\[2\] is inf"),
    ([], [], "no values"),
    ([[1, 2]], [[1, 2]], "must be 1-D"),
])
def test_bad_inputs_refused(t, p, message):
    for function in metrics.METRICS.values():
        with pytest.raises(MERError, match=message):
            function(t, p)


def test_per_song_aggregates_over_songs_and_counts_exclusions():
    songs = np.array(["a"] * 4 + ["b"] * 3 + ["c"] * 1 + ["d"] * 3)
    t = np.array(T + [1, 2, 3] + [0.5] + [1, 1, 1])
    p = np.array(P + [3, 2, 1] + [0.5] + [0, 1, 2])
    result = metrics.per_song("pearson_r", t, p, songs)
    # a: 5/sqrt(30), b: -1; c: one point; d: constant truth
    values = [5 / math.sqrt(30), -1.0]
    assert result["songs"] == 2 and result["excluded"] == 2
    assert result["mean"] == pytest.approx(np.mean(values))
    assert result["sd"] == pytest.approx(np.std(values))
    rmse = metrics.per_song(metrics.rmse, t, p, songs)
    # rmse is defined on song d (constant truth) but song c has fewer than 2 rows
    assert rmse["songs"] == 3 and rmse["excluded"] == 1
    assert rmse["mean"] == pytest.approx(np.mean([math.sqrt(0.5), math.sqrt(8 / 3), math.sqrt(2 / 3)]))
    # rows of a song need not be contiguous
    shuffle = np.random.default_rng(0).permutation(len(t))
    again = metrics.per_song("pearson_r", t[shuffle], p[shuffle], songs[shuffle])
    assert again["mean"] == pytest.approx(result["mean"]) and again["songs"] == 2


def test_per_song_with_no_scorable_song():
    result = metrics.per_song("ccc", [1.0, 2.0], [1.0, 2.0], ["a", "b"])
    assert result["songs"] == 0 and result["excluded"] == 2 and math.isnan(result["mean"])


def test_per_song_refusals():
    with pytest.raises(MERError, match="song_of_row has 2 values for 3 rows"):
        metrics.per_song("rmse", [1, 2, 3], [1, 2, 3], ["a", "a"])
    with pytest.raises(MERError, match="metric: expected one of rmse, r2"):
        metrics.per_song("mae", [1, 2], [1, 2], ["a", "a"])


def test_regression_scores_table():
    rng = np.random.default_rng(3)
    t = rng.uniform(-1, 1, size=(30, 2))
    p = t + rng.normal(scale=0.3, size=(30, 2))
    table = metrics.regression_scores(t, p)
    assert list(table) == ["arousal", "valence"]
    assert list(table["arousal"]) == ["rmse", "r2", "pearson_r", "kendall_tau", "ccc"]
    assert table["valence"]["r2"] == pytest.approx(r2_score(t[:, 1], p[:, 1]))
    assert table["arousal"]["rmse"] == pytest.approx(metrics.rmse(t[:, 0], p[:, 0]))
    with pytest.raises(MERError, match=r"y_pred_av has shape \(30,\)"):
        metrics.regression_scores(t, p[:, 0])
    with pytest.raises(MERError, match="y_true_av has 30 rows, y_pred_av 29"):
        metrics.regression_scores(t, p[:29])
    with pytest.raises(MERError, match="finite"):
        metrics.regression_scores(t, np.where(p > 0.9, np.nan, p))


def test_dynamic_scores_table():
    rng = np.random.default_rng(4)
    songs = np.repeat(np.arange(5), 8)
    t = rng.uniform(-1, 1, size=(40, 2))
    p = t + rng.normal(scale=0.2, size=(40, 2))
    table = metrics.dynamic_scores(t, p, songs)
    assert table["valence"]["ccc"] == metrics.per_song("ccc", t[:, 1], p[:, 1], songs)
    assert table["arousal"]["rmse"]["songs"] == 5 and table["arousal"]["rmse"]["excluded"] == 0
