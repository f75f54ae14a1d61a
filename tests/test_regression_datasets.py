"""Arousal/valence regression targets (issue 14): scales, LabeledWindows.av, and the PMEmo,
emoMusic, DEAM, Emotify and generic loaders on generated corpora in the published layouts
(tests/fixtures_regression.py), plus the real DEAM/Emotify annotations when present."""
import numpy as np
import pandas as pd
import pytest

from conftest import shared_path
from fixtures_regression import (write_deam_static, write_dynamic, write_emomusic_static,
                                 write_feature_folder, write_pmemo)
from trompa_mer.datasets import emotify
from trompa_mer.datasets.deam import load_deam, read_dynamic
from trompa_mer.datasets.emomusic import load_emomusic
from trompa_mer.datasets.generic import LabeledWindows, load_generic, windows_with_av
from trompa_mer.datasets.pmemo import load_pmemo
from trompa_mer.datasets.scales import SCALES, to_unit, unit_by_max_abs
from trompa_mer.datasets.targets import stack_dynamic
from trompa_mer.errors import MERError
from trompa_mer.features import FEATURE_NAMES
from trompa_mer.quadrants import quadrant_from_av


def _consistent(data):
    assert data.av is not None and data.av.dtype == np.float32 and data.av.shape == (len(data.X), 2)
    assert np.abs(data.av).max() <= 1
    np.testing.assert_array_equal(data.y, quadrant_from_av(data.av[:, 0], data.av[:, 1]))
    assert data.X.dtype == np.float32 and data.feature_names == list(FEATURE_NAMES)


# --- scales -------------------------------------------------------------------------------

def test_to_unit_maps_each_scale_linearly():
    np.testing.assert_allclose(to_unit([0, 0.25, 0.5, 1], "0..1", "f: c"), [-1, -0.5, 0, 1])
    np.testing.assert_allclose(to_unit([1, 3, 5, 9], "1..9", "f: c"), [-1, -0.5, 0, 1])
    np.testing.assert_allclose(to_unit([-1, 0.3, 1], "-1..1", "f: c"), [-1, 0.3, 1])
    # within the tolerance of the range's ends: clipped, not refused
    assert to_unit([1 + 1e-9], "0..1", "f: c")[0] == 1.0
    assert to_unit(np.zeros((2, 2)), "-1..1", "f: c").shape == (2, 2)


def test_to_unit_refusals_name_the_place():
    with pytest.raises(MERError, match=r"f.csv: Arousal: unknown scale '1..7' \(expected one of 0..1, 1..9, -1..1\)"):
        to_unit([1], "1..7", "f.csv: Arousal")
    with pytest.raises(MERError, match=r"f.csv: Arousal: value 1.5 at '12' is outside the declared scale 0..1"):
        to_unit(pd.Series([0.5, 1.5], index=["3", "12"]), "0..1", "f.csv: Arousal")
    with pytest.raises(MERError, match=r"f.csv: Valence: empty or non-numeric value at position 1"):
        to_unit([0.5, np.nan], "0..1", "f.csv: Valence")
    assert set(SCALES) == {"0..1", "1..9", "-1..1"}


def test_unit_by_max_abs_keeps_signs():
    np.testing.assert_allclose(unit_by_max_abs([0.2, -0.4, 0.1], "x"), [0.5, -1, 0.25])
    np.testing.assert_array_equal(unit_by_max_abs([0.0, 0.0], "x"), [0, 0])


# --- LabeledWindows -----------------------------------------------------------------------

def test_labeled_windows_stays_backwards_compatible():
    data = LabeledWindows(np.zeros((2, 3), np.float32), np.array([0, 1]), np.array(["a", "b"]), ["f"] * 3)
    assert data.av is None and data._replace(y=np.array([1, 1])).av is None
    # fields are only ever added at the end, with defaults: the 4-argument form and the first
    # five fields keep their meaning (split_groups came with the 4Q corpus, audio with the
    # musicnn members, issue 20)
    assert data._fields == ("X", "y", "groups", "feature_names", "av", "split_groups", "audio")
    assert data.split_groups is None and data.audio is None


def test_windows_with_av_derives_quadrants_from_the_stored_targets():
    av = np.array([[0.5, 0.5], [0.5, -0.5], [-0.5, -0.5], [-0.5, 0.5], [0.0, -1e-60]])
    data = windows_with_av(np.zeros((5, 2)), av, ["s"] * 5, ["a", "b"])
    # -1e-60 becomes -0.0 in float32, which counts as positive like 0
    assert data.y.tolist() == [0, 1, 2, 3, 0]
    _consistent(data._replace(feature_names=list(FEATURE_NAMES)))


