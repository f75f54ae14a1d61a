"""The statistics behind the experiment tables, on small result tables whose answers are known.

Every value that `simulate.summarize` / `write_report` put in summary.csv and tests.csv is
compared with an independent computation: scipy's paired t-test and Wilcoxon signed-rank
test called directly, numpy's trapezoid, hand-made curves (a > b by construction, ties, one
user, a user missing from a mode, a curve cut short), the Bonferroni factor of each family.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from trompa_mer.simulate import RESULT_COLUMNS, summarize, write_report

EXACT = dict(rel=1e-12, abs=1e-15)
# scipy warns about nearly identical samples in some constructed tables; the values are checked
pytestmark = [pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")]


def table(curves: dict, config="q4x2", update="batch", algorithm="committee", macro_scale=0.5,
          repeats=1, jitter=0.0) -> pd.DataFrame:
    """Result rows from {(mode, user): [f1 at iteration 0, 1, ...]}.

    macro F1 = weighted F1 * macro_scale. With repeats > 1, repeat r is the curve + (r - mid) *
    jitter, so the mean over repeats is the curve itself.
    """
    rows = []
    for (mode, user), curve in curves.items():
        for r in range(repeats):
            shift = (r - (repeats - 1) / 2) * jitter
            for iteration, value in enumerate(curve):
                rows.append({"user": user, "repeat": r, "mode": mode, "update": update, "config": config,
                             "queries": 4, "algorithm": algorithm, "iteration": iteration,
                             "n_annotations": 4 * iteration, "f1_weighted": value + shift,
                             "f1_macro": (value + shift) * macro_scale,
                             "n_Q1": 0, "n_Q2": 0, "n_Q3": 0, "n_Q4": 0, "n_pool": 70, "n_test": 13,
                             "n_test_crowd": 13})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def references(values: dict, mode: str, algorithm: str, repeats=1, jitter=0.0) -> pd.DataFrame:
    """Reference rows (mode crowd/own) from {user: F1}."""
    rows = []
    for user, value in values.items():
        for r in range(repeats):
            shift = (r - (repeats - 1) / 2) * jitter
            rows.append({"user": user, "repeat": r, "mode": mode, "update": "", "config": "", "queries": 0,
                         "algorithm": algorithm, "iteration": 0, "n_annotations": 0,
                         "f1_weighted": value + shift, "f1_macro": value + shift,
                         "n_Q1": 0, "n_Q2": 0, "n_Q3": 0, "n_Q4": 0, "n_pool": 70, "n_test": 13,
                         "n_test_crowd": 13})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def row(summary, **where):
    mask = np.ones(len(summary), dtype=bool)
    for key, value in where.items():
        mask &= (summary[key] == value).to_numpy()
    assert mask.sum() == 1, (where, mask.sum())
    return summary[mask].iloc[0]


def p_t(a, b):
    return stats.ttest_rel(a, b, alternative="greater").pvalue


def p_w(a, b):
    return stats.wilcoxon(a, b, alternative="greater").pvalue


# Six users, two modes. mc ends above rand for every user but by different amounts (so a
# paired test and an unpaired one disagree), curves of three iterations (0, 1, 2).
START = [0.20, 0.25, 0.30, 0.22, 0.28, 0.35]
MC = {u: [s, s + 0.05 + 0.01 * i, s + 0.10 + 0.03 * i] for i, (u, s) in enumerate(zip("abcdef", START))}
RAND = {u: [s, s + 0.02, s + 0.04 + 0.005 * (i % 3)] for i, (u, s) in enumerate(zip("abcdef", START))}
USERS = list("abcdef")


def two_modes(**kwargs):
    curves = {("mc", u): c for u, c in MC.items()}
    curves.update({("rand", u): c for u, c in RAND.items()})
    return table(curves, **kwargs)


def test_learning_curve_summary_against_hand_and_scipy():
    summary, _ = summarize(two_modes(macro_scale=0.5))
    assert len(summary) == 2
    r = row(summary, mode="mc", algorithm="committee", config="q4x2", update="batch")
    start = np.array([MC[u][0] for u in USERS])
    end = np.array([MC[u][-1] for u in USERS])
    # area under [x0, x1, x2] on [0, 1]: (x0/2 + x1 + x2/2) / 2
    auc = np.array([(MC[u][0] / 2 + MC[u][1] + MC[u][2] / 2) / 2 for u in USERS])
    assert r["n_users"] == 6
    assert r["f1_start_mean"] == pytest.approx(start.mean(), **EXACT)
    assert r["f1_start_sd"] == pytest.approx(np.std(start, ddof=1), **EXACT)
    assert r["f1_end_mean"] == pytest.approx(end.mean(), **EXACT)
    assert r["f1_end_sd"] == pytest.approx(np.std(end, ddof=1), **EXACT)
    assert r["f1_macro_start_mean"] == pytest.approx(0.5 * start.mean(), **EXACT)
    assert r["f1_macro_end_mean"] == pytest.approx(0.5 * end.mean(), **EXACT)
    assert r["auc_mean"] == pytest.approx(auc.mean(), **EXACT)
    assert r["auc_sd"] == pytest.approx(np.std(auc, ddof=1), **EXACT)
    assert r["n_positive_slope"] == 6
    assert r["p_end_gt_start_t"] == pytest.approx(p_t(end, start), **EXACT)
    assert r["p_end_gt_start_wilcoxon"] == pytest.approx(p_w(end, start), **EXACT)
    # six users all rising: the exact one-sided Wilcoxon p is 1/2^6
    assert r["p_end_gt_start_wilcoxon"] == pytest.approx(1 / 64, **EXACT)
    assert r["p_end_gt_start_t"] < 0.01
    # no reference rows: no crowd or own columns
    assert "crowd_mean" not in summary.columns and "own_mean" not in summary.columns


def test_mean_over_repeats_first():
    """Each user's curve is the mean over repeats; the sd is over users, not over repeats."""
    plain, _ = summarize(two_modes())
    repeated, _ = summarize(two_modes(repeats=3, jitter=0.05))
    for column in ("f1_start_mean", "f1_start_sd", "f1_end_mean", "f1_end_sd", "auc_mean", "p_end_gt_start_t"):
        assert repeated[column].to_numpy() == pytest.approx(plain[column].to_numpy(), rel=1e-9, abs=1e-12), column


