"""Cache invalidation keys, one component at a time.

Three caches answer from disk when their key matches: the pool store (`pool.load_pool`,
keyed by the CSVs' names, sizes and modification times), the song-probability cache
(`pool_scoring.cached_song_proba`: committee digest + pool listing + song order) and the
tree-margin cache (`pool_scoring.TreeMarginCache`: pool signature, code version, scaler
statistics and the exact bytes of a member's leading trees). Each test changes exactly one
component (a file's size with its old time restored, its time with the same size, its name,
the song order, the scaler's mean alone, ...) and checks the stale answer is not served;
negative controls check that an unchanged key is served from the cache (or the tests would
pass with no cache at all).
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from trompa_mer import pool as P
from trompa_mer.committee import Committee, content_digest
from trompa_mer.pool_scoring import (SONG_PROBA_CACHE, SONG_PROBA_CACHE_KEEP, TREE_MARGIN_CACHE,
                                     TREE_MARGIN_CACHE_KEEP, TreeMarginCache, cached_song_proba)
from trompa_mer.features import FEATURE_NAMES, write_feature_csv
from test_committee import _committee, _raw


# --- files whose one key component changes -----------------------------------------------
def _write_song(path, values: np.ndarray):
    table = pd.DataFrame(values, columns=FEATURE_NAMES)
    table.insert(0, "frameTime", np.arange(len(values)) * 0.5)
    write_feature_csv(table, path)


def _same_size_new_values(path) -> np.ndarray:
    """Rewrite `path` with other values and exactly the same byte length, keeping its time."""
    st = path.stat()
    text = path.read_text()
    header, first, rest = text.split("\n", 2)
    cells = first.split(";")
    # the first feature cell of the first row: change its leading digit, same length
    cell = cells[1]
    i = next(k for k, ch in enumerate(cell) if ch.isdigit())
    cells[1] = cell[:i] + ("7" if cell[i] != "7" else "3") + cell[i + 1:]
    path.write_text("\n".join([header, ";".join(cells), rest]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    return pd.read_csv(path, sep=";")[FEATURE_NAMES].to_numpy(np.float32)


def _bigger_file_old_time(path, values) -> np.ndarray:
    """Rewrite `path` with one more window (a different size) and restore its old time."""
    st = path.stat()
    values = np.vstack([values, values[:1] + 1.0])
    _write_song(path, values)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size != st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    return values.astype(np.float32)


@pytest.fixture
def feats(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "feats"
    songs = {}
    for name, n in (("s0", 4), ("s1", 3), ("s2", 5)):
        songs[name] = rng.normal(loc=2.0, size=(n, len(FEATURE_NAMES))).round(3)
        _write_song(folder / f"{name}.csv", songs[name])
    # every file the same, older time, so a "newer time" is really newer
    for i, name in enumerate(songs):
        os.utime(folder / f"{name}.csv", ns=(10**18 + i, 10**18 + i))
    return folder, songs


# --- the pool store ----------------------------------------------------------------------
def test_pool_cache_is_served_when_nothing_changed(feats, monkeypatch):
    folder, _ = feats
    first = P.load_pool(folder)
    reads = []
    monkeypatch.setattr(P, "_read_song", lambda path: reads.append(path.name))
    again = P.load_pool(folder)
    assert reads == [] and again.shards is not None  # from the sharded store
    assert again.signature == first.signature == P.listing_signature(P.folder_listing(folder))
    np.testing.assert_array_equal(again.X, first.X)


def test_pool_same_size_newer_time_is_reread(feats):
    folder, songs = feats
    before = P.load_pool(folder)
    path = folder / "s1.csv"
    new_values = _same_size_new_values(path)
    assert P.load_pool(folder).signature == before.signature  # size and time unchanged: same key
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # newer by one nanosecond, same size
    after = P.load_pool(folder)
    assert after.signature != before.signature
    np.testing.assert_array_equal(after.windows("s1"), new_values)
    assert not np.array_equal(after.windows("s1"), before.windows("s1"))
    np.testing.assert_array_equal(after.windows("s0"), songs["s0"].astype(np.float32))


def test_pool_other_size_old_time_is_reread(feats):
    folder, songs = feats
    before = P.load_pool(folder)
    new_values = _bigger_file_old_time(folder / "s2.csv", songs["s2"])
    after = P.load_pool(folder)
    assert after.signature != before.signature
    assert after.offsets.tolist() == [0, 4, 7, 13]
    np.testing.assert_array_equal(after.windows("s2"), new_values)


def test_pool_renamed_file_same_size_and_time_is_another_song(feats):
    folder, _ = feats
    before = P.load_pool(folder)
    st = (folder / "s2.csv").stat()
    os.rename(folder / "s2.csv", folder / "s3.csv")
    os.utime(folder / "s3.csv", ns=(st.st_atime_ns, st.st_mtime_ns))
    after = P.load_pool(folder)
    assert after.song_ids.tolist() == ["s0", "s1", "s3"] and after.signature != before.signature
    np.testing.assert_array_equal(after.windows("s3"), before.windows("s2"))


def test_pool_listing_counts_csv_files_only(feats):
    folder, _ = feats
    listing = P.folder_listing(folder)
    assert listing == {f"s{i}.csv": [(folder / f"s{i}.csv").stat().st_size, 10**18 + i] for i in range(3)}
    (folder / "notes.txt").write_text("not a song")
    (folder / "dir.csv").mkdir()
    (folder / "UPPER.CSV").write_bytes((folder / "s0.csv").read_bytes())
    listing = P.folder_listing(folder)
    assert set(listing) == {"s0.csv", "s1.csv", "s2.csv", "UPPER.CSV"}
    assert P.load_pool(folder).song_ids.tolist() == ["s0", "s1", "s2", "upper"]


def test_pool_listing_signature_changes_with_each_component():
    base = {"a.csv": [100, 5], "b.csv": [200, 6]}
    sig = P.listing_signature(base)
    assert P.listing_signature({"b.csv": [200, 6], "a.csv": [100, 5]}) == sig  # order does not matter
    for other in ({"a.csv": [101, 5], "b.csv": [200, 6]}, {"a.csv": [100, 6], "b.csv": [200, 6]},
                  {"c.csv": [100, 5], "b.csv": [200, 6]}, {"a.csv": [100, 5]},
                  {"a.csv": [5, 100], "b.csv": [200, 6]}):
        assert P.listing_signature(other) != sig, other


def _tamper_cache(folder, version=None, feature_names=None):
    """Mark the cached X (+1000), its checksum in meta.json updated to match (a cache that
    verifies, holding other values), and optionally change the cache's version or layout."""
    import hashlib

    cache = folder / P.CACHE_NAME
    X = np.load(cache / "X.npy")
    np.save(cache / "X.npy", X + 1000)
    meta = json.loads((cache / "meta.json").read_text())
    meta["files"]["X"] = {"sha256": hashlib.sha256((cache / "X.npy").read_bytes()).hexdigest(), "stat": None}
    if version is not None:
        meta["version"] = version
    if feature_names is not None:
        meta["feature_names"] = feature_names
    (cache / "meta.json").write_text(json.dumps(meta))