# --- PMEmo --------------------------------------------------------------------------------

def _pmemo_a(song, t):
    return 0.1 + 0.8 * ((song * 7 + t * 10) % 10) / 10       # 0.1 .. 0.82, crosses 0.5


def _pmemo_v(song, t):
    return 0.9 if song % 2 else 0.2


# features 14.0 .. 17.5 s (8 windows); annotations 15.0 .. 19.0 s
WINDOWS = np.arange(14.0, 18.0, 0.5)
ANNOTATED = [round(15.0 + 0.5 * i, 1) for i in range(9)]


@pytest.fixture
def pmemo(tmp_path):
    return write_pmemo(tmp_path / "PMEmo2019", {1: WINDOWS, 4: WINDOWS, 10: WINDOWS[:5]},
                       ANNOTATED, _pmemo_a, _pmemo_v)


def test_pmemo_dynamic_targets_per_window(pmemo):
    data = load_pmemo(pmemo, targets="dynamic")
    _consistent(data)
    # windows before 15 s have no annotation; song 10's features end at 16.0 s
    assert pd.Series(data.groups).value_counts().to_dict() == {"1": 6, "4": 6, "10": 3}
    for x, av, song in zip(data.X, data.av, data.groups):
        assert x[0] == int(song) and x[1] >= 15.0
        expected = [2 * _pmemo_a(int(song), float(x[1])) - 1, 2 * _pmemo_v(int(song), float(x[1])) - 1]
        np.testing.assert_allclose(av, expected, atol=1e-6)
    assert len(set(data.y.tolist())) > 1


def test_pmemo_static_targets_every_window(pmemo):
    data = load_pmemo(pmemo, targets="static")
    _consistent(data)
    assert len(data.X) == 8 + 8 + 5   # every window, annotated time or not
    static = pd.read_csv(pmemo / "annotations" / "static_annotations.csv", index_col="musicId")
    for song in ("1", "4", "10"):
        rows = data.av[data.groups == song]
        assert (rows == rows[0]).all()
        np.testing.assert_allclose(rows[0], 2 * static.loc[int(song)].to_numpy() - 1, atol=1e-6)


def test_pmemo_matches_times_after_rounding_to_milliseconds(pmemo):
    path = pmemo / "annotations" / "dynamic_annotations.csv"
    table = pd.read_csv(path)
    table["frameTime"] = table["frameTime"] + 1e-7        # 15.0000001 is the window at 15.0
    table.to_csv(path, index=False)
    assert len(load_pmemo(pmemo).X) == 15


def test_pmemo_songs_without_features_are_skipped_none_matching_is_refused(tmp_path):
    root = write_pmemo(tmp_path / "p", {1: WINDOWS, 2: WINDOWS}, ANNOTATED, _pmemo_a, _pmemo_v,
                       feature_songs=[2])
    assert set(load_pmemo(root).groups) == {"2"}
    static = root / "annotations" / "static_annotations.csv"
    pd.read_csv(static).assign(musicId=[7, 8]).to_csv(static, index=False)
    with pytest.raises(MERError, match=r"static_annotations.csv: no musicId matches a song of .*dynamic_features.csv"):
        load_pmemo(root, targets="static")


def _edit(path, change):
    table = pd.read_csv(path)
    changed = change(table)
    (table if changed is None else changed).to_csv(path, index=False)


@pytest.mark.parametrize("targets, file, change, message", [
    ("static", "annotations/static_annotations.csv", lambda t: t.drop(columns="Valence(mean)"),
     r"static_annotations.csv: missing column 'Valence\(mean\)'"),
    ("static", "annotations/static_annotations.csv", lambda t: t.loc.__setitem__((1, "Arousal(mean)"), np.nan),
     r"static_annotations.csv: Arousal\(mean\): empty or non-numeric value at '4'"),
    ("static", "annotations/static_annotations.csv", lambda t: t.loc.__setitem__((0, "Valence(mean)"), 7.0),
     r"static_annotations.csv: Valence\(mean\): value 7 at '1' is outside the declared scale 0..1"),
    ("static", "annotations/static_annotations.csv", lambda t: t.loc.__setitem__((2, "musicId"), 4),
     r"static_annotations.csv: musicId '4' appears twice"),
    ("dynamic", "annotations/dynamic_annotations.csv", lambda t: t.loc.__setitem__((1, "frameTime"), 15.0),
     r"dynamic_annotations.csv: musicId '1' frameTime 15 appears twice"),
    ("dynamic", "annotations/dynamic_annotations.csv", lambda t: t.loc.__setitem__((3, "Arousal(mean)"), -0.2),
     r"dynamic_annotations.csv: Arousal\(mean\): value -0.2 at \('1', 16500\) is outside"),
    ("dynamic", "features/dynamic_features.csv", lambda t: t.drop(columns="pcm_fftMag_mfcc_sma[3]_amean"),
     r"dynamic_features.csv: missing column 'mfcc_sma\[3\]_amean'"),
    ("dynamic", "features/dynamic_features.csv", lambda t: t.drop(columns="musicId"),
     r"dynamic_features.csv: missing column 'musicId'"),
])
def test_pmemo_refusals(pmemo, targets, file, change, message):
    _edit(pmemo / file, change)
    with pytest.raises(MERError, match=message):
        load_pmemo(pmemo, targets=targets)


