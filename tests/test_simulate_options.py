"""Options the simulator accepts, each shown to change what it does.

--balanced on a committee whose uncertainty sits in one quadrant (unbalanced mc asks only that
quadrant, balanced asks q/4 of each); the script's flags reach the run's settings and its
outputs (run.json, the result table, plots); the eligibility bounds at their edges; test size,
repeats, seed, configurations, updates and algorithms as the result table shows them.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from trompa_mer import simulate
from trompa_mer.committee import Committee
from trompa_mer.simulate import ExperimentConfig, FeatureTable, run_experiment
from test_simulate import FAST_MEMBERS, deviant_population

N_SONGS = 80


class OneQuadrantDoubt:
    """Predicts feature 0 (the quadrant) for every song; sure of Q2-Q4, nearly uniform on Q1,
    where feature 1 orders the doubt. Updates change nothing, so every round sees the same."""

    algorithm = "gnb"
    input_kind = "features"
    target_kind = "quadrant"
    margin_cacheable = False

    def copy(self):
        return copy.deepcopy(self)

    def predict_proba(self, X):
        X = np.asarray(X, dtype=float)
        q = X[:, 0].astype(int)
        sure = np.full((len(X), 4), 0.1 / 3)
        sure[np.arange(len(X)), q] = 0.9
        doubt = np.full((len(X), 4), 0.24)
        doubt[:, 0] = 0.28 - 0.01 * X[:, 1]  # still predicted Q1, entropy close to ln 4
        return np.where((q == 0)[:, None], doubt, sure)

    def update(self, X, y):
        return self


def _unscaled(members, features) -> Committee:
    """A committee of fake members whose scaler leaves the features as they are."""
    from sklearn.preprocessing import StandardScaler

    identity = StandardScaler(with_mean=False, with_std=False).fit(features.X)
    return Committee(members, identity, features.feature_names)


def _doubt_setup():
    rng = np.random.default_rng(0)
    quadrant = np.arange(N_SONGS) % 4
    X = np.column_stack([quadrant, rng.random(N_SONGS)]).astype(np.float32)
    ids = np.array([f"s{i:03d}" for i in range(N_SONGS)])
    features = FeatureTable(ids, X, np.arange(N_SONGS + 1), ["quadrant", "doubt"])
    rows = [("me", s, int(q)) for s, q in zip(ids, quadrant)]
    rows += [("other", s, int((q + 1) % 4)) for s, q in zip(ids, quadrant)]
    return pd.DataFrame(rows, columns=["user", "song", "quadrant"]), features


def _first_round_counts(tmp_path, balanced, mode="mc", q=8):
    annotations, features = _doubt_setup()
    committee = _unscaled([("gnb_0", OneQuadrantDoubt())], features)
    config = ExperimentConfig(min_annotations=50, modes=[mode], balanced=balanced, queries=[q], iterations=[2],
                              updates=["batch"], repeats=1, algorithms=["gnb"], users=["me"])
    run_experiment(annotations, features, config, tmp_path / f"{mode}-{balanced}", committee=committee,
                   progress=False, plots=False)
    table = simulate.read_results(tmp_path / f"{mode}-{balanced}")
    rows = table[(table["mode"] == mode) & (table["algorithm"] == "committee")].set_index("iteration")
    return rows[simulate.COUNT_COLUMNS]


def test_balanced_asks_each_predicted_quadrant(tmp_path):
    plain = _first_round_counts(tmp_path, balanced=False)
    balanced = _first_round_counts(tmp_path, balanced=True)
    # the listener's labels are the predicted quadrants, so the counts show the predictions
    assert plain.loc[1].tolist() == [8, 0, 0, 0] and plain.loc[2].tolist() == [16, 0, 0, 0]
    assert balanced.loc[1].tolist() == [2, 2, 2, 2] and balanced.loc[2].tolist() == [4, 4, 4, 4]
    assert plain.loc[0].tolist() == balanced.loc[0].tolist() == [0, 0, 0, 0]


def test_balanced_rounds_up_per_quadrant_and_fills_from_the_ranking(tmp_path):
    # q = 6: ceil(6/4) = 2 per quadrant, taken in ranking order: Q1 first (the doubt), then the
    # most doubtful of the sure songs
    balanced = _first_round_counts(tmp_path, balanced=True, q=6)
    assert balanced.loc[1].sum() == 6 and balanced.loc[1]["n_Q1"] == 2
    assert balanced.loc[1].max() == 2


def test_balanced_also_applies_to_random_queries(tmp_path):
    plain = _first_round_counts(tmp_path, balanced=False, mode="rand", q=12)
    balanced = _first_round_counts(tmp_path, balanced=True, mode="rand", q=12)
    assert balanced.loc[1].tolist() == [3, 3, 3, 3]
    assert plain.loc[1].tolist() != [3, 3, 3, 3]


def test_eligibility_bounds_are_inclusive():
    annotations, features = deviant_population()  # "me": 180 songs, crowd listeners: 260 each
    table = simulate.prepare_annotations(annotations)
    assert simulate.eligible_users(table, features, 180) == ["crowd0", "crowd1", "crowd2", "me"]
    assert simulate.eligible_users(table, features, 181) == ["crowd0", "crowd1", "crowd2"]
    assert simulate.eligible_users(table, features, 100, 180) == ["me"]
    assert simulate.eligible_users(table, features, 100, 179) == []
    assert simulate.eligible_users(table, features, 100, 260) == ["crowd0", "crowd1", "crowd2", "me"]
    # songs without features do not count
    fewer = FeatureTable(features.song_ids[:150], features.X[:150], np.arange(151), features.feature_names)
    assert simulate.eligible_users(table, fewer, 150) == ["crowd0", "crowd1", "crowd2", "me"]
    assert simulate.eligible_users(table, fewer, 151) == []


def test_test_size_repeats_seed_and_configurations_shape_the_results(tmp_path):
    annotations, features = deviant_population(seed=3)

    def run(name, **changes):
        options = dict(min_annotations=100, modes=["rand"], queries=[5, 7], iterations=[2, 1], updates=["batch"],
                       repeats=2, test_size=0.3, seed=11, algorithms=["gnb"], users=["me"])
        options.update(changes)
        run_experiment(annotations, features, ExperimentConfig(**options), tmp_path / name, progress=False,
                       plots=False)
        return simulate.read_results(tmp_path / name)

    table = run("a")
    sims = table[table["mode"] == "rand"]
    assert sorted(sims["repeat"].unique()) == [0, 1]
    assert set(sims["n_test"]) == {54} and set(sims["n_pool"]) == {126}  # 180 songs, 30 % held out
    assert set(zip(sims["config"], sims["queries"])) == {("q5x2", 5), ("q7x1", 7)}
    assert sims.groupby("config")["iteration"].max().to_dict() == {"q5x2": 2, "q7x1": 1}
    assert set(sims[sims["iteration"] == 2]["n_annotations"]) == {10}
    assert set(sims["algorithm"]) == {"gnb", "committee"}
    refs = table[table["mode"] == "own"]
    assert set(refs["algorithm"]) == {"gnb", "committee"} and set(refs["n_annotations"]) == {126}
    # another seed: other splits (the reference F1 changes), the same one: identical results
    other = run("b", seed=12)
    same = run("c")
    pd.testing.assert_frame_equal(same, table)
    assert not np.allclose(other[other["mode"] == "own"]["f1_weighted"], table[table["mode"] == "own"]["f1_weighted"])


class Recorder(OneQuadrantDoubt):
    """Records the number of rows of every update (a class attribute: copies share it)."""

    sizes: list = []

    def update(self, X, y):
        Recorder.sizes.append(len(y))
        return self


def test_update_strategies_are_honoured(tmp_path):
    annotations, features = _doubt_setup()
    for update, expected in (("batch", [10, 10, 10]), ("cumulative", [10, 20, 30])):
        Recorder.sizes = []
        config = ExperimentConfig(min_annotations=50, modes=["mc"], queries=[10], iterations=[3], updates=[update],
                                  repeats=1, algorithms=["gnb"], users=["me"])
        run_experiment(annotations, features, config, tmp_path / update,
                       committee=_unscaled([("gnb_0", Recorder())], features), progress=False, plots=False)
        assert Recorder.sizes == expected, update


def test_both_updates_see_the_same_random_queries(tmp_path):
    annotations, features = deviant_population(seed=5)
    config = ExperimentConfig(min_annotations=100, modes=["mc", "rand"], queries=[10], iterations=[3],
                              updates=["batch", "cumulative"], repeats=1, algorithms=["gnb", "xgb"],
                              member_params=FAST_MEMBERS, users=["me"])
    run_experiment(annotations, features, config, tmp_path / "u", progress=False, plots=False)
    table = simulate.read_results(tmp_path / "u")
    sims = table[~table["mode"].isin(["crowd", "own"])]
    assert set(sims["mode"]) == {"mc", "rand"} and set(sims["update"]) == {"batch", "cumulative"}
    # rand asks the same songs under both updates (paired comparison): the counts agree
    rand = sims[(sims["mode"] == "rand") & (sims["algorithm"] == "xgb")].set_index(["update", "iteration"])
    assert (rand.loc["batch"][simulate.COUNT_COLUMNS] == rand.loc["cumulative"][simulate.COUNT_COLUMNS]).all().all()
    # GaussianNB sums sufficient statistics: both updates give the same model
    gnb = sims[(sims["mode"] == "rand") & (sims["algorithm"] == "gnb")].set_index(["update", "iteration"])
    np.testing.assert_allclose(gnb.loc["batch"]["f1_weighted"], gnb.loc["cumulative"]["f1_weighted"])


@pytest.mark.slow
def test_script_flags_reach_the_run(tmp_path, repo_root, script_env):
    annotations, features = deviant_population(seed=6)
    ann_path, feat_path = tmp_path / "ann.csv", tmp_path / "feats.csv"
    annotations.assign(quadrant=annotations.quadrant + 1).to_csv(ann_path, index=False)
    pd.DataFrame(features.X, columns=features.feature_names).assign(s_id=features.song_ids).to_csv(feat_path, index=False)
    out = tmp_path / "o"
    result = subprocess.run(
        [sys.executable, str(repo_root / "simulate_personalization.py"), "-a", str(ann_path), "-i", str(feat_path),
         "-o", str(out), "-n", "150", "--max-annotations", "200", "-m", "mc", "hc", "--balanced", "-q", "6", "-e", "1",
         "--update", "cumulative", "--repeats", "2", "--test-size", "0.25", "--seed", "5", "--algorithms", "gnb",
         "--users", "me", "--no-plots", "--quiet", "-j", "1"],
        capture_output=True, text=True, env=script_env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", "--quiet: no progress bar"
    summary = json.loads(result.stdout)
    assert summary["complete"] and summary["users"] == 1 and summary["jobs"] == 3
    config = json.loads((out / "run.json").read_text())["config"]
    expected = {"min_annotations": 150, "max_annotations": 200, "modes": ["mc", "hc"], "balanced": True,
                "queries": [6], "iterations": [1], "updates": ["cumulative"], "repeats": 2, "test_size": 0.25,
                "seed": 5, "algorithms": ["gnb"], "users": ["me"], "pretrain": "leave-user-out",
                "crowd_member": False, "crowd_variant": "plain"}
    assert {k: config[k] for k in expected} == expected
    table = pd.read_csv(out / "results.csv")
    sims = table[~table["mode"].isin(["crowd", "own"])]
    assert set(sims["mode"]) == {"mc", "hc"} and set(sims["update"]) == {"cumulative"}
    assert set(sims["repeat"]) == {0, 1} and set(sims["n_test"]) == {45}  # 180 songs x 0.25
    assert set(sims[sims["iteration"] == 1]["n_annotations"]) == {6}
    assert not (out / "plots").exists()
    assert (out / "summary.md").exists()


def _first_round_with_candidates(tmp_path, candidates, mode="mc", q=8):
    annotations, features = _doubt_setup()
    committee = _unscaled([("gnb_0", OneQuadrantDoubt())], features)
    config = ExperimentConfig(min_annotations=50, modes=[mode], queries=[q], iterations=[2], updates=["batch"],
                              repeats=1, algorithms=["gnb"], users=["me"], candidates=candidates)
    out = tmp_path / f"{mode}-candidates-{candidates}"
    run_experiment(annotations, features, config, out, committee=committee, progress=False, plots=False)
    table = simulate.read_results(out)
    return table[(table["mode"] == mode) & (table["algorithm"] == "committee")].set_index("iteration")


def test_candidates_rank_a_sample_and_a_sample_of_the_whole_pool_changes_nothing(tmp_path):
    """--candidates (issue 22): mc ranks a random sample of the remaining songs per round. The
    doubtful songs are the Q1 songs, so mc over all songs asks only Q1; over a sample of 8 it
    asks those 8, of every quadrant; a sample as large as the pool is the pool."""
    every = _first_round_with_candidates(tmp_path, None)
    covering = _first_round_with_candidates(tmp_path, 1000)
    assert every[simulate.COUNT_COLUMNS].loc[1].tolist() == [8, 0, 0, 0]
    pd.testing.assert_frame_equal(every.reset_index(drop=True), covering.reset_index(drop=True))
    sampled = _first_round_with_candidates(tmp_path, 8)[simulate.COUNT_COLUMNS]
    assert sampled.loc[1].sum() == 8 and sampled.loc[1].tolist() != [8, 0, 0, 0]
    assert sampled.loc[2].sum() == 16
    again = _first_round_with_candidates(tmp_path, 8)[simulate.COUNT_COLUMNS]
    assert again.equals(sampled)  # seeded per user, repeat, mode and configuration


def test_candidates_leave_random_queries_alone(tmp_path):
    plain = _first_round_with_candidates(tmp_path, None, mode="rand")
    sampled = _first_round_with_candidates(tmp_path, 3, mode="rand")
    pd.testing.assert_frame_equal(plain.reset_index(drop=True), sampled.reset_index(drop=True))


def test_candidates_must_be_positive():
    from trompa_mer.errors import MERError

    with pytest.raises(MERError, match="--candidates: expected a positive whole number of songs, got 0"):
        ExperimentConfig(candidates=0).validate()