def test_pool_cache_of_another_version_or_layout_is_rebuilt(feats):
    folder, songs = feats
    P.write_single_file_store(folder)  # the single-file store of before
    _tamper_cache(folder)
    assert P.load_pool(folder).X.max() > 900, "negative control: an unchanged key is served from the cache"
    P.load_pool(folder, cache=False)
    for change in ({"version": P.CACHE_VERSION + 1}, {"feature_names": list(reversed(FEATURE_NAMES))}):
        shutil.rmtree(folder / P.pool_shards.STORE_NAME, ignore_errors=True)
        P.write_single_file_store(folder)
        _tamper_cache(folder, **change)
        pool = P.load_pool(folder)
        assert np.asarray(pool.X).max() < 900, change
        np.testing.assert_array_equal(pool.windows("s0"), songs["s0"].astype(np.float32))
        # and rebuilt as the sharded store of the current version, the old one removed
        manifest = json.loads((folder / P.pool_shards.STORE_NAME / "manifest.json").read_text())
        assert manifest["version"] == P.pool_shards.VERSION and not (folder / P.CACHE_NAME).exists()
    # a sharded store of another version is rebuilt too
    path = folder / P.pool_shards.STORE_NAME / "manifest.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), version=P.pool_shards.VERSION + 1)))
    assert P.load_pool(folder).shards is not None
    assert json.loads(path.read_text())["version"] == P.pool_shards.VERSION