def test_mode_comparison_direction_and_bonferroni():
    _, tests = summarize(two_modes())
    final_mc = np.array([MC[u][-1] for u in USERS])
    final_rand = np.array([RAND[u][-1] for u in USERS])
    mc_rand = row(tests, measure="f1_end", a="mc", b="rand")
    rand_mc = row(tests, measure="f1_end", a="rand", b="mc")
    assert mc_rand["mean_diff"] == pytest.approx((final_mc - final_rand).mean(), **EXACT) and mc_rand["mean_diff"] > 0
    assert rand_mc["mean_diff"] == pytest.approx(-mc_rand["mean_diff"], **EXACT)
    assert mc_rand["t"] == pytest.approx(stats.ttest_rel(final_mc, final_rand).statistic, **EXACT)
    assert mc_rand["p_t"] == pytest.approx(p_t(final_mc, final_rand), **EXACT)
    # paired, not independent samples: the unpaired p is far larger here
    assert stats.ttest_ind(final_mc, final_rand, alternative="greater").pvalue > 10 * mc_rand["p_t"]
    assert mc_rand["p_t"] < 0.002 and rand_mc["p_t"] > 0.998
    assert mc_rand["p_t"] + rand_mc["p_t"] == pytest.approx(1.0, abs=1e-12)
    # the one-sided statistic: the rank sum of the positive differences (all six: 21)
    assert mc_rand["wilcoxon"] == pytest.approx(stats.wilcoxon(final_mc, final_rand, alternative="greater").statistic,
                                                 **EXACT) == 21.0
    assert mc_rand["p_wilcoxon"] == pytest.approx(1 / 64, **EXACT)
    assert rand_mc["p_wilcoxon"] == pytest.approx(1.0, **EXACT)
    # two modes: a family of 2 ordered pairs
    assert mc_rand["p_t_bonferroni"] == pytest.approx(2 * mc_rand["p_t"], **EXACT)
    assert mc_rand["p_wilcoxon_bonferroni"] == pytest.approx(2 / 64, **EXACT)
    assert rand_mc["p_t_bonferroni"] == 1.0 and rand_mc["p_wilcoxon_bonferroni"] == 1.0
    # the same pair on the area under the curve
    auc = {m: np.array([(c[u][0] / 2 + c[u][1] + c[u][2] / 2) / 2 for u in USERS]) for m, c in (("mc", MC), ("rand", RAND))}
    on_auc = row(tests, measure="auc", a="mc", b="rand")
    assert on_auc["p_t"] == pytest.approx(p_t(auc["mc"], auc["rand"]), **EXACT)
    assert on_auc["mean_diff"] == pytest.approx((auc["mc"] - auc["rand"]).mean(), **EXACT)
    assert set(tests["measure"]) == {"f1_end", "auc"} and len(tests) == 4


