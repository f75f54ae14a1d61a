"""deam_classifier.py end to end on a generated DEAM-layout corpus, and the DEAM/generic loaders."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from trompa_mer.committee import Committee
from trompa_mer.datasets.deam import load_deam, read_dynamic
from trompa_mer.datasets.generic import load_generic
from trompa_mer.errors import MERError
from trompa_mer.features import FEATURE_NAMES, write_feature_csv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEAM_NAMES = [n.replace("mfcc_sma", "pcm_fftMag_mfcc_sma", 1) if n.startswith("mfcc_sma") else n
              for n in FEATURE_NAMES]
N_SONGS = 12
SECONDS = 24.0  # feature windows 0..23.5 s; annotations from 15 s as in DEAM


def _write_annotations(path, rows):
    """rows: {song: values from 15 s every 500 ms}; shorter rows end in empty cells."""
    width = max(len(v) for v in rows.values())
    columns = [f"sample_{15000 + 500 * i}ms" for i in range(width)]
    table = pd.DataFrame([list(v) + [np.nan] * (width - len(v)) for v in rows.values()], columns=columns)
    table.insert(0, "song_id", list(rows))
    table.to_csv(path, index=False)


@pytest.fixture(scope="module")
def deam(tmp_path_factory):
    """12 songs, 3 per quadrant; song 2's arousal row is shorter than its valence row;
    half the files use DEAM's `pcm_fftMag_` MFCC names, half ours; song 99 has no annotation."""
    root = tmp_path_factory.mktemp("deam")
    rng = np.random.default_rng(7)
    feats = root / "features"
    arousal, valence = {}, {}
    times = np.arange(0, SECONDS, 0.5)
    for song in range(1, N_SONGS + 1):
        quadrant = song % 4
        a_sign, v_sign = [(1, 1), (1, -1), (-1, -1), (-1, 1)][quadrant]
        X = rng.normal(size=(len(times), 260))
        X[:, 0] += 3 * a_sign
        X[:, 1] += 3 * v_sign
        names = DEAM_NAMES if song % 2 else FEATURE_NAMES
        table = pd.DataFrame(X, columns=names)
        table.insert(0, "frameTime", times)
        feats.mkdir(exist_ok=True)
        table.to_csv(feats / f"{song}.csv", sep=";", index=False)
        n_annot = int((SECONDS - 15.0) / 0.5) + 4  # runs past the features' end
        arousal[song] = a_sign * (0.3 + 0.1 * rng.random(n_annot))
        valence[song] = v_sign * (0.3 + 0.1 * rng.random(n_annot))
    arousal[2] = arousal[2][:6]  # arousal ends at 17.5 s, valence goes on
    table = pd.DataFrame(rng.normal(size=(10, 260)), columns=FEATURE_NAMES)
    table.insert(0, "frameTime", np.arange(10) * 0.5)
    write_feature_csv(table, feats / "99.csv")
    _write_annotations(root / "arousal.csv", arousal)
    _write_annotations(root / "valence.csv", valence)
    return root


def test_read_dynamic_maps_sample_columns_to_milliseconds(deam):
    table = read_dynamic(deam / "arousal.csv")
    assert table.columns[0] == 15000 and table.columns[1] == 15500
    assert "2" in table.index and table.loc["2"].notna().sum() == 6


def test_load_deam_labels_each_window_at_its_own_time(deam):
    data = load_deam(deam / "features", deam / "arousal.csv", deam / "valence.csv")
    assert data.X.shape[1] == 260 and data.X.dtype == np.float32
    assert data.feature_names == FEATURE_NAMES
    per_song = pd.Series(data.groups).value_counts()
    full = int((SECONDS - 15.0) / 0.5)  # annotated windows 15.0 .. 23.5 s
    assert per_song["1"] == full
    assert per_song["2"] == 6  # only where both arousal and valence exist
    assert "99" not in per_song.index
    for song in ("1", "2", "3", "4"):
        assert set(data.y[data.groups == song]) == {int(song) % 4}
    # DEAM's names were mapped: song 1 (DEAM layout) and song 2 (ours) carry the same signal column
    assert data.X[data.groups == "1", 0].mean() > 2 and data.X[data.groups == "3", 0].mean() < -2


def test_load_deam_refuses_a_bad_annotation_header(deam, tmp_path):
    bad = tmp_path / "arousal.csv"
    bad.write_text("song_id,time_15s\n1,0.3\n")
    with pytest.raises(MERError, match="time_15s"):
        load_deam(deam / "features", bad, deam / "valence.csv")