def test_unknown_targets_refused(pmemo, tmp_path):
    with pytest.raises(MERError, match="targets: expected one of static, dynamic, got 'song'"):
        load_pmemo(pmemo, targets="song")
    with pytest.raises(MERError, match="targets: Emotify has no dynamic annotations"):
        emotify.load_emotify(tmp_path, tmp_path, targets="dynamic")


# --- emoMusic -----------------------------------------------------------------------------

@pytest.fixture
def emomusic(tmp_path):
    times = np.arange(14.0, 17.0, 0.5)
    feats = write_feature_folder(tmp_path / "feats", {2: times, 3: times, 5: times[:4]})
    notes = tmp_path / "annotations"
    notes.mkdir()
    write_emomusic_static(notes / "static_annotations.csv", {2: (7.0, 3.0), 3: (2.0, 5.0), 5: (5.5, 8.2), 9: (1, 1)})
    write_dynamic(notes / "arousal_cont_average.csv", {2: [0.1, 0.2, 0.3], 3: [-0.4] * 6, 5: [0.5, 0.6], 9: [0]})
    write_dynamic(notes / "valence_cont_average.csv", {2: [-0.1] * 4, 3: [0.2] * 6, 5: [-0.3, 0.3], 9: [0]})
    return feats, notes


def test_emomusic_static_means_mapped_from_one_to_nine(emomusic):
    data = load_emomusic(*emomusic)
    _consistent(data)
    assert pd.Series(data.groups).value_counts().to_dict() == {"2": 6, "3": 6, "5": 4}
    np.testing.assert_allclose(data.av[data.groups == "2"][0], [0.5, -0.5])
    np.testing.assert_allclose(data.av[data.groups == "3"][0], [-0.75, 0.0])
    np.testing.assert_allclose(data.av[data.groups == "5"][0], [0.125, 0.8], atol=1e-6)
    assert data.y[data.groups == "3"][0] == 3      # valence exactly at the midpoint counts as positive


def test_emomusic_dynamic_targets_per_window(emomusic):
    data = load_emomusic(*emomusic, targets="dynamic")
    _consistent(data)
    # song 2: arousal ends at 16.0 s; song 3: windows 15.0..16.5; song 5: 15.0 and 15.5
    assert pd.Series(data.groups).value_counts().to_dict() == {"2": 3, "3": 4, "5": 2}
    np.testing.assert_allclose(data.av[data.groups == "2"], [[0.1, -0.1], [0.2, -0.1], [0.3, -0.1]], atol=1e-6)
    np.testing.assert_allclose(data.X[data.groups == "5", 1], [15.0, 15.5])
    assert data.y[data.groups == "5"].tolist() == [1, 0]


def test_emomusic_refusals(emomusic):
    feats, notes = emomusic
    _edit(notes / "static_annotations.csv", lambda t: t.drop(columns="mean_valence"))
    with pytest.raises(MERError, match="static_annotations.csv: missing column 'mean_valence'"):
        load_emomusic(feats, notes)
    write_emomusic_static(notes / "static_annotations.csv", {2: (7.0, 0.5)})
    with pytest.raises(MERError, match=r"mean_valence: value 0.5 at '2' is outside the declared scale 1..9"):
        load_emomusic(feats, notes)
    write_emomusic_static(notes / "static_annotations.csv", {12: (7.0, 5.0)})
    with pytest.raises(MERError, match=r"feats: no feature window has an arousal and valence annotation"):
        load_emomusic(feats, notes)
    write_dynamic(notes / "arousal_cont_average.csv", {2: [0.1, 4.0]})
    with pytest.raises(MERError, match=r"arousal_cont_average.csv: sample columns: value 4 at \('2', 15500\)"):
        load_emomusic(feats, notes, targets="dynamic")


