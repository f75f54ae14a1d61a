import os
import time

import numpy as np
import pandas as pd
import pytest

from trompa_mer import pool as P
from trompa_mer.errors import MERError, MERWarning
from trompa_mer.features import FEATURE_NAMES, write_feature_csv


def _song(rng, n):
    table = pd.DataFrame(rng.normal(size=(n, 260)).astype(np.float32), columns=FEATURE_NAMES)
    table.insert(0, "frameTime", np.arange(n) * 0.5)
    return table


@pytest.fixture
def feats(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "feats"
    tables = {}
    for name, n in [("b", 3), ("A", 5), ("c", 1)]:
        tables[name.lower()] = _song(rng, n)
        write_feature_csv(tables[name.lower()], folder / f"{name}.csv")
    return folder, tables


def test_pool_consolidates_sorted_by_song(feats):
    folder, tables = feats
    pool = P.load_pool(folder)
    assert pool.song_ids.tolist() == ["a", "b", "c"]
    assert pool.offsets.tolist() == [0, 5, 8, 9]
    assert pool.X.dtype == np.float32 and pool.X.shape == (9, 260)
    for song, table in tables.items():
        np.testing.assert_allclose(pool.windows(song), table[FEATURE_NAMES].to_numpy(np.float32))
    assert pool.song_of_window.tolist() == [0] * 5 + [1] * 3 + [2]
    np.testing.assert_allclose(pool.song_mean()[1], tables["b"][FEATURE_NAMES].to_numpy().mean(0), rtol=1e-5)
    sub = pool.subset(["c", "a"])
    assert sub.song_ids.tolist() == ["c", "a"] and sub.offsets.tolist() == [0, 1, 6]


def test_cache_is_reused_and_rebuilt_on_change(feats, monkeypatch):
    folder, tables = feats
    P.load_pool(folder)
    calls = []
    real = P._read_song
    monkeypatch.setattr(P, "_read_song", lambda path: calls.append(path.name) or real(path))
    again = P.load_pool(folder)
    assert calls == [] and again.shards is not None  # read from the sharded store
    # a new song: only that file is read
    write_feature_csv(_song(np.random.default_rng(5), 2), folder / "d.csv")
    grown = P.load_pool(folder)
    assert calls == ["d.csv"] and grown.song_ids.tolist() == ["a", "b", "c", "d"]
    # a rewritten song is re-read; a removed one disappears
    changed = _song(np.random.default_rng(9), 4)
    write_feature_csv(changed, folder / "b.csv")
    os.utime(folder / "b.csv", ns=(time.time_ns(), time.time_ns() + 10_000_000))
    (folder / "c.csv").unlink()
    after = P.load_pool(folder)
    assert calls[-1] == "b.csv" and after.song_ids.tolist() == ["a", "b", "d"]
    np.testing.assert_allclose(after.windows("b"), changed[FEATURE_NAMES].to_numpy(np.float32))


def test_pool_refusals(tmp_path, feats):
    with pytest.raises(MERError, match="not found"):
        P.load_pool(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MERError, match="no feature CSVs"):
        P.load_pool(tmp_path / "empty")
    folder, _ = feats
    whole = P.load_pool(folder)
    # issue 13: one unreadable CSV is skipped with a warning naming it, not a failure of the pool
    (folder / "broken.csv").write_text("frameTime;x\n0;1\n")
    good = sorted(folder.glob("*.csv"))[0]
    text = good.read_text()
    (folder / "truncated.csv").write_text(text[:len(text) // 2])
    for _ in range(2):  # built, then from the cache: reported both times
        with pytest.warns(MERWarning, match="broken.csv: skipped") as caught:
            pool = P.load_pool(folder)
        assert any("truncated.csv" in str(w.message) for w in caught)
        assert sorted(pool.skipped) == ["broken.csv", "truncated.csv"]
        assert pool.song_ids.tolist() == whole.song_ids.tolist()
        np.testing.assert_array_equal(pool.X, whole.X)
    (folder / "truncated.csv").write_text(text)  # extracted again: back in the pool
    with pytest.warns(MERWarning, match="broken.csv"):
        assert "truncated" in P.load_pool(folder)
    (folder / "broken.csv").unlink()
    (folder / "truncated.csv").unlink()
    assert P.load_pool(folder).skipped == {}
    with pytest.raises(MERError, match="no features for song 'zz'"):
        P.load_pool(folder).subset(["zz"])