def test_four_modes_correct_by_twelve():
    rng = np.random.default_rng(4)
    curves = {}
    for k, mode in enumerate(["mc", "hc", "mix", "rand"]):
        for u in USERS:
            curves[(mode, u)] = [0.2, 0.2 + 0.01 * k + rng.uniform(0, 0.02), 0.25 + 0.02 * k + rng.uniform(0, 0.04)]
    _, tests = summarize(table(curves))
    f1 = tests[tests["measure"] == "f1_end"]
    assert len(f1) == 12
    for _, r in f1.iterrows():
        a = np.array([curves[(r["a"], u)][-1] for u in USERS])
        b = np.array([curves[(r["b"], u)][-1] for u in USERS])
        assert r["p_t"] == pytest.approx(p_t(a, b), **EXACT)
        assert r["p_t_bonferroni"] == pytest.approx(min(1.0, 12 * r["p_t"]), **EXACT)
        assert r["p_wilcoxon"] == pytest.approx(p_w(a, b), **EXACT)
        assert r["p_wilcoxon_bonferroni"] == pytest.approx(min(1.0, 12 * r["p_wilcoxon"]), **EXACT)
    # rand rises most by construction: rand > mc is significant even after the factor of 12
    assert row(f1, a="rand", b="mc")["p_t_bonferroni"] < 0.05
    assert 0.0 < row(f1, a="rand", b="mc")["p_t_bonferroni"] < 1.0


def test_ties_and_a_single_user_give_no_verdict():
    """Identical samples: the t-test is undefined (NaN, docs/experiments.md "nan p-values are
    those exact ties"); scipy's Wilcoxon drops zero differences and answers p = 1 (not greater)."""
    same = {("mc", u): c for u, c in MC.items()}
    same.update({("rand", u): c for u, c in MC.items()})  # identical curves
    summary, tests = summarize(table(same))
    for _, r in tests.iterrows():
        for column in ("t", "p_t", "p_t_bonferroni"):
            assert math.isnan(r[column]), (column, r[column])
        assert r["p_wilcoxon"] == p_w(np.array(START), np.array(START)) == 1.0
        assert r["p_wilcoxon_bonferroni"] == 1.0
        assert r["mean_diff"] == 0.0
    flat = table({("mc", u): [0.3, 0.3, 0.3] for u in USERS})
    flat_summary, _ = summarize(flat)
    r = flat_summary.iloc[0]
    assert math.isnan(r["p_end_gt_start_t"]) and r["p_end_gt_start_wilcoxon"] == 1.0
    assert r["n_positive_slope"] == 0 and r["f1_end_sd"] == 0.0

    one = table({("mc", "a"): [0.2, 0.3, 0.4], ("rand", "a"): [0.2, 0.25, 0.3]})
    summary, tests = summarize(one)
    r = row(summary, mode="mc")
    assert r["n_users"] == 1 and r["f1_end_mean"] == pytest.approx(0.4, **EXACT)
    assert math.isnan(r["f1_end_sd"]) and math.isnan(r["f1_start_sd"]) and math.isnan(r["auc_sd"])
    assert math.isnan(r["p_end_gt_start_t"]) and math.isnan(r["p_end_gt_start_wilcoxon"])
    assert r["n_positive_slope"] == 1
    assert tests[["t", "p_t", "wilcoxon", "p_wilcoxon", "p_t_bonferroni", "p_wilcoxon_bonferroni"]].isna().all().all()
    # and for the update strategies' family
    both = pd.concat([one, table({("mc", "a"): [0.2, 0.3, 0.5], ("rand", "a"): [0.2, 0.2, 0.3]}, update="cumulative")],
                     ignore_index=True)
    _, tests = summarize(both)
    updates = tests[tests["update"].str.contains(">")]
    assert len(updates) == 4
    assert updates[["p_t", "p_t_bonferroni", "p_wilcoxon", "p_wilcoxon_bonferroni"]].isna().all().all()


