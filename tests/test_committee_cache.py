"""Cached song probabilities: reused for the same saved committee on the same pool only."""
import os

import numpy as np
import pandas as pd
import pytest

from trompa_mer.committee import Committee
from trompa_mer.pool_scoring import SONG_PROBA_CACHE, cached_song_proba
from trompa_mer.features import FEATURE_NAMES, write_feature_csv
from trompa_mer.pool import load_pool
from test_committee import _committee, _raw


@pytest.fixture
def setup(tmp_path):
    X, y, sow = _raw()
    folder = tmp_path / "committee"
    _committee(X, y).save(folder)
    feats = tmp_path / "feats"
    for s in range(6):
        table = pd.DataFrame(X[sow == s], columns=FEATURE_NAMES)
        table.insert(0, "frameTime", np.arange(len(table)) * 0.5)
        write_feature_csv(table, feats / f"s{s}.csv")
    return folder, feats, X, y


def _scored(committee, feats, calls):
    pool = load_pool(feats)

    def compute():
        calls.append(1)
        return committee.song_proba(pool)

    return cached_song_proba(committee, feats, pool.song_ids, compute)


def test_second_call_reads_the_cache_and_gives_the_same_array(setup):
    folder, feats, _, _ = setup
    calls = []
    first = _scored(Committee.load(folder), feats, calls)
    second = _scored(Committee.load(folder), feats, calls)
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(second, Committee.load(folder).song_proba(load_pool(feats)))
    assert len(list((feats / SONG_PROBA_CACHE).glob("*.npy"))) == 1


def test_a_retrained_committee_is_scored_again(setup, tmp_path):
    folder, feats, X, y = setup
    calls = []
    before = _scored(Committee.load(folder), feats, calls)
    committee = Committee.load(folder)
    committee.update(X[:20], np.zeros(20, dtype=int))
    assert committee.content_digest() is None  # updated in memory: never cached
    in_memory = _scored(committee, feats, calls)
    assert len(calls) == 2 and not np.allclose(in_memory, before)
    committee.save(tmp_path / "retrained")
    after = _scored(Committee.load(tmp_path / "retrained"), feats, calls)
    assert len(calls) == 3
    np.testing.assert_array_equal(after, in_memory)
    _scored(Committee.load(tmp_path / "retrained"), feats, calls)
    assert len(calls) == 3


def test_a_changed_pool_is_scored_again(setup):
    folder, feats, X, _ = setup
    calls = []
    _scored(Committee.load(folder), feats, calls)
    path = feats / "s0.csv"
    table = pd.DataFrame(X[:6] + 1.0, columns=FEATURE_NAMES)
    table.insert(0, "frameTime", np.arange(len(table)) * 0.5)
    write_feature_csv(table, path)
    os.utime(path, ns=(1, 1))  # a different mtime even on a coarse clock
    changed = _scored(Committee.load(folder), feats, calls)
    assert len(calls) == 2
    np.testing.assert_array_equal(changed, Committee.load(folder).song_proba(load_pool(feats)))
    (feats / "s5.csv").unlink()
    fewer = _scored(Committee.load(folder), feats, calls)
    assert len(calls) == 3 and fewer.shape[1] == 5


def test_a_damaged_cache_file_is_recomputed(setup):
    folder, feats, _, _ = setup
    calls = []
    first = _scored(Committee.load(folder), feats, calls)
    (cached,) = (feats / SONG_PROBA_CACHE).glob("*.npy")
    cached.write_bytes(b"not numpy")
    again = _scored(Committee.load(folder), feats, calls)
    assert len(calls) == 2
    np.testing.assert_array_equal(first, again)


# --- TreeMarginCache: a retrained XGBoost member evaluates only its new rounds ---------------
def _pool_proba(committee, feats, cache=True, chunk_windows=60_000):
    from trompa_mer.pool_scoring import TreeMarginCache
    from trompa_mer.pool_scoring import pool_song_proba

    pool = load_pool(feats)
    margins = TreeMarginCache(feats, committee.scaler, pool.signature) if cache else None
    return pool_song_proba(committee, pool, chunk_windows=chunk_windows, margin_cache=margins), pool