def test_pool_cache_memory_maps_x_only_and_only_when_asked(feats):
    folder, songs = feats
    P.write_single_file_store(folder)  # the single-file store of before
    mapped = P.load_pool(folder)
    assert isinstance(mapped.X, np.memmap)
    assert not any(isinstance(a, np.memmap) for a in (mapped.offsets, mapped.frame_times, mapped.song_ids))
    loaded = P.load_pool(folder, mmap=False)
    assert not isinstance(loaded.X, np.memmap)
    np.testing.assert_array_equal(loaded.X, mapped.X)


def test_pool_cache_hit_takes_no_lock_and_is_quiet(feats, monkeypatch, capsys):
    folder, _ = feats
    P.load_pool(folder)
    assert capsys.readouterr().err == ""  # no progress bar unless asked
    monkeypatch.setattr(P, "_locked", lambda _: (_ for _ in ()).throw(AssertionError("locked on a hit")))
    assert P.load_pool(folder).song_ids.tolist() == ["s0", "s1", "s2"]


def test_pool_cache_rebuilt_by_another_process_while_waiting_is_used(feats, monkeypatch):
    """The fast path misses (another process is rebuilding); under the lock the fresh store is
    found and served, not rebuilt again."""
    folder, songs = feats
    P.load_pool(folder)
    real = P.pool_shards.read_manifest
    calls = []
    monkeypatch.setattr(P.pool_shards, "read_manifest",
                        lambda *a, **k: calls.append(1) or (None if len(calls) == 1 else real(*a, **k)))
    monkeypatch.setattr(P.pool_shards, "refresh", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rebuilt")))
    monkeypatch.setattr(P, "_read_cache", lambda *a, **k: None)
    pool = P.load_pool(folder)
    assert len(calls) == 2 and pool.song_ids.tolist() == ["s0", "s1", "s2"]
    np.testing.assert_array_equal(pool.windows("s2"), songs["s2"].astype(np.float32))


def test_pool_cache_is_assembled_inside_the_pool_folder(feats, monkeypatch):
    """The store is written beside the CSVs and renamed into place (never across file
    systems from the temp folder): with no usable temp folder it is still written."""
    import contextlib
    import tempfile

    folder, _ = feats
    monkeypatch.setattr(P, "_locked", lambda _: contextlib.nullcontext())
    monkeypatch.setattr(tempfile, "tempdir", str(folder / "no_such_temp_folder"))
    P.load_pool(folder)
    assert (folder / P.pool_shards.STORE_NAME / "manifest.json").exists()


def test_pool_without_cache_reads_the_csvs(feats):
    folder, songs = feats
    P.write_single_file_store(folder)
    _tamper_cache(folder)
    fresh = P.load_pool(folder, cache=False)
    np.testing.assert_array_equal(fresh.windows("s1"), songs["s1"].astype(np.float32))
    assert not isinstance(fresh.X, np.memmap)


# --- the song-probability cache -----------------------------------------------------------
@pytest.fixture
def scored(tmp_path, feats):
    X, y, _ = _raw()
    folder = tmp_path / "committee"
    _committee(X, y).save(folder)
    feats_dir, songs = feats
    return Committee.load(folder), feats_dir, songs, folder


def _score(committee, feats_dir, calls, song_ids=None):
    pool = P.load_pool(feats_dir)
    ids = pool.song_ids if song_ids is None else song_ids

    def compute():
        calls.append(1)
        return committee.song_proba(pool.subset(list(ids)))

    return cached_song_proba(committee, feats_dir, ids, compute)


def test_song_proba_same_size_newer_time_is_recomputed(scored):
    committee, feats_dir, _, _ = scored
    calls = []
    first = _score(committee, feats_dir, calls)
    _same_size_new_values(feats_dir / "s1.csv")
    # a stale pool cache would hide the new values; the pool store re-reads on the new time
    st = (feats_dir / "s1.csv").stat()
    assert len(calls) == 1 and np.array_equal(_score(committee, feats_dir, calls), first)
    assert len(calls) == 1, "same size and time: served from the cache"
    os.utime(feats_dir / "s1.csv", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    after = _score(committee, feats_dir, calls)
    assert len(calls) == 2
    np.testing.assert_array_equal(after, committee.song_proba(P.load_pool(feats_dir)))
    assert not np.array_equal(after[:, 1], first[:, 1])


def test_song_proba_other_size_old_time_is_recomputed(scored):
    committee, feats_dir, songs, _ = scored
    calls = []
    _score(committee, feats_dir, calls)
    _bigger_file_old_time(feats_dir / "s0.csv", songs["s0"])
    after = _score(committee, feats_dir, calls)
    assert len(calls) == 2
    np.testing.assert_array_equal(after, committee.song_proba(P.load_pool(feats_dir)))


def test_song_proba_other_song_order_is_its_own_entry(scored):
    committee, feats_dir, _, _ = scored
    calls = []
    forward = _score(committee, feats_dir, calls, ["s0", "s1", "s2"])
    backward = _score(committee, feats_dir, calls, ["s2", "s1", "s0"])
    assert len(calls) == 2
    np.testing.assert_array_equal(backward, forward[:, ::-1])
    assert len(list((feats_dir / SONG_PROBA_CACHE).glob("*.npy"))) == 2
    np.testing.assert_array_equal(_score(committee, feats_dir, calls, ["s2", "s1", "s0"]), backward)
    assert len(calls) == 2


def test_song_proba_other_committee_is_recomputed(scored, tmp_path):
    committee, feats_dir, _, _ = scored
    calls = []
    first = _score(committee, feats_dir, calls)
    X, y, _ = _raw(seed=4)
    _committee(X, y).save(tmp_path / "other")
    other = Committee.load(tmp_path / "other")
    assert other.content_digest() != committee.content_digest()
    second = _score(other, feats_dir, calls)
    assert len(calls) == 2 and not np.array_equal(first, second)


def test_song_proba_without_a_digest_computes_and_writes_nothing(scored):
    committee, feats_dir, _, _ = scored
    committee._saved_digest = None
    calls = []
    _score(committee, feats_dir, calls)
    _score(committee, feats_dir, calls)
    assert len(calls) == 2 and not (feats_dir / SONG_PROBA_CACHE).exists()


@pytest.mark.parametrize("damage", ["shape", "nan", "text"])
def test_song_proba_cache_entry_of_wrong_shape_or_values_is_recomputed(scored, damage):
    committee, feats_dir, _, _ = scored
    calls = []
    first = _score(committee, feats_dir, calls)
    (entry,) = (feats_dir / SONG_PROBA_CACHE).glob("*.npy")
    if damage == "shape":
        np.save(entry, first[:, :2])
    elif damage == "nan":
        bad = first.copy()
        bad[0, 0, 0] = np.nan
        np.save(entry, bad)
    else:
        entry.write_bytes(b"garbage")
    again = _score(committee, feats_dir, calls)
    assert len(calls) == 2
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(np.load(entry), first)  # rewritten


T0 = 10**18  # a controlled clock, older than now: each new cache file gets the next tick


def _new_file(folder, before: set):
    (path,) = set(folder.glob("*.npy")) - before
    return path


def test_song_proba_cache_keeps_the_newest_entries(scored):
    committee, feats_dir, _, _ = scored
    calls = []
    orders = [["s0"], ["s1"], ["s2"], ["s0", "s1"], ["s1", "s0"], ["s0", "s2"], ["s2", "s0"], ["s1", "s2"],
              ["s2", "s1"], ["s0", "s1", "s2"]]
    folder = feats_dir / SONG_PROBA_CACHE
    written = []
    for k, order in enumerate(orders):
        before = set(folder.glob("*.npy"))
        _score(committee, feats_dir, calls, order)
        written.append(_new_file(folder, before))
        os.utime(written[-1], ns=(T0 + k, T0 + k))
        assert len(list(folder.glob("*.npy"))) == min(k + 1, SONG_PROBA_CACHE_KEEP)
    assert len(calls) == len(orders)
    assert set(folder.glob("*.npy")) == set(written[-SONG_PROBA_CACHE_KEEP:])  # the oldest two went
    # the two oldest were removed, the newest are served
    _score(committee, feats_dir, calls, orders[2])
    _score(committee, feats_dir, calls, orders[-1])
    assert len(calls) == len(orders)
    _score(committee, feats_dir, calls, orders[1])
    assert len(calls) == len(orders) + 1


def test_song_proba_cached_as_float64(scored):
    committee, feats_dir, _, _ = scored
    calls = []
    pool = P.load_pool(feats_dir)

    def compute():
        calls.append(1)
        return committee.song_proba(pool).astype(np.float32)

    first = cached_song_proba(committee, feats_dir, pool.song_ids, compute)
    again = cached_song_proba(committee, feats_dir, pool.song_ids, compute)
    assert len(calls) == 1 and first.dtype == again.dtype == np.float64
    np.testing.assert_array_equal(first, again)


def test_content_digest_changes_with_each_component(scored):
    committee, _, _, folder = scored
    manifest = json.loads((folder / "committee.json").read_text())
    digest = content_digest(manifest)
    assert committee.content_digest() == digest
    assert content_digest(json.loads(json.dumps(manifest))) == digest
    variants = {
        "a checksum": lambda m: m["checksums"].update({"scaler.npy": "0" * 64}),
        "the feature layout": lambda m: m["feature_names"].reverse(),
        "a member name": lambda m: m["members"][0].update(name="renamed"),
        "a member algorithm": lambda m: m["members"][0].update(algorithm="sgd"),
        "the member order": lambda m: m["members"].reverse(),
        "the format": lambda m: m.update(format=2),
    }
    for what, change in variants.items():
        changed = json.loads(json.dumps(manifest))
        change(changed)
        assert content_digest(changed) != digest, what
    # the order of the checksum entries does not matter
    reordered = json.loads(json.dumps(manifest))
    reordered["checksums"] = dict(reversed(list(reordered["checksums"].items())))
    assert content_digest(reordered) == digest
    # provenance and library versions do not change what the committee predicts
    documented = json.loads(json.dumps(manifest))
    documented["corpus"] = {"name": "another description"}
    documented["versions"] = {"numpy": "0"}
    assert content_digest(documented) == digest


def test_content_digest_changes_with_the_code_version(scored, monkeypatch):
    import trompa_mer

    committee, _, _, folder = scored
    manifest = json.loads((folder / "committee.json").read_text())
    before = content_digest(manifest)
    monkeypatch.setattr(trompa_mer, "__version__", trompa_mer.__version__ + ".post1")
    assert content_digest(manifest) != before


# --- the tree-margin cache ----------------------------------------------------------------
class FakeBooster:
    def __init__(self, rounds):
        self.rounds = rounds

    def num_boosted_rounds(self):
        return self.rounds


class FakeTrees:
    """A tree member whose round k is the bytes b'<tag>:k;' (same tag, same trees)."""

    def __init__(self, rounds, tag="m"):
        self.booster = FakeBooster(rounds)
        self.tag = tag

    def leading_rounds_bytes(self, rounds):
        return "".join(f"{self.tag}:{k};" for k in range(rounds)).encode()


class Scaler:
    def __init__(self, mean, scale):
        self.mean_, self.scale_ = np.asarray(mean), np.asarray(scale)  # dtype kept (float64 from lists)


SCALER = Scaler([0.0, 1.0, 2.0], [1.0, 2.0, 3.0])
N = 6


def _margins(value):
    return np.full((N, 4), value, dtype=np.float32)


def test_tree_margins_served_for_the_same_key(tmp_path):
    cache = TreeMarginCache(tmp_path, SCALER, "pool-a")
    assert cache.lookup(FakeTrees(5), N) is None
    cache.store(FakeTrees(5), _margins(5))
    rounds, margins = TreeMarginCache(tmp_path, Scaler([0.0, 1.0, 2.0], [1.0, 2.0, 3.0]), "pool-a").lookup(FakeTrees(5), N)
    assert rounds == 5 and np.array_equal(margins, _margins(5))


@pytest.mark.parametrize("component", ["pool", "mean", "scale", "trees", "version"])
def test_tree_margins_miss_when_one_component_changes(tmp_path, monkeypatch, component):
    TreeMarginCache(tmp_path, SCALER, "pool-a").store(FakeTrees(5), _margins(5))
    pool, scaler, member = "pool-a", SCALER, FakeTrees(5)
    if component == "pool":
        pool = "pool-b"
    elif component == "mean":
        scaler = Scaler([0.0, 1.0, 2.5], SCALER.scale_)
    elif component == "scale":
        scaler = Scaler(SCALER.mean_, [1.0, 2.0, 3.5])
    elif component == "trees":
        member = FakeTrees(5, tag="other")
    else:
        import trompa_mer

        monkeypatch.setattr(trompa_mer, "__version__", trompa_mer.__version__ + ".post1")
    assert TreeMarginCache(tmp_path, scaler, pool).lookup(member, N) is None


def test_tree_margins_longest_cached_prefix_no_longer_than_the_member(tmp_path):
    cache = TreeMarginCache(tmp_path, SCALER, "pool-a")
    for rounds in (3, 5, 8):
        cache.store(FakeTrees(rounds), _margins(rounds))
    for total, expected in ((9, 8), (8, 8), (7, 5), (5, 5), (4, 3), (3, 3), (2, None)):
        found = cache.lookup(FakeTrees(total), N)
        if expected is None:
            assert found is None, total
        else:
            assert found[0] == expected and np.array_equal(found[1], _margins(expected)), total
    # other trees after the same first three rounds: only the shared prefix matches
    class Diverging(FakeTrees):
        def leading_rounds_bytes(self, rounds):
            return "".join(f"m:{k};" if k < 3 else f"x:{k};" for k in range(rounds)).encode()

    assert cache.lookup(Diverging(9), N)[0] == 3


def test_tree_margins_key_on_the_statistics_values_not_their_type(tmp_path):
    TreeMarginCache(tmp_path, SCALER, "pool-a").store(FakeTrees(5), _margins(5))
    single = Scaler(SCALER.mean_.astype(np.float32), SCALER.scale_.astype(np.float32))
    assert single.mean_.dtype == np.float32 and SCALER.mean_.dtype == np.float64
    assert TreeMarginCache(tmp_path, single, "pool-a").lookup(FakeTrees(5), N)[0] == 5


def test_tree_margins_one_round_zero_rounds_and_many_rounds(tmp_path):
    cache = TreeMarginCache(tmp_path, SCALER, "pool-a")
    cache.store(FakeTrees(0), _margins(0))  # never a prefix: nothing to reuse
    assert cache.lookup(FakeTrees(3), N) is None
    cache.store(FakeTrees(1), _margins(1))
    assert cache.lookup(FakeTrees(3), N)[0] == 1
    cache.store(FakeTrees(12345), _margins(7))  # five digits in the file name
    rounds, margins = cache.lookup(FakeTrees(12346), N)
    assert rounds == 12345 and margins[0, 0] == 7


def test_tree_margins_stored_as_float32_and_served_verified(tmp_path, monkeypatch):
    cache = TreeMarginCache(tmp_path, SCALER, "pool-a")
    cache.store(FakeTrees(5), np.full((N, 4), 0.1, dtype=np.float64))
    rounds, margins = cache.lookup(FakeTrees(5), N)
    # read whole and checked against the checksum in its name (a memory map could change)
    assert rounds == 5 and margins.dtype == np.float32 and not isinstance(margins, np.memmap)
    np.testing.assert_array_equal(margins, np.float32(0.1))
    # a read-only cache folder: the recency stamp fails quietly, the margins are still served
    monkeypatch.setattr(os, "utime", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "read-only")))
    assert cache.lookup(FakeTrees(5), N)[0] == 5