def test_two_users_have_a_standard_deviation():
    summary, _ = summarize(table({("mc", "a"): [0.2, 0.4], ("mc", "b"): [0.3, 0.7]}))
    r = summary.iloc[0]
    assert r["f1_end_sd"] == pytest.approx(np.std([0.4, 0.7], ddof=1), **EXACT)
    assert r["f1_start_sd"] == pytest.approx(np.std([0.2, 0.3], ddof=1), **EXACT)
    assert r["n_positive_slope"] == 2  # two-point curves have a slope too


def test_another_metric_is_summarized_on_request():
    results = two_modes(macro_scale=0.5)
    weighted, _ = summarize(results)
    macro, _ = summarize(results, metric="f1_macro")
    np.testing.assert_allclose(macro["f1_end_mean"], 0.5 * weighted["f1_end_mean"], rtol=1e-12)
    np.testing.assert_allclose(macro["auc_mean"], 0.5 * weighted["auc_mean"], rtol=1e-12)
    from trompa_mer.simulate import per_user_curves

    curves = per_user_curves(results)  # weighted F1 by default
    assert curves.loc[("q4x2", "batch", "committee", "mc", "a")].tolist() == MC["a"]
    assert per_user_curves(results, "f1_macro").loc[("q4x2", "batch", "committee", "mc", "a")].tolist() == \
        pytest.approx([0.5 * v for v in MC["a"]], rel=1e-12)


def test_slopes_count_rising_users_only():
    curves = {("mc", "a"): [0.2, 0.3, 0.4],     # rising
              ("mc", "b"): [0.4, 0.3, 0.2],     # falling
              ("mc", "c"): [0.3, 0.1, 0.3],     # zero least-squares slope (polyfit: +5e-17)
              ("mc", "d"): [0.1, 0.5, 0.2],     # ends lower than its middle, slope > 0
              ("mc", "e"): [0.3, 0.3, 0.29],    # barely falling
              ("mc", "f"): [0.3, 0.3, 0.3],     # flat (polyfit: +3e-17)
              ("mc", "g"): [0.2, 0.2, 0.2 + 1e-6]}  # rising, a little
    summary, _ = summarize(table(curves))
    assert summary.iloc[0]["n_positive_slope"] == 3


