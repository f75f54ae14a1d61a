"""experiments/fourq_emotify.py on generated embeddings (no audio): the + other corpus variants
train on more rows, score on the own corpus' held-out rows only, and the report has its shape."""
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT


def _study():
    spec = importlib.util.spec_from_file_location("fourq_emotify", ROOT / "experiments" / "fourq_emotify.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    return study


def _corpus(rng, n, shift=0.0, width=400):
    y = np.arange(n) % 4
    centers = rng.normal(size=(4, width)) * 0.6
    return (centers[y] + shift + rng.normal(size=(n, width))).astype(np.float32), y


def test_compare_report_shape_rows_and_splits():
    study = _study()
    rng = np.random.default_rng(0)
    X_own, y_own = _corpus(rng, 48)
    X_other, y_other = _corpus(rng, 20)
    artists = [f"a{i // 2}" for i in range(48)]  # two songs per artist
    table = study.SongTable([f"s{i:02d}" for i in range(48)], y_own, artists)
    splits = study.song_splits(table, "kfold", 3, 2, 7)
    assert len(splits) == 6
    for train, test in splits:  # grouped: no artist on both sides
        assert not set(table.split_groups[train]) & set(table.split_groups[test])
    report = study.compare(X_own[table.order], table.y, splits, X_other, y_other, [0.5, 1.0], other="E")
    assert report["variants"] == ["alone", "+ E (w 0.5)", "+ E (w 1)"]
    assert report["splits"] == 6
    for v in report["variants"]:
        assert len(report["f1"][v]) == 6 and all(0.0 <= f <= 1.0 for f in report["f1"][v])
    alone = report["train_rows"]["alone"]
    assert alone == [len(train) for train, _ in splits]
    assert report["train_rows"]["+ E (w 1)"] == [n + 20 for n in alone]
    paired = report["paired"]["+ E (w 1)"]
    assert paired["wins"] + paired["losses"] + paired["ties"] == 6
    d = np.subtract(report["f1"]["+ E (w 1)"], report["f1"]["alone"])
    assert paired["mean"] == pytest.approx(d.mean())
    # the corrected t-test is never more confident than the plain one
    if np.isfinite(paired["p"]):
        assert paired["p_corrected"] >= paired["p"]
    text = study.format_report("title", report)
    assert text.count("±") == 3 + 2 and "better/worse/tied" in text


def test_other_corpus_changes_the_model():
    """Adding the other corpus must actually reach the fit: with labels that contradict the own
    corpus, w large pulls the held-out score down."""
    study = _study()
    rng = np.random.default_rng(1)
    X_own, y_own = _corpus(rng, 60)
    flipped = (y_own + 2) % 4  # same inputs, opposite labels
    splits = study.song_splits(study.SongTable([f"s{i:02d}" for i in range(60)], y_own), "kfold", 3, 1, 3)
    report = study.compare(X_own, y_own, splits, X_own.copy(), flipped, [0.1, 10.0], other="E")
    assert np.mean(report["f1"]["alone"]) > 0.8
    assert np.mean(report["f1"]["+ E (w 10)"]) < np.mean(report["f1"]["alone"]) - 0.3
    assert report["paired"]["+ E (w 10)"]["losses"] == 3


@pytest.mark.parametrize("args, message", [
    (["--weights", "0.5,x"], "error: --weights: expected a comma list of positive numbers"),
    (["--weights", "0"], "error: --weights: expected a comma list of positive numbers"),
    (["--emotify-protocol", "shuffle", "--repeats", "3"], "use --repeats 1"),
])
def test_bad_flags_one_line(args, message):
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / "fourq_emotify.py"), *args],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr and result.stdout == ""