def test_tree_margins_of_another_shape_or_type_are_not_served(tmp_path):
    cache = TreeMarginCache(tmp_path, SCALER, "pool-a")
    cache.store(FakeTrees(5), _margins(5))
    assert cache.lookup(FakeTrees(5), N + 1) is None
    path = next((tmp_path / TREE_MARGIN_CACHE).glob("r00005-*.npy"))
    np.save(path, np.zeros((N, 4), dtype=np.float64))
    assert cache.lookup(FakeTrees(5), N) is None
    np.save(path, np.zeros((N, 3), dtype=np.float32))
    assert cache.lookup(FakeTrees(5), N) is None


def test_song_proba_cache_keeps_the_recently_read(scored):
    """A read refreshes an entry: the default committee's scores, read by every new user, stay
    while more entries than the cache keeps are written after them."""
    committee, feats_dir, _, _ = scored
    calls = []
    folder = feats_dir / SONG_PROBA_CACHE
    shutil.rmtree(folder, ignore_errors=True)
    orders = [["s0"], ["s1"], ["s2"], ["s0", "s1"], ["s1", "s0"], ["s0", "s2"], ["s2", "s0"], ["s1", "s2"],
              ["s2", "s1"], ["s0", "s1", "s2"]]
    before = set(folder.glob("*.npy"))
    _score(committee, feats_dir, calls, orders[0])
    first = _new_file(folder, before)
    os.utime(first, ns=(T0, T0))
    for k, order in enumerate(orders[1:], start=1):
        before = set(folder.glob("*.npy"))
        _score(committee, feats_dir, calls, order)
        os.utime(_new_file(folder, before), ns=(T0 + k, T0 + k))
        _score(committee, feats_dir, calls, orders[0])  # read: served from the cache, refreshed
    assert first.exists() and len(list(folder.glob("*.npy"))) == SONG_PROBA_CACHE_KEEP
    assert len(calls) == len(orders)  # the first entry was never recomputed


