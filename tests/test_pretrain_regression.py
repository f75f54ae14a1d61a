"""Pre-training with arousal/valence regression members: scores, spreads, calibration, committee."""
import numpy as np
import pytest

from trompa_mer import pretrain
from trompa_mer.datasets.generic import LabeledWindows
from trompa_mer.errors import MERError
from trompa_mer.quadrants import quadrant_from_av

PARAMS = {"xgb": {"rounds": 15}, "xgb-av": {"rounds": 15}}


def corpus(n_songs=40, windows=12, seed=0, noise=0.1):
    """Songs whose arousal follows feature 0 and valence feature 1, over time within a song."""
    rng = np.random.default_rng(seed)
    X, av, groups = [], [], []
    for s in range(n_songs):
        base = rng.normal(size=6)
        x = base + rng.normal(0, 0.4, (windows, 6))
        a = np.clip(0.4 * x[:, 0] + rng.normal(0, noise, windows), -1, 1)
        v = np.clip(0.4 * x[:, 1] + rng.normal(0, noise, windows), -1, 1)
        X.append(x)
        av.append(np.c_[a, v])
        groups += [f"s{s:02d}"] * windows
    X = np.vstack(X).astype(np.float32)
    av = np.vstack(av).astype(np.float32)
    y = quadrant_from_av(av[:, 0], av[:, 1])
    return LabeledWindows(X, y, np.array(groups), [f"f{i}" for i in range(6)], av)


def test_regressors_beat_the_mean_predictor_and_sit_in_the_committee():
    data = corpus()
    report, committee = pretrain.pretrain(data, ["sgd", "sgd-av", "xgb-av"], cv=3, member_params=PARAMS,
                                          progress=False, targets="dynamic")
    song = report["regression"]["song"]
    for name in ("sgd-av", "xgb-av", "committee"):
        for axis in ("arousal", "valence"):
            assert song[name][axis]["rmse"][0] < 0.6 * song["mean_predictor"][axis]["rmse"][0]
            assert song[name][axis]["kendall_tau"][0] > 0.5
    assert song["mean_predictor"]["arousal"]["r2"][0] <= 0.0 + 0.1
    # dynamic scores exist and the linear member tracks the time series
    assert report["regression"]["dynamic"]["sgd-av"]["arousal"]["pearson_r"][0] > 0.5
    # quadrant scores of the regressors on the same splits as the classifier
    assert len(report["per_split"]["sgd-av"]["song"]) == len(report["per_split"]["sgd"]["song"]) == 3
    assert report["song"]["sgd-av"]["f1_macro"][0] > 0.5
    # spreads: the held-out residual RMS, set on every saved member of the algorithm
    names = committee.names()
    assert [n for n in names if n.startswith("sgd-av")] == ["sgd-av_0", "sgd-av_1", "sgd-av_2"]
    for name, member in committee.members:
        if member.target_kind == "av":
            assert member.spread == pytest.approx(report["spreads"][member.algorithm], abs=1e-4)
    assert committee.manifest["spreads"] == report["spreads"]
    # cross-fitted calibration for every committee algorithm
    for name in ("sgd", "sgd-av", "xgb-av"):
        calibration = report["calibration"][name]
        assert 0 <= calibration["ece"][0] <= 1 and 0 <= calibration["brier"][0] <= 2
        held_out_songs = sum(len(songs) for songs in committee.manifest["splits"]["test_songs"])
        assert sum(row["songs"] for row in calibration["reliability"]) == held_out_songs
    text = pretrain.format_report(report)
    assert "a_rmse" in text and "mean_predictor" in text and "ECE" in text


def test_spread_is_the_root_mean_square_of_held_out_song_residuals():
    data = corpus(n_songs=20)
    report, committee = pretrain.pretrain(data, ["sgd-av"], cv=2, progress=False)
    groups = np.asarray(data.groups)
    residuals = []
    for k, test_songs in enumerate(committee.manifest["splits"]["test_songs"]):
        member = committee.members[k][1]
        Z = committee.transform(data.X)
        for song in test_songs:
            rows = groups == song
            residuals.append(data.av[rows].mean(axis=0) - member.predict_av(Z[rows]).mean(axis=0))
    expected = np.sqrt(np.mean(np.square(residuals), axis=0))
    assert report["spreads"]["sgd-av"] == pytest.approx(np.maximum(expected, 0.05), abs=1e-4)


def test_regressors_need_arousal_valence_targets():
    data = corpus(n_songs=6)._replace(av=None)
    with pytest.raises(MERError, match="arousal/valence"):
        pretrain.pretrain(data, ["sgd-av"], cv=2, progress=False)


def test_algorithm_lists():
    assert pretrain.parse_algorithms("all-av") == ["sgd-av", "xgb-av"]
    assert pretrain.parse_algorithms("all,all-av") == ["gnb", "sgd", "xgb", "sgd-av", "xgb-av"]
    with pytest.raises(MERError, match="all-av"):
        pretrain.parse_algorithms("ridge")