def test_curves_cut_short_use_their_last_value_and_own_area():
    """A listener whose pool ran out stops early: the end is their last iteration, the area
    covers the iterations they have, and pairs use only users present in both modes."""
    curves = {("mc", u): c for u, c in MC.items()}
    curves[("mc", "A")] = [0.3, 0.5]  # two iterations only; sorts before the others
    curves.update({("rand", u): c for u, c in RAND.items()})  # A never ran in rand
    summary, tests = summarize(table(curves))
    r = row(summary, mode="mc")
    end = np.array([MC[u][-1] for u in USERS] + [0.5])
    auc = np.array([(MC[u][0] / 2 + MC[u][1] + MC[u][2] / 2) / 2 for u in USERS] + [0.4])
    assert r["n_users"] == 7
    assert r["f1_end_mean"] == pytest.approx(end.mean(), **EXACT)
    assert r["auc_mean"] == pytest.approx(auc.mean(), **EXACT)
    mc_rand = row(tests, measure="f1_end", a="mc", b="rand")
    final_rand = np.array([RAND[u][-1] for u in USERS])
    assert mc_rand["p_t"] == pytest.approx(p_t(end[:6], final_rand), **EXACT)
    assert mc_rand["mean_diff"] == pytest.approx((end[:6] - final_rand).mean(), **EXACT)
    on_auc = row(tests, measure="auc", a="mc", b="rand")
    auc_rand = np.array([(RAND[u][0] / 2 + RAND[u][1] + RAND[u][2] / 2) / 2 for u in USERS])
    assert on_auc["p_t"] == pytest.approx(p_t(auc[:6], auc_rand), **EXACT)
    assert on_auc["mean_diff"] == pytest.approx((auc[:6] - auc_rand).mean(), **EXACT)


def test_single_iteration_area_is_the_value():
    summary, _ = summarize(table({("mc", u): [0.1 * (i + 1)] for i, u in enumerate("abc")}))
    assert summary.iloc[0]["auc_mean"] == pytest.approx(0.2, **EXACT)
    assert summary.iloc[0]["f1_end_mean"] == pytest.approx(0.2, **EXACT)
    assert summary.iloc[0]["n_positive_slope"] == 0  # one point: no slope


def test_crowd_baseline_users_above_it_and_own_model():
    end = {u: MC[u][-1] for u in USERS}  # 0.30 0.38 0.46 0.41 0.50 0.60
    # a and e tie with the crowd (the same floats), b is below, c d f above
    crowd = {u: v for u, v in zip(USERS, [end["a"], 0.40, 0.40, 0.10, end["e"], 0.41])}
    own = {u: 0.1 * (i + 1) for i, u in enumerate(USERS)}
    results = pd.concat([two_modes(), references(crowd, "crowd", "crowd"),
                         references(own, "own", "committee", repeats=3, jitter=0.01),
                         references({u: 0.9 for u in USERS}, "own", "gnb"),
                         references({"zz": 0.0}, "own", "committee")], ignore_index=True)  # not in the block
    summary, _ = summarize(results)
    r = row(summary, mode="mc", algorithm="committee")
    c = np.array([crowd[u] for u in USERS])
    e = np.array([end[u] for u in USERS])
    assert r["crowd_mean"] == pytest.approx(c.mean(), **EXACT)
    # strictly above: the ties a and e do not count
    assert r["n_users_above_crowd"] == int((e > c).sum()) == 3
    assert r["p_end_gt_crowd_t"] == pytest.approx(p_t(e, c), **EXACT)
    assert r["p_end_gt_crowd_wilcoxon"] == pytest.approx(p_w(e, c), **EXACT)
    assert r["own_mean"] == pytest.approx(np.mean(list(own.values())), rel=1e-12)
    # the crowd baseline of a listener is their mean over repeats
    jittered, _ = summarize(pd.concat([two_modes(), references(crowd, "crowd", "crowd", repeats=3, jitter=0.02)],
                                      ignore_index=True))
    assert row(jittered, mode="mc")["crowd_mean"] == pytest.approx(c.mean(), rel=1e-12)
    assert r["f1_start_mean"] == pytest.approx(np.mean(START), **EXACT)  # references stay out of the curves


def test_crowd_baseline_only_for_the_listeners_of_the_block():
    """A listener with a crowd baseline but no curve in this block does not count."""
    crowd = {u: 0.3 for u in USERS}
    crowd["zz"] = 0.99
    summary, _ = summarize(pd.concat([two_modes(), references(crowd, "crowd", "crowd")], ignore_index=True))
    assert row(summary, mode="mc")["crowd_mean"] == pytest.approx(0.3, **EXACT)


