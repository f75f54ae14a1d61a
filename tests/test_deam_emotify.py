"""Emotify GEMS ticks -> quadrant labels (the label schemes compared in docs/pretraining.md)."""
import numpy as np
import pandas as pd
import pytest

from conftest import shared_path
from trompa_mer.datasets import emotify
from trompa_mer.errors import MERError


def _annotations(tmp_path, rows):
    """rows: (track id, [ticked categories]) per listener, in Emotify's spacing."""
    header = "track id, genre, " + ", ".join(emotify.GEMS) + ", mood, liked"
    lines = [header]
    for track, ticked in rows:
        ticks = ", ".join("1" if g in ticked else "0" for g in emotify.GEMS)
        lines.append(f"{track}, pop, {ticks}, 3, 1")
    path = tmp_path / "annotations.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_schemes_on_a_small_table(tmp_path):
    path = _annotations(tmp_path, [
        (1, ["power", "tension"]), (1, ["tension"]),      # argmax Q2; av: arousal +, valence -
        (2, ["sadness"]), (2, ["calmness", "nostalgia"]),  # argmax Q4 (2 votes vs 1)
        (3, ["joyful_activation"]),
        (4, []),                                          # no ticks: no label
    ])
    argmax = emotify.track_labels(path, "argmax")
    assert argmax.to_dict() == {"1": 1, "2": 3, "3": 0}
    av = emotify.track_av(emotify.read_ticks(path))
    # track 1: mean of power (.8,.3) and tension twice (.6,-.6)
    np.testing.assert_allclose(av.loc["1"], [(0.8 + 1.2) / 3, (0.3 - 1.2) / 3])
    zero = emotify.track_labels(path, "av-zero")
    assert zero.to_dict() == {"1": 1, "2": 2, "3": 0}
    median = emotify.track_labels(path, "av-median")
    centered = av - av.median()
    assert median.loc["3"] == (0 if centered.loc["3", "valence"] >= 0 else 1)
    with pytest.raises(MERError, match="label scheme"):
        emotify.track_labels(path, "vibes")


def test_missing_gems_column_is_refused(tmp_path):
    path = tmp_path / "annotations.csv"
    path.write_text("track id, amazement\n1, 0\n")
    with pytest.raises(MERError, match="missing column 'solemnity'"):
        emotify.read_ticks(path)


def test_real_emotify_label_counts():
    path = shared_path("emotify", "annotations.csv")
    argmax = emotify.track_labels(path, "argmax")
    # the counts ../shared/data/README.md reports for this mapping
    assert np.bincount(argmax, minlength=4).tolist() == [145, 7, 5, 243]
    median = np.bincount(emotify.track_labels(path, "av-median"), minlength=4)
    assert median.sum() == 400 and median.min() >= 60  # centering balances the quadrants
