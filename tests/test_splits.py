"""Pre-training splits: artist-grouped k-fold never leaks an artist, holds every song out once
per repeat; the shuffle protocol is the historical GroupShuffleSplit; the paper protocol
ignores artists."""
import numpy as np
import pytest
from sklearn.model_selection import GroupShuffleSplit

from trompa_mer.datasets.generic import LabeledWindows
from trompa_mer.errors import MERError
from trompa_mer.splits import make_splits


def _data(n_songs=60, windows=3, artists=True, seed=0):
    rng = np.random.default_rng(seed)
    song_y = rng.integers(0, 4, n_songs)
    songs = np.repeat([f"s{i:03d}" for i in range(n_songs)], windows)
    # 20 artists of 3 songs each, in random order
    artist_of_song = np.repeat(np.arange(n_songs), 1)[np.argsort(rng.random(n_songs))] // 3
    groups = np.repeat([f"a{a}" for a in artist_of_song], windows) if artists else None
    return LabeledWindows(rng.normal(size=(n_songs * windows, 2)).astype(np.float32), np.repeat(song_y, windows),
                          songs, ["f0", "f1"], split_groups=groups)


def test_kfold_by_artist_never_leaks_and_holds_each_song_out_once_per_repeat():
    data = _data()
    splits, info = make_splits(data, "kfold", cv=5, seed=3, repeats=3)
    assert len(splits) == 15 and info["grouped_by"] == "artist" and info["repeats"] == 3
    for r in range(3):
        held = np.concatenate([test for _, test in splits[5 * r:5 * r + 5]])
        assert np.sort(held).tolist() == list(range(len(data.y)))  # every window once per repeat
    for train, test in splits:
        assert not set(data.split_groups[train]) & set(data.split_groups[test])
        assert not set(data.groups[train]) & set(data.groups[test])
        assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(data.y)
    # repeats differ (other seeds), and the same seed gives the same splits
    assert not np.array_equal(splits[0][1], splits[5][1])
    again, _ = make_splits(data, "kfold", cv=5, seed=3, repeats=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again))


def test_kfold_without_artists_groups_by_song():
    data = _data(artists=False)
    splits, info = make_splits(data, "kfold", cv=4, seed=0)
    assert info["grouped_by"] == "song"
    for train, test in splits:
        assert not set(data.groups[train]) & set(data.groups[test])


def test_paper_protocol_ignores_artists_but_keeps_songs_whole():
    data = _data(n_songs=80)
    splits, info = make_splits(data, "paper", cv=10, seed=1)
    assert info["grouped_by"] == "song" and len(splits) == 10
    leaked = sum(bool(set(data.split_groups[train]) & set(data.split_groups[test])) for train, test in splits)
    assert leaked > 0  # an artist's other songs train: why this figure is only for comparison
    for train, test in splits:
        assert not set(data.groups[train]) & set(data.groups[test])


def test_shuffle_is_the_historical_group_shuffle_split():
    data = _data(artists=False)
    splits, info = make_splits(data, "shuffle", cv=5, test_size=0.2, seed=1987)
    expected = GroupShuffleSplit(n_splits=5, test_size=0.2, random_state=1987).split(data.X, data.y, data.groups)
    for (train, test), (train2, test2) in zip(splits, expected):
        np.testing.assert_array_equal(train, train2)
        np.testing.assert_array_equal(test, test2)
    assert info["method"] == "GroupShuffleSplit"


def test_kfold_stratifies_quadrants():
    data = _data(n_songs=200, artists=False, seed=4)
    splits, _ = make_splits(data, "kfold", cv=5, seed=0)
    share = np.bincount(data.y, minlength=4) / len(data.y)
    for _, test in splits:
        np.testing.assert_allclose(np.bincount(data.y[test], minlength=4) / len(test), share, atol=0.05)


@pytest.mark.parametrize("kwargs, message", [
    ({"protocol": "loo"}, "--protocol: expected one of shuffle, kfold, paper"),
    ({"protocol": "shuffle", "repeats": 2}, "--repeats: only with --protocol kfold or paper"),
    ({"protocol": "kfold", "cv": 61}, "-cv 61: more folds than artists \\(20\\)"),
    ({"protocol": "kfold", "repeats": 0}, "--repeats: expected a positive whole number"),
])
def test_bad_protocols_are_refused(kwargs, message):
    with pytest.raises(MERError, match=message):
        make_splits(_data(n_songs=60), **kwargs)