def test_update_strategies_compared_per_mode_with_factor_two():
    batch = two_modes(update="batch")
    cumulative = table({("mc", u): [c[0], c[1], c[2] + 0.05 + 0.002 * i] for i, (u, c) in enumerate(MC.items())}
                       | {("rand", u): c for u, c in RAND.items()}, update="cumulative")
    _, tests = summarize(pd.concat([batch, cumulative], ignore_index=True))
    updates = tests[tests["update"].isin(["cumulative>batch", "batch>cumulative"])]
    assert len(updates) == 4  # 2 modes x 2 directions
    up = row(updates, update="cumulative>batch", measure="f1_end[mc]")
    down = row(updates, update="batch>cumulative", measure="f1_end[mc]")
    cum = np.array([MC[u][2] + 0.05 + 0.002 * i for i, u in enumerate(USERS)])
    bat = np.array([MC[u][2] for u in USERS])
    assert up["p_t"] == pytest.approx(p_t(cum, bat), **EXACT) and up["p_t"] < 1e-6
    assert (up["config"], up["algorithm"], up["a"], up["b"]) == ("q4x2", "committee", "cumulative", "batch")
    assert up["t"] == pytest.approx(stats.ttest_rel(cum, bat).statistic, **EXACT)
    assert up["wilcoxon"] == pytest.approx(stats.wilcoxon(cum, bat, alternative="greater").statistic, **EXACT)
    assert up["p_wilcoxon"] == pytest.approx(1 / 64, **EXACT)
    assert down["p_wilcoxon"] == pytest.approx(1.0, **EXACT) and down["p_wilcoxon_bonferroni"] == 1.0
    assert up["p_t_bonferroni"] == pytest.approx(2 * up["p_t"], **EXACT)
    assert up["p_wilcoxon_bonferroni"] == pytest.approx(2 / 64, **EXACT)
    assert down["p_t"] == pytest.approx(1 - up["p_t"], abs=1e-12) and down["p_t_bonferroni"] == 1.0
    assert up["mean_diff"] == pytest.approx((cum - bat).mean(), **EXACT)
    # identical rand curves under both updates: an exact tie, NaN
    assert row(updates, update="cumulative>batch", measure="f1_end[rand]")[["p_t", "p_t_bonferroni"]].isna().all()
    # the mode families are still per update strategy, factor 2 (two modes)
    fam = row(tests, update="cumulative", measure="f1_end", a="mc", b="rand")
    assert fam["p_t_bonferroni"] == pytest.approx(min(1.0, 2 * fam["p_t"]), **EXACT)


def test_crowd_member_against_the_audio_committee_uncorrected():
    committee = two_modes(algorithm="committee")
    crowd_curves = {("mc", u): [0.6, 0.62, 0.63 + 0.01 * i] for i, u in enumerate(USERS)}
    crowd_curves |= {("rand", u): [0.6, 0.61, 0.62 + 0.02 * i] for i, u in enumerate(USERS)}
    full_curves = {(m, u): [0.4, 0.5, 0.5 + 0.003 * i * (m == "mc")] for m in ("mc", "rand") for i, u in enumerate(USERS)}
    results = pd.concat([committee, table(crowd_curves, algorithm="crowd"), table(full_curves, algorithm="full")],
                        ignore_index=True)
    _, tests = summarize(results)
    pairs = tests[tests["algorithm"].str.contains(">")]
    assert set(pairs["algorithm"]) == {"crowd>committee", "full>committee", "full>crowd", "crowd>full"}
    assert len(pairs) == 8  # 4 pairs x 2 modes
    r = row(pairs, algorithm="crowd>committee", measure="f1_end[mc]")
    crowd_end = np.array([0.63 + 0.01 * i for i in range(6)])
    committee_end = np.array([MC[u][-1] for u in USERS])
    assert r["a"] == "crowd" and r["b"] == "committee" and r["config"] == "q4x2" and r["update"] == "batch"
    assert r["t"] == pytest.approx(stats.ttest_rel(crowd_end, committee_end).statistic, **EXACT)
    assert r["wilcoxon"] == pytest.approx(stats.wilcoxon(crowd_end, committee_end, alternative="greater").statistic,
                                          **EXACT)
    assert r["p_wilcoxon"] == pytest.approx(p_w(crowd_end, committee_end), **EXACT)
    assert r["p_t"] == pytest.approx(p_t(crowd_end, committee_end), **EXACT)
    assert r["p_t_bonferroni"] == r["p_t"] and r["p_wilcoxon_bonferroni"] == r["p_wilcoxon"]
    assert r["mean_diff"] == pytest.approx((crowd_end - committee_end).mean(), **EXACT)
    rev = row(pairs, algorithm="full>crowd", measure="f1_end[rand]")
    assert rev["p_t"] > 0.999 and rev["mean_diff"] < 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=2, max_value=9).flatmap(
    lambda n: st.tuples(st.lists(st.lists(st.floats(0, 1, allow_nan=False), min_size=4, max_size=4),
                                 min_size=n, max_size=n),
                        st.lists(st.lists(st.floats(0, 1, allow_nan=False), min_size=4, max_size=4),
                                 min_size=n, max_size=n))))