def test_tree_margins_store_keeps_the_recently_used(tmp_path):
    cache = TreeMarginCache(tmp_path, SCALER, "pool-a")
    folder = tmp_path / TREE_MARGIN_CACHE
    members = [FakeTrees(4, tag=f"t{k}") for k in range(TREE_MARGIN_CACHE_KEEP + 2)]
    for k, member in enumerate(members):
        before = set(folder.glob("*.npy"))
        cache.store(member, _margins(k))
        os.utime(_new_file(folder, before), ns=(T0 + k, T0 + k))
        if k == 1:
            assert cache.lookup(members[0], N) is not None  # used: its time moves to now
        cache.store(member, _margins(-1))  # already there: not rewritten
    assert len(list(folder.glob("*.npy"))) == TREE_MARGIN_CACHE_KEEP
    assert cache.lookup(members[0], N)[1][0, 0] == 0, "the recently used entry is kept"
    assert cache.lookup(members[1], N) is None and cache.lookup(members[2], N) is None
    assert cache.lookup(members[3], N) is not None and cache.lookup(members[-1], N)[1][0, 0] == len(members) - 1


def test_song_proba_looked_up_without_computing_and_keyed_by_the_given_listing(scored):
    """compute=None only looks (issue 22: a sample's rows come from the cache when it is
    there); a listing handed over keys the entry as the folder's own listing does."""
    committee, feats_dir, _, _ = scored
    pool = P.load_pool(feats_dir)
    shutil.rmtree(feats_dir / SONG_PROBA_CACHE, ignore_errors=True)
    assert cached_song_proba(committee, feats_dir, pool.song_ids, None) is None
    assert not (feats_dir / SONG_PROBA_CACHE).exists() or not list((feats_dir / SONG_PROBA_CACHE).glob("*.npy"))
    computed = cached_song_proba(committee, feats_dir, pool.song_ids, lambda: committee.song_proba(pool),
                                 listing=pool.listing)
    looked_up = cached_song_proba(committee, feats_dir, pool.song_ids, None)
    np.testing.assert_array_equal(looked_up, computed)
    assert pool.listing == P.folder_listing(feats_dir)
    other = dict(pool.listing)
    other[next(iter(other))] = [1, 1]
    assert cached_song_proba(committee, feats_dir, pool.song_ids, None, listing=other) is None


