"""Issue 23, items 7 and 8, through deam_classifier.py: a corpus whose labels collapse to fewer
than four quadrants (a forgotten --scale) is refused naming the flag, regression on a labels
file read without --scale says so, and a non-numeric cell of DEAM / 1000 Songs dynamic
annotations is refused naming file, row (song id) and column. Exit 1, one `error:` line,
nothing saved."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import one_error
from fixtures_regression import write_dynamic, write_feature_folder
from trompa_mer.committee import Committee
from trompa_mer.datasets.deam import read_dynamic
from trompa_mer.errors import MERError
from trompa_mer.features import FEATURE_NAMES

ROOT = Path(__file__).resolve().parents[1]
SIGNS = [(1, 1), (1, -1), (-1, -1), (-1, 1)]   # Q1..Q4


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MER_XGB_ROUNDS="4")
    return subprocess.run([sys.executable, str(ROOT / "deam_classifier.py"), *map(str, args), "--quiet"],
                          capture_output=True, text=True, env=env, timeout=600)


def generic_corpus(tmp_path, labels: pd.DataFrame):
    rng = np.random.default_rng(2)
    frames = []
    for song in labels["song_id"]:
        X = rng.normal(size=(4, len(FEATURE_NAMES)))
        table = pd.DataFrame(X, columns=FEATURE_NAMES)
        table.insert(0, "song_id", song)
        frames.append(table)
    pd.concat(frames).to_csv(tmp_path / "features.csv", index=False)
    labels.to_csv(tmp_path / "labels.csv", index=False)
    return ["--dataset", "generic", "--features", tmp_path / "features.csv", "--labels", tmp_path / "labels.csv",
            "-cv", 2, "-o", tmp_path / "committee"]


def av_labels(low, high, songs=8):
    """Songs in every quadrant of a scale whose low/high values are given."""
    rows = [{"song_id": f"s{i}", "arousal": high if SIGNS[i % 4][0] > 0 else low,
             "valence": high if SIGNS[i % 4][1] > 0 else low} for i in range(songs)]
    return pd.DataFrame(rows)


# --- item 7: fewer than four quadrants --------------------------------------------------------
@pytest.mark.parametrize("low,high,scale", [(3, 7, "1..9"), (0.2, 0.8, "0..1")])
def test_forgotten_scale_is_refused_naming_the_flag(tmp_path, low, high, scale):
    args = generic_corpus(tmp_path, av_labels(low, high))
    line = one_error(run(*args, "-m", "gnb"), "generic corpus: its labels give 1 of the 4 quadrants",
                     "none in Q2, Q3, Q4", f"--scale {scale} was probably missed")
    assert "labels.csv" in line
    assert not (tmp_path / "committee").exists()
    # the flag it names is the fix: four quadrants, a committee saved
    fixed = run(*args, "-m", "gnb", "--scale", scale)
    assert fixed.returncode == 0, fixed.stderr
    assert Committee.load(tmp_path / "committee").names() == ["gnb_0", "gnb_1"]


def test_three_quadrants_without_a_scale_hint(tmp_path):
    labels = pd.DataFrame({"song_id": [f"s{i}" for i in range(6)], "quadrant": ["Q1", "Q2", "Q3"] * 2})
    line = one_error(run(*generic_corpus(tmp_path, labels), "-m", "gnb"),
                     "its labels give 3 of the 4 quadrants (windows: Q1 8, Q2 8, Q3 8; none in Q4)")
    assert "--scale" not in line
    assert not (tmp_path / "committee").exists()


def test_regression_without_scale_names_the_flag(tmp_path):
    """Labels on -1..1 in all four quadrants, --task regression without --scale: the labels
    file has arousal/valence, so the refusal names --scale instead of 'quadrant labels only'."""
    args = generic_corpus(tmp_path, av_labels(-0.5, 0.5))
    line = one_error(run(*args, "--task", "regression", "-m", "sgd-av"),
                     "labels.csv: regression members need arousal/valence targets",
                     "--scale (0..1, 1..9 or -1..1, the scale of its values) was probably missed")
    assert "quadrant labels only because no scale was given" in line
    assert not (tmp_path / "committee").exists()
    fixed = run(*args, "--task", "regression", "-m", "sgd-av", "--scale=-1..1")
    assert fixed.returncode == 0, fixed.stderr


def test_every_loader_is_checked_deam_in_one_quadrant(tmp_path):
    """The check runs for every corpus, not only generic: a DEAM-layout corpus annotated in Q1
    only (no scale hint: DEAM's scale is fixed)."""
    songs = {s: np.arange(0, 20, 0.5) for s in range(1, 5)}
    write_feature_folder(tmp_path / "feats", songs)
    write_dynamic(tmp_path / "arousal.csv", {s: [0.4] * 8 for s in songs})
    write_dynamic(tmp_path / "valence.csv", {s: [0.3] * 8 for s in songs})
    line = one_error(run("--dataset", "deam", "--deam-features", tmp_path / "feats", "--deam-arousal",
                         tmp_path / "arousal.csv", "--deam-valence", tmp_path / "valence.csv", "-m", "gnb",
                         "-cv", 2, "-o", tmp_path / "committee"),
                     "deam corpus: its labels give 1 of the 4 quadrants")
    assert "--scale" not in line
    assert not (tmp_path / "committee").exists()


# --- item 8: non-numeric dynamic annotation cells ---------------------------------------------
def deam_corpus(tmp_path):
    songs = {s: np.arange(0, 20, 0.5) for s in range(1, 9)}
    write_feature_folder(tmp_path / "feats", songs)
    a = {s: [0.4 * SIGNS[s % 4][0]] * 8 for s in songs}
    v = {s: [0.3 * SIGNS[s % 4][1]] * 8 for s in songs}
    write_dynamic(tmp_path / "arousal.csv", a)
    write_dynamic(tmp_path / "valence.csv", v)
    return tmp_path / "arousal.csv"


def set_cell(path, song, column, text):
    lines = Path(path).read_text().splitlines()
    header = lines[0].split(",")
    for i, line in enumerate(lines[1:], start=1):
        cells = line.split(",")
        if cells[0] == str(song):
            cells[header.index(column)] = text
            lines[i] = ",".join(cells)
    Path(path).write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("text", ["abc", "0;4", "n/a", "NaN"])
def test_deam_non_numeric_cell_is_refused(tmp_path, text):
    arousal = deam_corpus(tmp_path)
    set_cell(arousal, 6, "sample_16000ms", text)
    result = run("--dataset", "deam", "--deam-features", tmp_path / "feats", "--deam-arousal", arousal,
                 "--deam-valence", tmp_path / "valence.csv", "--task", "regression", "--targets", "dynamic",
                 "-m", "sgd-av", "-cv", 2, "-o", tmp_path / "committee")
    one_error(result, "arousal.csv: row 7 (song_id '6') column 'sample_16000ms'", f"{text!r} is not a number")
    assert not (tmp_path / "committee").exists()


def test_emomusic_non_numeric_cell_is_refused(tmp_path):
    deam_corpus(tmp_path)
    annotations = tmp_path / "annotations"
    annotations.mkdir()
    (tmp_path / "arousal.csv").rename(annotations / "arousal_cont_average.csv")
    (tmp_path / "valence.csv").rename(annotations / "valence_cont_average.csv")
    set_cell(annotations / "valence_cont_average.csv", 3, "sample_18500ms", "high")
    result = run("--dataset", "emomusic", "--emomusic-features", tmp_path / "feats", "--emomusic-annotations",
                 annotations, "--task", "regression", "--targets", "dynamic", "-m", "sgd-av", "-cv", 2,
                 "-o", tmp_path / "committee")
    one_error(result, "valence_cont_average.csv: row 4 (song_id '3') column 'sample_18500ms'",
              "'high' is not a number")
    assert not (tmp_path / "committee").exists()


def test_empty_and_blank_cells_stay_a_song_that_ended(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("song_id,sample_15000ms,sample_15500ms,sample_16000ms\n1,0.1,0.2,\n2,0.3, ,\n3,0.5,x,0.1\n")
    with pytest.raises(MERError, match=r"a.csv: row 4 \(song_id '3'\) column 'sample_15500ms': 'x' is not a number \(1 such"):
        read_dynamic(path)
    path.write_text("song_id,sample_15000ms,sample_15500ms,sample_16000ms\n1,0.1,0.2,\n2,0.3, ,\n")
    table = read_dynamic(path)
    assert table.loc["1"].tolist()[:2] == [0.1, 0.2] and np.isnan(table.loc["1", 16000])
    assert table.loc["2", 15000] == 0.3 and np.isnan(table.loc["2", 15500])


# --- check_corpus in-process (what mutation testing can attribute) -----------------------------
def _data(y, av=None):
    from trompa_mer.datasets.generic import LabeledWindows

    y = np.asarray(y, dtype=np.int64)
    return LabeledWindows(np.zeros((len(y), 2), np.float32), y, np.asarray([f"s{i}" for i in range(len(y))]),
                          ["a", "b"], av)


def test_check_corpus_by_hand(tmp_path):
    from trompa_mer.datasets.checks import check_corpus, scale_hint

    labels = tmp_path / "labels.csv"
    av_labels(1, 9).to_csv(labels, index=False)
    paths = {"labels": str(labels)}
    check_corpus(_data([0, 1, 2, 3, 3]), "generic", paths)                 # four quadrants: passes
    check_corpus(_data([0, 1, 2, 3]), "deam", {}, needs_av=True)          # not generic: pretrain's own check
    with pytest.raises(MERError, match=r"^generic corpus: its labels give 2 of the 4 quadrants \(windows: "
                                       r"Q2 1, Q4 2; none in Q1, Q3\); a committee trained on it could never "
                                       r"predict the others; the arousal/valence values of .*labels.csv are "
                                       r"all >= 0 \(largest 9\), which looks like a 1..9 scale read as -1..1: "
                                       r"--scale 1..9 was probably missed$"):
        check_corpus(_data([1, 3, 3]), "generic", paths)
    with pytest.raises(MERError, match=r"others$"):
        check_corpus(_data([1, 3, 3]), "emotify", paths)                   # the hint is the generic loader's
    with pytest.raises(MERError, match=r"labels.csv: regression members need arousal/valence targets"):
        check_corpus(_data([0, 1, 2, 3]), "generic", paths, needs_av=True)
    check_corpus(_data([0, 1, 2, 3], av=np.zeros((4, 2))), "generic", paths, needs_av=True)
    check_corpus(_data([0, 1, 2, 3]), "generic", paths, needs_av=False)
    # the hint: only without --scale, only for values all >= 0; 0..1 when none is over 1
    assert scale_hint({**paths, "scale": "1..9"}) == ""
    av_labels(0, 1).to_csv(labels, index=False)
    assert scale_hint(paths).endswith("looks like a 0..1 scale read as -1..1: --scale 0..1 was probably missed")
    assert "(largest 1)" in scale_hint(paths)
    av_labels(-0.5, 0.5).to_csv(labels, index=False)
    assert scale_hint(paths) == ""
    pd.DataFrame({"song_id": ["a"], "quadrant": ["Q1"]}).to_csv(labels, index=False)
    assert scale_hint(paths) == "" and scale_hint({}) == ""
    check_corpus(_data([0, 1, 2, 3]), "generic", paths, needs_av=True)    # quadrant labels: pretrain says so


def test_check_corpus_edges(tmp_path):
    from types import SimpleNamespace

    from trompa_mer.datasets.checks import check_corpus, scale_hint

    with pytest.raises(MERError, match=r"^x corpus: its labels give 0 of the 4 quadrants \(windows: none; none in Q1, "
                                       r"Q2, Q3, Q4\)"):
        check_corpus(SimpleNamespace(y=[]), "x", {})
    check_corpus(SimpleNamespace(y=[0, 1, 2, 3]), "generic", {}, needs_av=True)   # a loader's object without av
    labels = tmp_path / "labels.csv"
    paths = {"labels": str(labels)}
    pd.DataFrame({"song_id": ["a", "b", "c"], "arousal": [0.2, 1.5, "high"], "valence": [0.1, 0.3, "?"]}).to_csv(
        labels, index=False)
    assert scale_hint(paths).endswith("(largest 1.5), which looks like a 1..9 scale read as -1..1: "
                                      "--scale 1..9 was probably missed")
    with pytest.raises(MERError, match=r"^.*labels.csv: regression members need arousal/valence targets; this labels "
                                       r"file has 'arousal' and 'valence' columns but was read as quadrant labels only "
                                       r"because no scale was given: --scale \(0..1, 1..9 or -1..1, the scale of its "
                                       r"values\) was probably missed$"):
        check_corpus(_data([0, 1, 2, 3]), "generic", paths, needs_av=True)