def test_paired_tests_match_scipy_on_any_curves(data):
    """Property: for any two modes' curves, every statistic equals scipy's / numpy's."""
    mc, rand = data
    users = [f"u{i}" for i in range(len(mc))]
    curves = {("mc", u): c for u, c in zip(users, mc)} | {("rand", u): c for u, c in zip(users, rand)}
    summary, tests = summarize(table(curves))
    a, b = np.array([c[-1] for c in mc]), np.array([c[-1] for c in rand])
    r = row(tests, measure="f1_end", a="mc", b="rand")
    with np.errstate(all="ignore"):
        expected = stats.ttest_rel(a, b, alternative="greater").pvalue
    if np.isnan(expected):
        assert np.isnan(r["p_t"]) and np.isnan(r["p_t_bonferroni"])
    else:
        assert r["p_t"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert r["p_t_bonferroni"] == pytest.approx(min(1.0, 2 * expected), rel=1e-9, abs=1e-12)
    s = row(summary, mode="mc")
    auc = np.array([np.trapezoid(c, dx=1 / 3) for c in mc])
    assert s["auc_mean"] == pytest.approx(auc.mean(), rel=1e-9, abs=1e-12)
    assert s["f1_end_mean"] == pytest.approx(a.mean(), rel=1e-9, abs=1e-12)


def test_write_report_files_hold_the_same_numbers(tmp_path):
    crowd = {u: 0.35 for u in USERS}
    results = pd.concat([two_modes(), references(crowd, "crowd", "crowd"),
                         references({u: 0.5 for u in USERS}, "own", "committee")], ignore_index=True)
    paths = write_report(results, tmp_path, plots=False)
    summary, tests = summarize(results)
    pd.testing.assert_frame_equal(pd.read_csv(paths["summary"]), summary, check_dtype=False, rtol=1e-12)
    pd.testing.assert_frame_equal(pd.read_csv(paths["tests"]), tests, check_dtype=False, rtol=1e-12)
    report = (tmp_path / "summary.md").read_text()
    assert "| crowd | crowd | 0.350 ± 0.000 | 0.350 |" in report
    assert "| own | committee | 0.500 ± 0.000 | 0.500 |" in report
    mc = row(summary, mode="mc")
    line = next(l for l in report.splitlines() if l.startswith("| q4x2 | batch | mc | committee |"))
    assert f"{mc['f1_start_mean']:.3f} ± {mc['f1_start_sd']:.3f}" in line
    assert f"| {mc['p_end_gt_start_t']:.3g} |" in line and line.endswith("| 5 |")  # users above 0.35
    # only tests with corrected p < .1 are listed, smallest first: mc > rand on f1_end and auc
    listed = [l for l in report.split("## Paired")[1].splitlines() if l.startswith("| q4x2")]
    shown = tests[tests["p_t_bonferroni"] < 0.1].sort_values("p_t_bonferroni")
    assert len(listed) == len(shown) == 2
    assert all(" | mc | rand | " in l for l in listed)
    assert f"{shown.iloc[0]['p_t_bonferroni']:.3g}" in listed[0]
