"""Arousal/valence regression members: targets, probabilities, update, persistence, committee."""
import numpy as np
import pytest
from scipy.stats import norm
from sklearn.preprocessing import StandardScaler

from trompa_mer.committee import Committee, Songs
from trompa_mer.errors import MERError
from trompa_mer.members import make_member
from trompa_mer.quadrants import Labels, quadrant_from_av
from trompa_mer.registry import member_class
from trompa_mer.regression import (MIN_SPREAD, QUADRANT_MIDDLES, SGDAVMember, XGBAVMember,
                                   quadrant_centroids, quadrant_log_proba)

KINDS = [SGDAVMember, lambda: XGBAVMember(rounds=20, update_rounds=3)]


def corpus(n=600, d=12, seed=0):
    """Windows whose arousal follows feature 0 and valence feature 1."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    av = np.clip(np.c_[0.5 * X[:, 0], 0.4 * X[:, 1]] + rng.normal(0, 0.05, (n, 2)), -1, 1)
    return X, av


def test_quadrant_probabilities_are_the_product_of_two_gaussian_tails():
    mu = np.array([[0.3, -0.1]])
    spread = np.array([0.2, 0.4])
    p = np.exp(quadrant_log_proba(mu, spread))[0]
    pa, pv = norm.cdf(0.3 / 0.2), norm.cdf(-0.1 / 0.4)
    assert p == pytest.approx([pa * pv, pa * (1 - pv), (1 - pa) * (1 - pv), (1 - pa) * pv])
    assert p.sum() == pytest.approx(1.0)
    assert np.argmax(p) == quadrant_from_av(0.3, -0.1)


def test_centroids_are_the_mean_targets_per_quadrant_and_the_middle_where_none():
    labels = Labels.from_av([[0.2, 0.4], [0.6, 0.8], [-0.5, -0.1]])
    c = quadrant_centroids(labels)
    assert c[0] == pytest.approx([0.4, 0.6])
    assert c[2] == pytest.approx([-0.5, -0.1])
    assert c[1] == pytest.approx(QUADRANT_MIDDLES[1]) and c[3] == pytest.approx(QUADRANT_MIDDLES[3])


@pytest.mark.parametrize("make", KINDS)
def test_member_learns_av_and_its_quadrants(make):
    X, av = corpus()
    member = make().fit(X[:500], av[:500])
    pred = member.predict_av(X[500:])
    assert np.corrcoef(pred[:, 0], av[500:, 0])[0, 1] > 0.9
    assert np.corrcoef(pred[:, 1], av[500:, 1])[0, 1] > 0.9
    proba = member.predict_proba(X[500:])
    assert proba.shape == (100, 4) and np.allclose(proba.sum(axis=1), 1)
    truth = quadrant_from_av(av[500:, 0], av[500:, 1])
    assert (proba.argmax(axis=1) == truth).mean() > 0.8
    assert np.all(member.spread >= MIN_SPREAD)


@pytest.mark.parametrize("make", KINDS)
def test_update_moves_towards_answers_own_values_or_quadrant_centroid(make):
    X, av = corpus()
    member = make().fit(X, av)
    song = X[:40]
    before = member.predict_av(song).mean(axis=0)
    # quadrant-only answers: Q3 -> towards the Q3 centroid (a-, v-)
    q3 = member.copy().update(song, Labels(np.full(40, 2)))
    after = q3.predict_av(song).mean(axis=0)
    centroid = member.centroids[2]
    assert np.linalg.norm(after - centroid) < np.linalg.norm(before - centroid)
    # own values: towards them
    target = np.array([0.9, -0.9])
    own = member.copy().update(song, Labels.from_av(np.tile(target, (40, 1))))
    assert np.linalg.norm(own.predict_av(song).mean(axis=0) - target) < np.linalg.norm(before - target)
    # plain quadrant indices work as quadrant-only labels; the original is untouched by copies
    member.copy().update(song, np.full(40, 2))
    assert member.predict_av(song).mean(axis=0) == pytest.approx(before)


@pytest.mark.parametrize("make", KINDS)
def test_save_load_round_trip_and_registry(make, tmp_path):
    X, av = corpus()
    member = make().fit(X, av)
    member.set_spread([0.3, 0.25])
    member.temperature = 1.5
    files = member.save(tmp_path / "m")
    assert (tmp_path / files[0]).exists()
    loaded = member_class(member.algorithm).load(tmp_path / "m")
    assert np.array_equal(loaded.predict_proba(X), member.predict_proba(X))
    assert np.array_equal(loaded.centroids, member.centroids) and loaded.spread == pytest.approx([0.3, 0.25])
    # updates after a round trip match updates in memory
    a = member.copy().update(X[:30], np.zeros(30, int)).predict_av(X[:5])
    b = loaded.update(X[:30], np.zeros(30, int)).predict_av(X[:5])
    assert np.allclose(a, b, atol=1e-6)


def test_damaged_metadata_is_refused(tmp_path):
    X, av = corpus()
    SGDAVMember().fit(X, av).save(tmp_path / "m")
    meta = (tmp_path / "m.json").read_text().replace('"spread": [', '"spread": [-1.0, ')
    (tmp_path / "m.json").write_text(meta)
    with pytest.raises(MERError, match="spread"):
        SGDAVMember.load(tmp_path / "m")


def test_fit_needs_av_on_every_row_and_labels_are_checked():
    X, av = corpus(n=50)
    with pytest.raises(MERError, match="arousal and valence on every row"):
        SGDAVMember().fit(X, np.zeros(50, int))
    with pytest.raises(MERError, match="-1..1"):
        Labels.from_av(np.full((3, 2), 1.5))
    with pytest.raises(MERError, match="disagrees"):
        Labels([0], [[-0.5, 0.5]])
    with pytest.raises(MERError, match="together"):
        Labels([0], [[0.5, np.nan]])
    with pytest.raises(MERError, match="rows"):
        SGDAVMember().fit(X, av[:10])


def test_committee_mixes_classifiers_and_regressors():
    X, av = corpus(n=800)
    y = quadrant_from_av(av[:, 0], av[:, 1])
    scaler = StandardScaler().fit(X)
    Z = scaler.transform(X).astype(np.float32)
    members = [("sgd_0", make_member("sgd").fit(Z, y)),
               ("sgd-av_0", SGDAVMember().fit(Z, av)),
               ("xgb-av_0", XGBAVMember(rounds=10, update_rounds=2).fit(Z, av))]
    committee = Committee(members, scaler, [f"f{i}" for i in range(X.shape[1])])
    songs = Songs.from_windows(X[:100], np.repeat(np.arange(10), 10))
    proba = committee.song_proba(songs)
    assert proba.shape == (3, 10, 4) and np.allclose(proba.sum(axis=2), 1)
    assert committee.of_target("av") == [1, 2]
    song_av = committee.song_av(songs)
    assert song_av.shape == (2, 10, 2)
    windows = committee.window_av(X[:100])
    assert song_av[0, 3] == pytest.approx(windows[0, 30:40].mean(axis=0))
    # an update with the listener's own values reaches the regressors; quadrants the classifier
    before = committee.copy()
    labels = Labels([1] * 10, np.tile([0.8, -0.8], (10, 1)))
    committee.update(songs, labels)
    moved = committee.song_av(songs) - before.song_av(songs)
    assert np.all(moved[:, :, 0] > 0) and np.all(moved[:, :, 1] < 0)
    assert not np.allclose(committee.song_proba(songs)[0], before.song_proba(songs)[0])
    # quadrant indices still update every member
    committee.update(songs, np.full(10, 3))


def test_sgd_av_is_not_thrown_by_extreme_windows():
    """A few windows with standardized values near 100 (Emotify has them) made squared-loss SGD
    diverge; the member clips its input, so it still learns the relation."""
    X, av = corpus(n=2000, seed=3)
    X[::97, 2] = 100.0
    member = SGDAVMember().fit(X[:1500], av[:1500])
    pred = member.predict_av(X[1500:])
    assert np.corrcoef(pred[:, 0], av[1500:, 0])[0, 1] > 0.8
    unclipped = SGDAVMember(clip=1e9).fit(X[:1500], av[:1500]).predict_av(X[1500:])
    assert np.mean((pred - av[1500:]) ** 2) < np.mean((unclipped - av[1500:]) ** 2)
