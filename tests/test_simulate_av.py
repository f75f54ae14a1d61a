"""The simulator with arousal/valence regression members (issue 14), on a generated population."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

from trompa_mer import simulate
from trompa_mer.errors import MERError
from trompa_mer.quadrants import quadrant_from_av
from trompa_mer.simulate import AV_METRICS, RESULT_COLUMNS, ExperimentConfig, FeatureTable, run_experiment
from trompa_mer.simulate.data import prepare_annotations

FAST = {"xgb-av": {"rounds": 10, "update_rounds": 2}, "xgb": {"rounds": 10, "update_rounds": 2}}


def population(seed=0, n_songs=200):
    """Song-level features; the crowd's arousal follows f0 and valence f1, mine the same with
    noise. Values continuous in -1..1, the quadrant theirs."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_songs, 4)).astype(np.float32)
    ids = np.array([f"s{i:03d}" for i in range(n_songs)])
    features = FeatureTable(ids, X, np.arange(n_songs + 1), [f"f{j}" for j in range(4)])
    rows = []
    for listener in ["c0", "c1", "c2", "me"]:
        songs = range(n_songs) if listener != "me" else range(140)
        for i in songs:
            a, v = np.clip(0.6 * X[i, :2] + rng.normal(0, 0.15, 2), -1, 1)
            rows.append((listener, ids[i], int(quadrant_from_av(a, v)), float(a), float(v)))
    return pd.DataFrame(rows, columns=["user", "song", "quadrant", "arousal", "valence"]), features


def test_av_scores_match_numpy_and_scipy_and_are_nan_where_undefined():
    rng = np.random.default_rng(1)
    truth, pred = rng.uniform(-1, 1, (20, 2)), rng.uniform(-1, 1, (20, 2))
    truth[3] = np.nan  # a test song whose listener gave only a quadrant
    scores = simulate.av_scores(truth, pred)
    keep = np.arange(20) != 3
    assert scores["rmse_arousal"] == pytest.approx(np.sqrt(np.mean((pred[keep, 0] - truth[keep, 0]) ** 2)))
    assert scores["tau_valence"] == pytest.approx(kendalltau(pred[keep, 1], truth[keep, 1]).statistic)
    # +-1 truth (TROMPA-MER's values): tau-b handles the ties
    signs = np.sign(truth[keep])
    assert simulate.av_scores(signs, pred[keep])["tau_arousal"] == pytest.approx(
        kendalltau(pred[keep, 0], signs[:, 0], variant="b").statistic)
    empty = simulate.av_scores(np.full((3, 2), np.nan), pred[:3])
    assert all(np.isnan(empty[m]) for m in AV_METRICS)
    constant = simulate.av_scores(np.ones((4, 2)), pred[:4])
    assert np.isnan(constant["tau_arousal"]) and constant["rmse_arousal"] > 0


def test_pretraining_targets_leave_the_user_out_and_keep_the_majority_quadrant():
    annotations, features = population()
    ann = prepare_annotations(annotations, values=True)
    labels = simulate.pretraining_labels(ann, "me", features)
    targets = simulate.pretraining_targets(ann, "me", labels)
    assert list(targets.index) == list(labels.index)
    assert not set(targets.index) & set(ann.loc[ann.user == "me", "song"]), "the user's songs are left out"
    song = targets.index[0]
    others = ann[(ann.song == song) & (ann.user != "me")]
    expected = others[["arousal", "valence"]].mean().to_numpy()
    if quadrant_from_av(*expected) == labels[song]:
        assert targets.loc[song].to_numpy() == pytest.approx(expected)
    assert np.array_equal(quadrant_from_av(targets.arousal, targets.valence), labels.to_numpy())
    # changing the user's own values changes nothing
    changed = ann.copy()
    changed.loc[changed.user == "me", ["arousal", "valence"]] = 0.99
    pd.testing.assert_frame_equal(simulate.pretraining_targets(changed, "me", labels), targets)


def test_mean_outside_the_majority_quadrant_moves_to_its_nearest_point():
    # three Q2 votes (a+ v-), two Q3 and two Q4 (a-): mean arousal -1/7 although Q2 is the majority
    votes = ["Q2"] * 3 + ["Q3"] * 2 + ["Q4"] * 2
    signs = {"Q2": (1, -1), "Q3": (-1, -1), "Q4": (-1, 1)}
    rows = [(f"u{i}", "x", int(q[1]) - 1, *signs[q]) for i, q in enumerate(votes)]
    rows += [("me", "y", 0, 1.0, 1.0)]
    ann = pd.DataFrame(rows, columns=["user", "song", "quadrant", "arousal", "valence"])
    features = FeatureTable(np.array(["x", "y"]), np.zeros((2, 1), np.float32), np.arange(3), ["f"])
    labels = simulate.pretraining_labels(ann, "me", features)
    assert labels.to_dict() == {"x": 1}
    targets = simulate.pretraining_targets(ann, "me", labels)
    assert targets.loc["x"].tolist() == pytest.approx([0.0, -3 / 7])
    assert quadrant_from_av(*targets.loc["x"]) == 1