def _xgb_indices(committee):
    return [i for i, (_, m) in enumerate(committee.members) if m.algorithm == "xgb"]


def test_tree_margins_of_the_leading_rounds_are_reused_after_an_update(setup, monkeypatch):
    from trompa_mer.pool_scoring import TREE_MARGIN_CACHE, TreeMarginCache

    folder, feats, X, y = setup
    base = Committee.load(folder)
    _pool_proba(base, feats)  # stores the pre-trained trees' margins
    stored = sorted(p.name for p in (feats / TREE_MARGIN_CACHE).glob("*.npy"))
    assert len(stored) == len(_xgb_indices(base)) and all(n.startswith("r00005-") for n in stored)

    updated = Committee.load(folder)
    updated.update(X[:12], np.full(12, 2))  # appends update_rounds=2 rounds to each booster
    pool = load_pool(feats)
    cache = TreeMarginCache(feats, updated.scaler, pool.signature)
    for i in _xgb_indices(updated):
        rounds, _ = cache.lookup(updated.members[i][1], len(pool.X))
        assert rounds == 5 < updated.members[i][1].booster.num_boosted_rounds() == 7

    # the new rounds alone are evaluated: inplace_predict sees iteration_range (5, 7)
    import xgboost

    ranges = []
    real = xgboost.Booster.inplace_predict
    monkeypatch.setattr(xgboost.Booster, "inplace_predict",
                        lambda self, *a, **k: ranges.append(k.get("iteration_range")) or real(self, *a, **k))
    with_cache, _ = _pool_proba(updated, feats, chunk_windows=20)
    assert ranges and set(ranges) == {(5, 7)}
    monkeypatch.setattr(xgboost.Booster, "inplace_predict", real)
    without, _ = _pool_proba(updated, feats, cache=False)
    np.testing.assert_allclose(with_cache, without, rtol=0, atol=1e-6)
    assert not np.allclose(with_cache, _pool_proba(base, feats)[0])  # the update did change them


def test_tree_margins_miss_when_the_trees_the_scaler_or_the_pool_change(setup, tmp_path):
    from trompa_mer.pool_scoring import TREE_MARGIN_CACHE, TreeMarginCache
    from test_committee import _committee as build

    folder, feats, X, y = setup
    base = Committee.load(folder)
    _pool_proba(base, feats)
    pool = load_pool(feats)
    xgb = base.members[_xgb_indices(base)[0]][1]
    assert TreeMarginCache(feats, base.scaler, pool.signature).lookup(xgb, len(pool.X)) is not None

    other = build(X + 0.5, y)  # other trees and another scaler
    other_xgb = other.members[_xgb_indices(other)[0]][1]
    assert TreeMarginCache(feats, base.scaler, pool.signature).lookup(other_xgb, len(pool.X)) is None
    assert TreeMarginCache(feats, other.scaler, pool.signature).lookup(xgb, len(pool.X)) is None
    assert TreeMarginCache(feats, base.scaler, "another pool").lookup(xgb, len(pool.X)) is None

    # a damaged cache file is ignored and the answer stays right
    for path in (feats / TREE_MARGIN_CACHE).glob("*.npy"):
        path.write_bytes(path.read_bytes()[:40])
    assert TreeMarginCache(feats, base.scaler, pool.signature).lookup(xgb, len(pool.X)) is None
    again, _ = _pool_proba(base, feats)
    np.testing.assert_allclose(again, _pool_proba(base, feats, cache=False)[0], rtol=0, atol=1e-6)


def test_linear_members_scored_together_equal_each_member_alone(setup):
    folder, _, X, _ = setup
    committee = Committee.load(folder)
    together = committee.window_proba(X)
    Xs = committee.transform(X)
    for row, (_, member) in enumerate(committee.members):
        # together: float64 standardized rows (linear) and float32 margins (trees); alone: the
        # float32 rows of transform() and a float32 log-softmax
        np.testing.assert_allclose(together[row], member.predict_proba(Xs), rtol=0, atol=1e-6)
