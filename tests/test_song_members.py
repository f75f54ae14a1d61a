"""Song members (input kind "song-stats"): the song statistics, the committee's input and
update for them, save/load with the standardization, and pre-training them on songs."""
import json

import numpy as np
import pytest

from trompa_mer import members as M
from trompa_mer import pretrain
from trompa_mer.committee import Committee, song_statistics
from trompa_mer.datasets.generic import LabeledWindows
from trompa_mer.errors import MERError


def test_song_statistics_equal_per_song_numpy_in_any_window_order():
    rng = np.random.default_rng(0)
    counts = [3, 1, 5, 2]
    song_of_window = np.repeat(np.arange(4), counts)
    Z = rng.normal(size=(len(song_of_window), 6)).astype(np.float32)
    expected = np.array([np.concatenate([Z[song_of_window == s].astype(np.float64).mean(axis=0),
                                         Z[song_of_window == s].astype(np.float64).std(axis=0)]) for s in range(4)])
    np.testing.assert_allclose(song_statistics(Z, song_of_window, 4), expected, rtol=1e-6, atol=1e-7)
    Z64 = Z.astype(np.float64)
    kept = Z64.copy()
    song_statistics(Z64, song_of_window, 4)
    np.testing.assert_array_equal(Z64, kept)  # the input is never centred in place
    order = rng.permutation(len(song_of_window))
    np.testing.assert_allclose(song_statistics(Z[order], song_of_window[order], 4), expected, rtol=1e-6, atol=1e-7)
    # a song without windows: zeros; the mean comes first, then the deviation
    out = song_statistics(Z, song_of_window, 5)
    assert out.shape == (5, 12) and not out[4].any()
    assert out[1, 6:].max() == 0  # one window: no deviation


def _windows(n_songs=24, windows=5, F=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n_songs) % 4
    X = rng.normal(size=(n_songs * windows, F)).astype(np.float32)
    X[:, 0] += 3 * np.repeat(y, windows)
    X[:, 1] *= 1 + np.repeat(y == 2, windows) * 3  # Q3 varies more within a song: only the sd shows it
    return X, y, np.repeat(np.arange(n_songs), windows)


def _committee(X, y, sow, algorithm="song-sgd"):
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X)
    committee = Committee([], scaler, [f"f{i}" for i in range(X.shape[1])])
    rows = song_statistics(committee.transform(X), sow, len(y))  # what the committee hands its song members
    member = M.make_member(algorithm).fit(rows, y)
    return Committee([("m0", member)], scaler, committee.feature_names), member, rows


@pytest.mark.parametrize("algorithm", ["song-sgd", "song-gnb", "song-xgb"])
def test_committee_feeds_song_members_one_row_per_song(algorithm):
    X, y, sow = _windows()
    committee, member, rows = _committee(X, y, sow, algorithm)
    proba = committee.song_proba(X, sow)
    np.testing.assert_array_equal(proba[0], member.predict_proba(rows))
    assert (proba[0].argmax(axis=1) == y).mean() > 0.7


def test_committee_update_trains_song_members_on_song_rows(tmp_path):
    X, y, sow = _windows()
    committee, member, rows = _committee(X, y, sow)
    reference = member.copy()
    batch = sow < 3  # songs 0..2
    committee.update(X[batch], np.array([2, 2, 2]), song_of_window=sow[batch])
    reference.update(rows[:3], np.array([2, 2, 2]))  # one row per song, not one per window
    np.testing.assert_array_equal(committee.members[0][1].predict_proba(rows), reference.predict_proba(rows))


def test_song_member_save_load_keeps_its_standardization(tmp_path):
    X, y, sow = _windows()
    committee, member, rows = _committee(X, y, sow)
    committee.save(tmp_path / "c")
    loaded = Committee.load(tmp_path / "c")
    np.testing.assert_array_equal(loaded.song_proba(X, sow), committee.song_proba(X, sow))
    meta = json.loads((tmp_path / "c" / "m0.json").read_text())
    assert meta["input_kind"] == "song-stats" and len(meta["song_center"]) == 2 * X.shape[1]
    np.testing.assert_allclose(meta["song_center"], rows.mean(axis=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(meta["song_scale"], rows.std(axis=0), rtol=1e-6)


@pytest.mark.parametrize("field, value, message", [
    ("song_center", [0.0], "field 'song_center': expected 8 finite numbers"),
    ("song_scale", [1.0] * 7 + [float("nan")], "field 'song_scale': expected 8 finite numbers"),
    ("song_scale", [1.0] * 7 + [0.0], "field 'song_scale': expected positive numbers"),
    ("song_center", "zeros", "field 'song_center': expected 8 finite numbers"),
])
def test_a_doctored_standardization_is_refused(tmp_path, field, value, message):
    X, y, sow = _windows()
    _, member, _ = _committee(X, y, sow)
    member.save(tmp_path / "m0")
    meta_path = tmp_path / "m0.json"
    meta = json.loads(meta_path.read_text())
    meta[field] = value
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(MERError, match=message):
        M.SongSGDMember.load(tmp_path / "m0")


def test_pretrain_fits_song_members_on_training_songs_only():
    """A song member of split k is the member fitted on split k's training songs' statistics
    (standardized by the committee scaler), with balanced song weights."""
    X, y, sow = _windows(n_songs=40)
    groups = np.array([f"s{i:02d}" for i in sow])
    data = LabeledWindows(X, np.repeat(y, 5), groups, [f"f{i}" for i in range(4)])
    report, committee = pretrain.pretrain(data, ["song-sgd"], cv=2, protocol="kfold", seed=0, progress=False,
                                         calibrate=False)
    from trompa_mer.splits import make_splits

    splits, _ = make_splits(data, "kfold", cv=2, seed=0)
    from sklearn.utils.class_weight import compute_sample_weight

    rows = song_statistics(committee.scaler.transform(X).astype(np.float32), sow, 40)
    for k, (train, _) in enumerate(splits):
        songs = np.unique(sow[train])
        expected = M.make_member("song-sgd").fit(rows[songs], y[songs],
                                                 sample_weight=compute_sample_weight("balanced", y[songs]))
        np.testing.assert_allclose(committee.members[k][1].predict_proba(rows), expected.predict_proba(rows),
                                   atol=1e-9)
    assert report["song"]["song-sgd"]["f1_macro"][0] > 0.5
    assert "song-sgd" not in report["window"]  # song members are scored on songs only