def _run(*args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=ROOT, MER_XGB_ROUNDS="8", **(env_extra or {}))
    return subprocess.run([sys.executable, os.path.join(ROOT, "deam_classifier.py"), *args],
                          capture_output=True, text=True, env=env, timeout=900)


def test_deam_classifier_end_to_end_every_algorithm(deam, tmp_path):
    out = tmp_path / "committee"
    report = tmp_path / "report.json"
    result = _run("-cv", "2", "-m", "all,knn,rf,svc,gbc,gpc", "--dataset", "deam",
                  "--deam-features", str(deam / "features"), "--deam-arousal", str(deam / "arousal.csv"),
                  "--deam-valence", str(deam / "valence.csv"), "-o", str(out), "--report", str(report),
                  "--quiet")
    assert result.returncode == 0, result.stderr
    for name in ("gnb", "sgd", "xgb", "knn", "rf", "svc", "gbc", "gpc", "majority", "committee"):
        assert f" {name} " in result.stdout
    scores = json.loads(report.read_text())
    for name in ("gnb", "sgd", "xgb", "knn", "rf", "svc", "gbc", "gpc"):
        for level in ("window", "song"):
            mean, sd = scores[level][name]["f1_weighted"]
            assert 0 <= mean <= 1 and sd >= 0
    # the generated classes are separable: the members must beat the majority baseline
    assert scores["song"]["xgb"]["f1_weighted"][0] > scores["song"]["majority"]["f1_weighted"][0]
    committee = Committee.load(out, feature_names=FEATURE_NAMES)
    assert committee.names() == ["gnb_0", "gnb_1", "sgd_0", "sgd_1", "xgb_0", "xgb_1"]
    manifest = committee.manifest
    assert manifest["corpus"]["name"] == "DEAM"
    assert manifest["splits"]["n_splits"] == 2 and manifest["splits"]["seed"] == 1987
    assert "song" in manifest["scores"] and "xgb" in manifest["scores"]["song"]
    assert manifest["command"].startswith("python deam_classifier.py -cv 2")
    card = (out / "README.md").read_text()
    assert manifest["command"] in card and "| song | majority |" in card
    # the saved committee predicts its own corpus reasonably
    data = load_deam(deam / "features", deam / "arousal.csv", deam / "valence.csv")
    songs, index = np.unique(data.groups, return_inverse=True)
    p = committee.song_proba(data.X, index).mean(axis=0)
    truth = np.array([int(s) % 4 for s in songs])
    assert (p.argmax(axis=1) == truth).mean() > 0.5