def test_the_song_proba_key_is_the_sha256_of_the_whole_json_and_follows_every_part():
    import hashlib
    import json

    from trompa_mer.pool_scoring import song_proba_key

    listing = {"b.csv": [10, 2], "a.csv": [5, 1], "ü.csv": [1, 3]}
    songs = np.array(["a", "b", "ü"])
    whole = json.dumps({"committee": "d1", "pool": listing, "songs": [str(s) for s in songs]}, sort_keys=True)
    assert song_proba_key("d1", listing, songs) == hashlib.sha256(whole.encode()).hexdigest()
    keys = {song_proba_key("d1", listing, songs), song_proba_key("d2", listing, songs),
            song_proba_key("d1", dict(listing, **{"c.csv": [1, 1]}), songs),
            song_proba_key("d1", listing, songs[:2]), song_proba_key("d1", {**listing, "a.csv": [5, 9]}, songs)}
    assert len(keys) == 5
    # the same listing again (its JSON reused): the same key
    assert song_proba_key("d1", listing, songs) == hashlib.sha256(whole.encode()).hexdigest()


def test_a_lookup_on_a_pool_with_nothing_cached_computes_no_key(tmp_path, monkeypatch):
    from trompa_mer import pool_scoring

    feats = tmp_path / "feats"
    feats.mkdir()
    (feats / "a.csv").write_text("x")

    def no_key(*args):
        raise AssertionError("key computed although nothing is cached")

    monkeypatch.setattr(pool_scoring, "song_proba_key", no_key)
    assert pool_scoring._cached_by_digest("d", 2, feats, ["a"], None, None) is None
    (feats / pool_scoring.SONG_PROBA_CACHE).mkdir()
    (feats / pool_scoring.SONG_PROBA_CACHE / "notes.txt").write_text("not an entry")
    assert pool_scoring._cached_by_digest("d", 2, feats, ["a"], None, None) is None
    # once anything is cached there, a lookup keys it (and finds its own entry)
    monkeypatch.undo()
    proba = np.full((2, 1, 4), 0.25)
    assert np.array_equal(pool_scoring._cached_by_digest("d", 2, feats, ["a"], lambda: proba, None), proba)
    monkeypatch.setattr(pool_scoring, "song_proba_key", lambda *a: (_ for _ in ()).throw(RuntimeError("keyed")))
    with pytest.raises(RuntimeError, match="keyed"):
        pool_scoring._cached_by_digest("d", 2, feats, ["a"], None, None)