def test_experiment_with_regression_members_reports_rmse_and_tau(tmp_path):
    annotations, features = population()
    config = ExperimentConfig(min_annotations=100, modes=["mc", "rand"], queries=[10], iterations=[3],
                              updates=["batch", "cumulative"], repeats=1, users=["me"],
                              algorithms=["gnb", "sgd-av", "xgb-av"], member_params=FAST)
    result = run_experiment(annotations, features, config, tmp_path / "run", progress=False, plots=False)
    assert result["complete"]
    table = pd.read_csv(tmp_path / "run" / "results.csv", dtype={"user": str})
    assert list(table.columns) == RESULT_COLUMNS + AV_METRICS
    sims = table[~table["mode"].isin(["crowd", "own"])]
    assert set(sims["algorithm"]) == {"gnb", "sgd-av", "xgb-av", "committee"}
    regressors = sims[sims["algorithm"] != "gnb"]
    assert regressors[AV_METRICS].notna().all().all()
    assert sims.loc[sims["algorithm"] == "gnb", AV_METRICS].isna().all().all()
    assert (regressors[["tau_arousal", "tau_valence"]] > 0.3).all().all(), "the crowd's rule is the user's"
    assert (regressors[["rmse_arousal", "rmse_valence"]] < 0.6).all().all()
    own = table[(table["mode"] == "own") & (table["algorithm"] != "gnb")]
    assert set(own["algorithm"]) == {"sgd-av", "xgb-av", "committee"} and own[AV_METRICS].notna().all().all()
    summary = pd.read_csv(tmp_path / "run" / "summary.csv")
    rows = summary[summary["algorithm"] == "xgb-av"]
    assert rows["rmse_arousal_end_mean"].notna().all() and rows["tau_valence_start_mean"].notna().all()
    assert summary.loc[summary["algorithm"] == "gnb", "rmse_arousal_end_mean"].isna().all()
    assert "## Arousal/valence of the regression members" in (tmp_path / "run" / "summary.md").read_text()


def test_without_regression_members_the_columns_are_as_before(tmp_path):
    annotations, features = population()
    config = ExperimentConfig(min_annotations=100, modes=["rand"], queries=[10], iterations=[1],
                              repeats=1, users=["me"], algorithms=["gnb"])
    run_experiment(annotations, features, config, tmp_path / "run", progress=False, plots=False)
    table = pd.read_csv(tmp_path / "run" / "results.csv")
    assert list(table.columns) == RESULT_COLUMNS
    assert "rmse" not in (tmp_path / "run" / "summary.md").read_text()


def test_quadrant_only_annotations_cannot_pretrain_a_regressor(tmp_path):
    annotations, features = population()
    annotations = annotations.drop(columns=["arousal", "valence"])
    config = ExperimentConfig(min_annotations=100, modes=["rand"], queries=[10], iterations=[1],
                              repeats=1, users=["me"], algorithms=["sgd-av"])
    with pytest.raises(MERError, match="arousal/valence"):
        run_experiment(annotations, features, config, tmp_path / "run", progress=False, plots=False)


def test_unknown_algorithm_is_refused():
    with pytest.raises(MERError, match="algorithms"):
        ExperimentConfig(algorithms=["ridge-av"]).validate()


def test_report_plots_rmse_and_tau_curves_of_the_regressors_only(tmp_path):
    from trompa_mer.simulate import write_report

    annotations, features = population()
    config = ExperimentConfig(min_annotations=100, modes=["rand"], queries=[10], iterations=[2],
                              repeats=1, users=["me"], algorithms=["gnb", "sgd-av"], member_params=FAST)
    run_experiment(annotations, features, config, tmp_path / "run", progress=False, plots=False)
    table = pd.read_csv(tmp_path / "run" / "results.csv", dtype={"user": str})
    written = {Path(p).name for p in write_report(table, tmp_path / "report")["plots"]}
    assert {"learning_curves_gnb.png", "learning_curves_sgd-av.png", "rmse_arousal_curves_sgd-av.png",
            "tau_valence_curves_committee.png"} <= written
    assert not any(name.startswith(("rmse", "tau")) and name.endswith("_gnb.png") for name in written)