# --- DEAM ---------------------------------------------------------------------------------

@pytest.fixture
def deam(tmp_path):
    times = np.arange(14.0, 17.0, 0.5)
    feats = write_feature_folder(tmp_path / "features", {10: times, 20: times}, opensmile_names=True)
    write_dynamic(tmp_path / "arousal.csv", {10: [0.5, 0.3, -0.2], 20: [-0.6] * 5, 30: [0.1]})
    write_dynamic(tmp_path / "valence.csv", {10: [0.2] * 5, 20: [-0.1, 0.4], 30: [0.1]})
    return tmp_path, feats


def test_deam_dynamic_av_is_the_annotation_of_each_window(deam):
    root, feats = deam
    data = load_deam(feats, root / "arousal.csv", root / "valence.csv")
    _consistent(data)
    np.testing.assert_allclose(data.av[data.groups == "10"], [[0.5, 0.2], [0.3, 0.2], [-0.2, 0.2]], atol=1e-6)
    np.testing.assert_allclose(data.av[data.groups == "20"], [[-0.6, -0.1], [-0.6, 0.4]], atol=1e-6)
    np.testing.assert_allclose(data.X[:, 1], [15.0, 15.5, 16.0, 15.0, 15.5])


def test_deam_static_av_is_the_song_mean_of_its_dynamic_annotations(deam):
    root, feats = deam
    data = load_deam(feats, root / "arousal.csv", root / "valence.csv", targets="static")
    _consistent(data)
    assert len(data.X) == 12                        # every window of both songs
    np.testing.assert_allclose(data.av[data.groups == "10"][0], [0.2, 0.2], atol=1e-6)
    np.testing.assert_allclose(data.av[data.groups == "20"][0], [-0.6, 0.15], atol=1e-6)


def test_deam_static_file_with_leading_spaces(deam):
    root, feats = deam
    static = write_deam_static(root / "static_annotations_averaged_songs_1_2000.csv",
                               {10: (3.0, 6.0), 20: (5.0, 9.0), 40: (1.0, 1.0)})
    data = load_deam(feats, root / "arousal.csv", root / "valence.csv", targets="static", static_csv=static)
    _consistent(data)
    np.testing.assert_allclose(data.av[data.groups == "10"][0], [-0.5, 0.25])
    np.testing.assert_allclose(data.av[data.groups == "20"][0], [0.0, 1.0])
    with pytest.raises(MERError, match="static targets"):
        load_deam(feats, root / "arousal.csv", root / "valence.csv", static_csv=static)
    write_deam_static(static, {10: (3.0, 0.0)})
    with pytest.raises(MERError, match=r"valence_mean: value 0 at '10' is outside the declared scale 1..9"):
        load_deam(feats, root / "arousal.csv", root / "valence.csv", targets="static", static_csv=static)


def test_deam_refuses_annotations_outside_minus_one_to_one(deam):
    root, feats = deam
    write_dynamic(root / "valence.csv", {10: [5.0, 6.0]})   # a 1..9 file given as dynamic
    with pytest.raises(MERError, match=r"valence.csv: sample columns: value 5 at \('10', 15000\) is outside"):
        load_deam(feats, root / "arousal.csv", root / "valence.csv")


def test_real_deam_dynamic_annotations_are_on_minus_one_to_one():
    for name in ("arousal.csv", "valence.csv"):
        path = shared_path("deam", name)
        values = stack_dynamic(read_dynamic(path), "-1..1", f"{path}: sample columns")
        assert values.index.get_level_values(0).nunique() == 1802
        # the whole declared range is used, not 0..1 or 1..9
        assert values.min() < -0.5 and values.max() > 0.5 and values.abs().max() <= 1


# --- Emotify ------------------------------------------------------------------------------

def _emotify_annotations(tmp_path, rows):
    header = "track id, genre, " + ", ".join(emotify.GEMS) + ", mood, liked"
    lines = [header] + [f"{track}, pop, " + ", ".join("1" if g in ticked else "0" for g in emotify.GEMS) + ", 3, 1"
                        for track, ticked in rows]
    path = tmp_path / "annotations.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


ROWS = [(1, ["power", "tension"]), (1, ["tension"]), (2, ["sadness"]), (2, ["calmness", "nostalgia"]),
        (3, ["joyful_activation"]), (4, [])]


