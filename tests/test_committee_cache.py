"""Cached song probabilities: reused for the same saved committee on the same pool only."""
import os

import numpy as np
import pandas as pd
import pytest

from trompa_mer.committee import SONG_PROBA_CACHE, Committee, cached_song_proba
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