def test_comparison_only_run_saves_no_committee(deam, tmp_path):
    out = tmp_path / "committee"
    result = _run("-cv", "2", "-m", "knn", "--dataset", "deam", "--deam-features", str(deam / "features"),
                  "--deam-arousal", str(deam / "arousal.csv"), "--deam-valence", str(deam / "valence.csv"),
                  "-o", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "no committee saved" in result.stdout and not out.exists()


def test_bad_input_exits_non_zero_with_one_line(deam, tmp_path):
    result = _run("-m", "svm", "--dataset", "deam", "--deam-features", str(deam / "features"),
                  "--deam-arousal", str(deam / "arousal.csv"), "--deam-valence", str(deam / "valence.csv"))
    assert result.returncode == 1 and result.stderr.strip().startswith("error: -m:")
    result = _run("--dataset", "deam", "--deam-features", str(tmp_path / "none"),
                  "--deam-arousal", str(deam / "arousal.csv"), "--deam-valence", str(deam / "valence.csv"))
    assert result.returncode == 1 and "not found" in result.stderr
    assert _run("-cv", "0").returncode == 2


def test_generic_dataset_with_arousal_valence_labels(tmp_path):
    rng = np.random.default_rng(1)
    rows, labels = [], []
    for song in range(8):
        a, v = (1 if song % 2 else -1), (1 if song % 4 < 2 else -1)
        X = rng.normal(size=(5, 260))
        X[:, 0] += 3 * a
        table = pd.DataFrame(X, columns=DEAM_NAMES)
        table.insert(0, "song_id", f"Song{song}")
        rows.append(table)
        labels.append({"song_id": f"song{song}", "arousal": 0.5 * a, "valence": 0.5 * v})
    pd.concat(rows).to_csv(tmp_path / "features.csv", index=False)
    pd.DataFrame(labels + [{"song_id": "unknown", "arousal": 0, "valence": 0}]).to_csv(
        tmp_path / "labels.csv", index=False)
    data = load_generic(tmp_path / "features.csv", tmp_path / "labels.csv")
    assert data.X.shape == (40, 260) and data.feature_names == FEATURE_NAMES
    assert set(data.groups) == {f"song{i}" for i in range(8)}
    assert data.y[data.groups == "song1"].tolist() == [0] * 5   # a+ v+ -> Q1
    assert data.y[data.groups == "song2"].tolist() == [2] * 5   # a- v- -> Q3
    quadrants = pd.DataFrame({"s_id": ["song0", "song1"], "quadrant": ["Q2", "q4"]})
    quadrants.to_csv(tmp_path / "quadrants.csv", index=False)
    data = load_generic(tmp_path / "features.csv", tmp_path / "quadrants.csv", id_column=None)
    assert data.X.shape == (10, 260) and sorted(set(data.y.tolist())) == [1, 3]
    result = _run("-cv", "2", "-m", "gnb", "--window-stride", "2", "--dataset", "generic", "--features", str(tmp_path / "features.csv"),
                  "--labels", str(tmp_path / "labels.csv"), "-o", str(tmp_path / "c"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert Committee.load(tmp_path / "c").names() == ["gnb_0", "gnb_1"]
    assert "training on 1 in 2 windows" in result.stdout


def test_generic_dataset_refuses_bad_labels(tmp_path):
    pd.DataFrame({"song_id": ["a"], "f1": [1.0]}).to_csv(tmp_path / "f.csv", index=False)
    pd.DataFrame({"song_id": ["a"], "quadrant": ["Q5"]}).to_csv(tmp_path / "l.csv", index=False)
    with pytest.raises(MERError, match="l.csv: row 2 field 'quadrant'"):
        load_generic(tmp_path / "f.csv", tmp_path / "l.csv")
    pd.DataFrame({"track": ["a"], "quadrant": ["Q1"]}).to_csv(tmp_path / "l2.csv", index=False)
    with pytest.raises(MERError, match="no song id column"):
        load_generic(tmp_path / "f.csv", tmp_path / "l2.csv")


def test_dynamic_regression_end_to_end_on_deam_layout(deam, tmp_path):
    """--task regression --targets dynamic: regressors beside a classifier, the metrics table
    printed, a committee with regression members that predicts arousal/valence of its corpus."""
    out = tmp_path / "committee"
    report = tmp_path / "report.json"
    result = _run("-cv", "2", "-m", "sgd,all-av", "--task", "regression", "--targets", "dynamic",
                  "--dataset", "deam", "--deam-features", str(deam / "features"),
                  "--deam-arousal", str(deam / "arousal.csv"), "--deam-valence", str(deam / "valence.csv"),
                  "-o", str(out), "--report", str(report), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "a_rmse" in result.stdout and "dynamic: per song" in result.stdout and "mean_predictor" in result.stdout
    scores = json.loads(report.read_text())
    song = scores["regression"]["song"]
    for name in ("sgd-av", "xgb-av"):
        # the generated arousal follows feature 0's sign: far better than the training mean
        assert song[name]["arousal"]["rmse"][0] < song["mean_predictor"]["arousal"]["rmse"][0]
    assert set(scores["regression"]["dynamic"]) == {"sgd-av", "xgb-av", "committee", "mean_predictor"}
    committee = Committee.load(out, feature_names=FEATURE_NAMES)
    assert committee.of_target("av") == [2, 3, 4, 5]
    data = load_deam(deam / "features", deam / "arousal.csv", deam / "valence.csv")
    songs, index = np.unique(data.groups, return_inverse=True)
    av = committee.song_av(data.X, index).mean(axis=0)
    signs = np.array([[(1, 1), (1, -1), (-1, -1), (-1, 1)][int(s) % 4] for s in songs])
    assert (np.sign(av) == signs).mean() > 0.8
    assert "Arousal/valence" in (out / "README.md").read_text()


@pytest.mark.parametrize("args, message", [
    (("--task", "regression", "-m", "gnb"), "names no regression member"),
    (("--targets", "dynamic"), "only with --task regression"),
    (("--task", "regression", "--targets", "dynamic", "--dataset", "emotify"), "one arousal/valence value per song"),
    (("--task", "regression", "--dataset", "pmemo"), "needs --pmemo"),
])
def test_regression_refusals(args, message):
    result = _run("-cv", "2", "--quiet", *args)
    assert result.returncode == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