def test_the_listing_is_encoded_once_for_any_number_of_keys(monkeypatch):
    import json

    from trompa_mer import pool_scoring

    listing = {f"s{i}.csv": [i, i] for i in range(5)}
    encoded = []
    real = json.dumps

    def counting(value, *args, **kwargs):
        if isinstance(value, dict):
            encoded.append(1)
        return real(value, *args, **kwargs)

    monkeypatch.setattr(pool_scoring.json, "dumps", counting)
    keys = {pool_scoring.song_proba_key(d, listing, ["s1"]) for d in ("a", "b", "c")}
    assert len(keys) == 3 and len(encoded) == 1
    pool_scoring.song_proba_key("a", dict(listing), ["s1"])  # another listing: encoded again
    assert len(encoded) == 2 and pool_scoring._listing_json[1] == real(listing, sort_keys=True)


def test_a_committee_without_a_digest_only_computes(monkeypatch, tmp_path):
    from trompa_mer import pool_scoring

    class Unsaved:
        members = [("m", None)]

        def content_digest(self):
            return None

    assert pool_scoring.cached_song_proba(Unsaved(), tmp_path, ["a"], None) is None
    proba = np.zeros((1, 1, 4))
    assert pool_scoring.cached_song_proba(Unsaved(), tmp_path, ["a"], lambda: proba) is proba
    assert not (tmp_path / pool_scoring.SONG_PROBA_CACHE).exists()