@pytest.mark.parametrize("scheme", ["av-zero", "av-median"])
def test_emotify_targets_scale_the_scheme_positions(tmp_path, scheme):
    path = _emotify_annotations(tmp_path, ROWS)
    av = emotify.track_av(emotify.read_ticks(path))
    if scheme == "av-median":
        av = av - av.median()
    targets = emotify.track_targets(path, scheme)
    np.testing.assert_allclose(targets, av / av.abs().max())
    assert targets.abs().max().tolist() == [1.0, 1.0]
    labels = emotify.track_labels(path, scheme)
    assert targets.index.tolist() == labels.index.tolist()
    np.testing.assert_array_equal(quadrant_from_av(targets["arousal"], targets["valence"]), labels)


def test_emotify_argmax_has_no_targets(tmp_path):
    with pytest.raises(MERError, match="'argmax' has no arousal/valence targets"):
        emotify.track_targets(_emotify_annotations(tmp_path, ROWS), "argmax")


@pytest.mark.parametrize("scheme", ["av-median", "av-zero", "argmax"])
def test_load_emotify_fills_av_for_av_schemes(tmp_path, monkeypatch, scheme):
    root = tmp_path / "emotify"
    root.mkdir()
    _emotify_annotations(root, ROWS)
    feats = write_feature_folder(tmp_path / "feats", {1: [0.0, 0.5], 2: [0.0], 3: [0.0, 0.5, 1.0], 4: [0.0]})
    monkeypatch.setattr(emotify, "emotify_features", lambda *args, **kwargs: feats)
    data = emotify.load_emotify(root, tmp_path / "cache", scheme=scheme, progress=False)
    labels = emotify.track_labels(root / "annotations.csv", scheme)
    assert data.groups.tolist() == ["1", "1", "2", "3", "3", "3"]       # track 4 has no ticks
    assert data.y.tolist() == labels.loc[data.groups].tolist()
    if scheme == "argmax":
        assert data.av is None
    else:
        _consistent(data)
        targets = emotify.track_targets(root / "annotations.csv", scheme)
        np.testing.assert_allclose(data.av, targets.loc[data.groups], atol=1e-6)


@pytest.mark.parametrize("scheme", ["av-zero", "av-median"])
def test_real_emotify_targets_give_the_labels(scheme):
    path = shared_path("emotify", "annotations.csv")
    targets = emotify.track_targets(path, scheme)
    labels = emotify.track_labels(path, scheme)
    assert len(targets) == 400 and targets.index.tolist() == labels.index.tolist()
    assert targets.abs().max().tolist() == [1.0, 1.0]
    np.testing.assert_array_equal(quadrant_from_av(targets["arousal"], targets["valence"]), labels)
    stored = targets.to_numpy(dtype=np.float32)     # as LabeledWindows keeps them
    np.testing.assert_array_equal(quadrant_from_av(stored[:, 0], stored[:, 1]), labels)


# --- generic ------------------------------------------------------------------------------

def _generic(tmp_path, labels):
    rng = np.random.default_rng(1)
    table = pd.DataFrame(rng.normal(size=(6, 4)), columns=list("abcd"))
    table.insert(0, "song_id", ["s1"] * 3 + ["s2"] * 2 + ["s3"])
    table.to_csv(tmp_path / "features.csv", index=False)
    labels.to_csv(tmp_path / "labels.csv", index=False)
    return tmp_path / "features.csv", tmp_path / "labels.csv"


def test_generic_scale_fills_av_from_song_means(tmp_path):
    features, labels = _generic(tmp_path, pd.DataFrame(
        {"song_id": ["s1", "s1", "s2", "s9"], "arousal": [7, 9, 2, 5], "valence": [3, 5, 5, 5]}))
    data = load_generic(features, labels, scale="1..9")
    assert data.av.dtype == np.float32 and len(data.X) == 5
    np.testing.assert_allclose(data.av[data.groups == "s1"], [[0.75, -0.25]] * 3)
    np.testing.assert_allclose(data.av[data.groups == "s2"], [[-0.75, 0.0]] * 2)
    assert data.y.tolist() == [1, 1, 1, 3, 3]
    assert load_generic(features, labels).av is None    # no scale: quadrants only, as before
    with pytest.raises(MERError, match="scale: unknown scale '1..5'"):
        load_generic(features, labels, scale="1..5")
    with pytest.raises(MERError, match=r"labels.csv: arousal: value 7 at 's1' is outside the declared scale -1..1"):
        load_generic(features, labels, scale="-1..1")


def test_generic_scale_needs_arousal_and_valence(tmp_path):
    features, labels = _generic(tmp_path, pd.DataFrame({"song_id": ["s1"], "quadrant": ["Q1"]}))
    with pytest.raises(MERError, match="labels.csv: a scale .0..1. was given, so 'arousal' and 'valence'"):
        load_generic(features, labels, scale="0..1")
