"""The sharded pool store (issue 22 item 3): built, read by sample, refreshed shard by shard,
verified lazily, crash-safe, and the single-file store of before still read (and converted)."""
import json
import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest

from trompa_mer import atomic, pool as P, pool_shards as S
from trompa_mer.errors import MERError
from trompa_mer.features import FEATURE_NAMES, read_feature_csv, write_feature_csv

N_SONGS = 11
PER_SHARD = 4


def _song(rng, n):
    table = pd.DataFrame(rng.normal(size=(n, 260)).astype(np.float32), columns=FEATURE_NAMES)
    table.insert(0, "frameTime", np.arange(n) * 0.5)
    return table


@pytest.fixture
def feats(tmp_path, monkeypatch):
    monkeypatch.setenv("MER_POOL_SHARD_SONGS", str(PER_SHARD))
    rng = np.random.default_rng(3)
    folder = tmp_path / "feats"
    for i in range(N_SONGS):
        write_feature_csv(_song(rng, int(rng.integers(1, 6))), folder / f"S{i:02d}.csv")
    return folder


def _store(folder):
    return folder / S.STORE_NAME


def _manifest(folder):
    return json.loads((_store(folder) / S.MANIFEST).read_text())


def _shard_files(folder):
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in _store(folder).glob("shard-*.npy")}


def _csv_rows(folder, song):
    table = read_feature_csv(folder / f"{song.upper()}.csv")
    return table[FEATURE_NAMES].to_numpy(np.float32), table["frameTime"].to_numpy(np.float32)


def _assert_every_song_is_its_csv(folder, pool):
    for i, song in enumerate(pool.song_ids.tolist()):
        X, times = _csv_rows(folder, song)
        lo, hi = int(pool.offsets[i]), int(pool.offsets[i + 1])
        assert np.asarray(pool.X[lo:hi]).tobytes() == X.tobytes(), song
        assert np.asarray(pool.frame_times[lo:hi]).tobytes() == times.tobytes(), song


def _bump(path):
    os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns + 10_000_000))


def test_built_in_shards_of_fixed_size_and_a_subset_is_the_csv_rows_bit_for_bit(feats):
    pool = P.load_pool(feats)
    manifest = _manifest(feats)
    assert manifest["version"] == S.VERSION and manifest["shard_songs"] == PER_SHARD
    assert [len(r["csvs"]) for r in manifest["shards"].values()] == [4, 4, 3]
    assert sorted(manifest["shards"]) == sorted(p.name for p in _store(feats).glob("shard-*.npy"))
    assert not (feats / P.CACHE_NAME).exists()
    assert pool.song_ids.tolist() == [f"s{i:02d}" for i in range(N_SONGS)]
    chosen = ["s09", "s02", "s05"]  # three shards, out of order
    sub = P.open_pool(feats).subset(chosen)
    for i, song in enumerate(chosen):
        X, times = _csv_rows(feats, song)
        got = sub.X[sub.offsets[i]:sub.offsets[i + 1]]
        assert got.dtype == np.float32 and got.tobytes() == X.tobytes()
        assert sub.frame_times[sub.offsets[i]:sub.offsets[i + 1]].tobytes() == times.tobytes()
    # the whole pool, slices of it and one song's windows: the same bits
    whole = np.asarray(pool.X)
    expected = np.concatenate([_csv_rows(feats, s)[0] for s in pool.song_ids.tolist()])
    assert whole.tobytes() == expected.tobytes() and pool.X.shape == expected.shape
    assert pool.X[3:17].tobytes() == expected[3:17].tobytes()
    assert np.asarray(pool.windows("s07")).tobytes() == _csv_rows(feats, "s07")[0].tobytes()
    assert pool.n_windows == len(expected) and len(pool.frame_times) == len(expected)
    in_memory = P.load_pool(feats, mmap=False)
    assert isinstance(in_memory.X, np.ndarray) and in_memory.X.tobytes() == expected.tobytes()
    assert pool.signature == P.listing_signature(P.folder_listing(feats))


def test_a_changed_song_rewrites_its_shard_only(feats, monkeypatch):
    P.load_pool(feats)
    before = _shard_files(feats)
    manifest = _manifest(feats)
    holder = next(n for n, r in manifest["shards"].items() if "S05.csv" in r["csvs"])
    calls = []
    real = P._read_song
    monkeypatch.setattr(P, "_read_song", lambda path: calls.append(path.name) or real(path))
    changed = _song(np.random.default_rng(99), 3)
    write_feature_csv(changed, feats / "S05.csv")
    _bump(feats / "S05.csv")
    pool = P.load_pool(feats)
    assert calls == ["S05.csv"]  # only the changed CSV is parsed; its neighbours come from the shard
    after = _shard_files(feats)
    new_manifest = _manifest(feats)
    others = set(before) - {holder}
    assert all(after[n] == before[n] for n in others)  # untouched: same file, same mtime
    assert all(new_manifest["shards"][n]["sha256"] == manifest["shards"][n]["sha256"] for n in others)
    rewritten = set(new_manifest["shards"]) - set(manifest["shards"])
    assert len(rewritten) == 1 and new_manifest["retired"] == [holder]
    assert new_manifest["shards"][rewritten.pop()]["csvs"] == manifest["shards"][holder]["csvs"]
    assert np.asarray(pool.windows("s05")).tobytes() == changed[FEATURE_NAMES].to_numpy(np.float32).tobytes()
    # the changed song's neighbours, copied from the old shard into the new one: their own rows
    _assert_every_song_is_its_csv(feats, pool)
    # a new song fills the newest shard (3 of 4 songs); a removed one rewrites its shard
    write_feature_csv(_song(np.random.default_rng(7), 2), feats / "S11.csv")
    (feats / "S00.csv").unlink()
    calls.clear()
    pool = P.load_pool(feats)
    assert calls == ["S11.csv"]
    final = _manifest(feats)
    assert sorted(len(r["csvs"]) for r in final["shards"].values()) == [3, 4, 4]
    assert pool.song_ids.tolist() == [f"s{i:02d}" for i in range(1, 12)]
    assert set(final["shards"]).isdisjoint(new_manifest["retired"])
    assert not (_store(feats) / holder).exists(), "retired files go at the next refresh"


def test_a_corrupted_shard_is_an_error_naming_it_and_consolidate_rebuilds_it(feats):
    P.load_pool(feats)
    manifest = _manifest(feats)
    name = sorted(manifest["shards"])[1]
    path = _store(feats) / name
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    pool = P.open_pool(feats)  # opening reads the manifest only
    assert pool.subset(["s00"]).X.shape[0] > 0  # a shard not read is not verified
    with pytest.raises(MERError) as caught:
        pool.subset(["s05"])
    message = str(caught.value)
    assert message.startswith(f"{path}: pool shard does not match its checksum")
    assert manifest["shards"][name]["sha256"] in message and "4 songs" in message
    assert message.endswith(f"extract_features.py --consolidate {feats}")
    with pytest.warns(Warning, match=f"{name}.*rebuilt from the CSVs"):
        repaired = P.load_pool(feats, verify=True)
    assert np.asarray(repaired.windows("s05")).tobytes() == _csv_rows(feats, "s05")[0].tobytes()
    assert name not in _manifest(feats)["shards"]


def test_a_killed_refresh_leaves_the_previous_store_readable(feats, monkeypatch):
    pool = P.load_pool(feats)
    expected = np.asarray(pool.X).copy()
    manifest_bytes = (_store(feats) / S.MANIFEST).read_bytes()
    write_feature_csv(_song(np.random.default_rng(1), 2), feats / "S03.csv")
    _bump(feats / "S03.csv")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "write_json", killed)  # killed after its new shard, before the manifest
    with pytest.raises(KeyboardInterrupt):
        P.load_pool(feats)
    monkeypatch.undo()
    assert (_store(feats) / S.MANIFEST).read_bytes() == manifest_bytes
    # the previous manifest and every shard it names are intact: a reader of it gets the old rows
    old_manifest = json.loads(manifest_bytes)
    ids, offsets, index = S.open_store(_store(feats), old_manifest, feats)
    assert np.asarray(S.LazyRows(index, slice(1, None))).tobytes() == expected.tobytes()
    # the next refresh finishes the job and removes the orphan
    pool = P.load_pool(feats)
    assert np.asarray(pool.windows("s03")).tobytes() == _csv_rows(feats, "s03")[0].tobytes()
    assert sorted(p.name for p in _store(feats).iterdir()) == sorted(
        [S.MANIFEST, *_manifest(feats)["shards"], *_manifest(feats)["retired"]])


def test_the_single_file_store_of_before_opens_and_is_converted_when_consolidating(feats, monkeypatch):
    P.write_single_file_store(feats)
    assert (feats / P.CACHE_NAME / "X.npy").exists() and not _store(feats).exists()
    calls = []
    real = P._read_song
    monkeypatch.setattr(P, "_read_song", lambda path: calls.append(path.name) or real(path))
    old = P.open_pool(feats)
    assert old.x_source is not None and old.shards is None and calls == []
    expected = np.asarray(old.X).copy()
    assert old.subset(["s04"]).X.tobytes() == _csv_rows(feats, "s04")[0].tobytes()
    converted = P.load_pool(feats, verify=True)  # extract_features.py --consolidate
    assert calls == [], "rows copied from the old store, no CSV parsed"
    assert converted.shards is not None and not (feats / P.CACHE_NAME).exists()
    assert np.asarray(converted.X).tobytes() == expected.tobytes()
    assert converted.signature == old.signature  # caches keyed by the pool stay valid
    # the frame times travel with the rows (a shard's first column)
    assert np.asarray(converted.frame_times).tobytes() == np.asarray(old.frame_times).tobytes()
    _assert_every_song_is_its_csv(feats, converted)


def test_a_copied_folder_hashes_the_shards_it_reads_and_consolidate_records_them(feats, tmp_path):
    P.load_pool(feats)
    copy = tmp_path / "copy"
    shutil.copytree(feats, copy, copy_function=shutil.copy)  # new inodes and times: identities differ
    for csv in feats.glob("*.csv"):
        os.utime(copy / csv.name, ns=(csv.stat().st_atime_ns, csv.stat().st_mtime_ns))
    pool = P.open_pool(copy)
    assert pool.subset(["s06"]).X.tobytes() == _csv_rows(feats, "s06")[0].tobytes()
    P.load_pool(copy, verify=True)
    manifest = _manifest(copy)
    from trompa_mer import cache_files

    for name, record in manifest["shards"].items():
        assert record["stat"] == cache_files.identity(os.stat(_store(copy) / name))


def test_shard_size_setting_is_checked(feats, monkeypatch):
    monkeypatch.setenv("MER_POOL_SHARD_SONGS", "0")
    with pytest.raises(MERError, match="MER_POOL_SHARD_SONGS"):
        P.load_pool(feats)


def test_lazy_rows_index_like_an_array(feats):
    pool = P.load_pool(feats)
    whole = np.asarray(pool.X)
    for key in (0, 5, -1, slice(2, 9), slice(-4, None), slice(7, 3), (slice(1, 6), 3),
                np.array([0, 3, 4]), whole[:, 0] > 0):
        assert np.array_equal(pool.X[key], whole[key]), key
    assert np.array_equal(pool.frame_times[1:4], np.asarray(pool.frame_times)[1:4])
    assert np.asarray(pool.X, dtype=np.float64).dtype == np.float64 and len(pool.X) == len(whole)


def test_two_csvs_of_one_song_id_are_refused(feats):
    shutil.copy(feats / "S03.csv", feats / "s03.csv")
    with pytest.raises(MERError, match="song id 's03' appears in more than one CSV"):
        P.load_pool(feats)


def test_a_slice_reads_only_the_songs_it_covers_and_never_the_whole_pool(feats, monkeypatch):
    pool = P.open_pool(feats)
    expected = np.concatenate([_csv_rows(feats, s)[0] for s in pool.song_ids.tolist()])
    index = pool.shards
    read = []
    real = index.reader.read_rows
    monkeypatch.setattr(index.reader, "read_rows", lambda locations: read.append(list(locations)) or real(locations))
    lengths = np.diff(pool.offsets)
    a = int(pool.offsets[3]) + (1 if lengths[3] > 1 else 0)  # inside song 3
    b = int(pool.offsets[6])  # the end of song 5
    got = pool.X[a:b]
    assert got.tobytes() == expected[a:b].tobytes() and got.shape == (b - a, 260)
    assert [len(r) for r in read] == [3] and [loc[0] for loc in read[0]] == [index.shard_of[i] for i in (3, 4, 5)]
    assert index._whole is None, "a slice does not read the whole pool"
    assert pool.X[b:b].shape == (0, 260) and pool.X[b:a].shape == (0, 260) and len(read) == 1
    assert pool.X[-2:].tobytes() == expected[-2:].tobytes()
    assert pool.X[0].tobytes() == expected[0].tobytes() and pool.X[-1].tobytes() == expected[-1].tobytes()
    assert pool.X[(slice(a, b), slice(None, 5))].tobytes() == np.ascontiguousarray(expected[a:b, :5]).tobytes()
    assert index._whole is None
    read.clear()
    whole = np.asarray(pool.X)
    assert whole.flags["C_CONTIGUOUS"] and whole.dtype == np.float32 and whole.tobytes() == expected.tobytes()
    assert np.asarray(pool.X, dtype=np.float64).dtype == np.float64
    assert len(read) == 1, "the whole pool is read once, then kept"
    assert pool.X[a:b].tobytes() == expected[a:b].tobytes() and len(read) == 1
    times = np.asarray(pool.frame_times)
    assert times.shape == (len(expected),) and times.flags["C_CONTIGUOUS"]


class _NoSlices:
    """Stands in for a shard's memory map: any read through it fails the test."""

    def __getitem__(self, key):
        raise AssertionError("read through the memory map")


def _maps_replaced(pool, songs):
    index = pool.shards
    for s in songs:
        index.reader.shard(int(index.shard_of[pool.index_of(s)]))
    for k, (array, identity, offset) in list(index.reader._open.items()):
        index.reader._open[k] = (_NoSlices(), identity, offset)
    return index.reader


@pytest.mark.parametrize("copied", [False, True])
def test_rows_are_read_with_pread_from_the_verified_shard_and_only_then(feats, tmp_path, copied):
    if copied:  # verified by content: the identity pread checks is the file's new one
        P.load_pool(feats)
        shutil.copytree(feats, tmp_path / "copy", copy_function=shutil.copy)
        for csv in feats.glob("*.csv"):
            os.utime(tmp_path / "copy" / csv.name, ns=(csv.stat().st_atime_ns, csv.stat().st_mtime_ns))
        feats = tmp_path / "copy"
    pool = P.open_pool(feats)
    chosen = ["s01", "s06", "s10"]
    expected = np.concatenate([_csv_rows(feats, s)[0] for s in chosen])
    reader = _maps_replaced(pool, chosen)
    sub = pool.subset(chosen)  # through pread alone
    assert sub.X.tobytes() == expected.tobytes()
    k = int(pool.shards.shard_of[pool.index_of("s01")])
    array, identity, offset = reader._open[k]
    reader._open[k] = (array, [identity[0] + 1, *identity[1:]], offset)  # another file now: not read
    with pytest.raises(AssertionError, match="memory map"):
        pool.subset(["s01"])
    reader._open[k] = (array, identity, offset + 10 ** 9)  # a read past the end: not used
    with pytest.raises(AssertionError, match="memory map"):
        pool.subset(["s01"])
    reader._open[k] = (array, identity, offset)
    assert pool.subset(["s01", "s06"]).X.tobytes() == expected[:len(_csv_rows(feats, "s01")[0]) + len(
        _csv_rows(feats, "s06")[0])].tobytes()


def test_a_shard_of_another_shape_or_type_or_unreadable_is_an_error(feats):
    from trompa_mer import cache_files

    P.load_pool(feats)
    manifest = _manifest(feats)
    name = sorted(manifest["shards"])[0]
    path = _store(feats) / name
    original = np.load(path)

    def rewrite(array):
        np.save(path, array)
        manifest["shards"][name].update(cache_files.record_of(path))
        (_store(feats) / S.MANIFEST).write_text(json.dumps(manifest))

    rewrite(original[:-1])  # a row short, its checksum matching
    with pytest.raises(MERError, match=rf"{name}: pool shard holds a float32 array of shape \({len(original) - 1}, 261\), "
                                       rf"manifest.json expects float32 \({len(original)}, 261\)"):
        P.open_pool(feats).subset(["s00"])
    rewrite(original.astype(np.float64))
    with pytest.raises(MERError, match=rf"{name}: pool shard holds a float64 array"):
        P.open_pool(feats).subset(["s00"])
    path.unlink()
    path.mkdir()
    with pytest.raises(MERError, match=rf"{name}: pool shard (cannot be read|is not a readable array)"):
        P.open_pool(feats).subset(["s00"])


def test_a_damaged_shard_holding_a_changed_song_is_rebuilt_from_the_csvs_with_a_warning(feats):
    P.load_pool(feats)
    manifest = _manifest(feats)
    name = next(n for n, r in manifest["shards"].items() if "S05.csv" in r["csvs"])
    path = _store(feats) / name
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    write_feature_csv(_song(np.random.default_rng(4), 2), feats / "S05.csv")
    _bump(feats / "S05.csv")
    with pytest.warns(Warning, match=rf"{name}: pool shard does not match its checksum") as caught:
        pool = P.load_pool(feats)  # a step's refresh: the shard is rewritten anyway, from the CSVs
    assert not any("None" == str(w.message) for w in caught)
    for song in manifest["shards"][name]["csvs"]:
        sid = song[:-4].lower()
        assert np.asarray(pool.windows(sid)).tobytes() == _csv_rows(feats, sid)[0].tobytes()


def test_song_ids_sharing_a_prefix_are_not_taken_for_one(tmp_path, monkeypatch):
    monkeypatch.setenv("MER_POOL_SHARD_SONGS", "2")
    rng = np.random.default_rng(8)
    for name in ("song1", "song2", "Song3"):
        write_feature_csv(_song(rng, 2), tmp_path / f"{name}.csv")
    assert P.load_pool(tmp_path).song_ids.tolist() == ["song1", "song2", "song3"]


@pytest.mark.parametrize("doctor", ["version", "feature_names", "shards", "listing", "shard name", "record",
                                    "csvs", "lengths", "lengths short", "not json"])
def test_a_manifest_not_of_this_layout_is_rebuilt(feats, doctor):
    P.load_pool(feats)
    path = _store(feats) / S.MANIFEST
    manifest = _manifest(feats)
    first = sorted(manifest["shards"])[0]
    if doctor == "version":
        manifest["version"] = S.VERSION + 1
    elif doctor == "feature_names":
        manifest["feature_names"] = list(reversed(FEATURE_NAMES))
    elif doctor == "shards":
        manifest["shards"] = []
    elif doctor == "listing":
        manifest["listing"] = None
    elif doctor == "shard name":
        manifest["shards"]["../elsewhere.npy"] = manifest["shards"].pop(first)
    elif doctor == "record":
        manifest["shards"][first] = "a string"
    elif doctor in ("csvs", "lengths"):
        manifest["shards"][first][doctor] = "S00.csv"
    elif doctor == "lengths short":
        manifest["shards"][first]["lengths"] = manifest["shards"][first]["lengths"][:-1]
    path.write_text("{" if doctor == "not json" else json.dumps(manifest))
    assert S.read_manifest(_store(feats)) is None
    pool = P.load_pool(feats)  # rebuilt from the CSVs
    assert S.read_manifest(_store(feats)) is not None
    assert np.asarray(pool.windows("s02")).tobytes() == _csv_rows(feats, "s02")[0].tobytes()


def test_one_song_per_shard_is_a_valid_setting(feats, monkeypatch):
    monkeypatch.setenv("MER_POOL_SHARD_SONGS", "1")
    P.load_pool(feats)
    assert [len(r["csvs"]) for r in _manifest(feats)["shards"].values()] == [1] * N_SONGS


def test_lazy_rows_describe_themselves_and_cut_inside_a_song(feats):
    pool = P.open_pool(feats)
    n = pool.n_windows
    assert pool.X.shape == (n, 260) and pool.X.ndim == 2 and pool.frame_times.shape == (n,)
    assert pool.frame_times.ndim == 1 and pool.X.dtype == np.float32 and len(pool.frame_times) == n
    expected = np.concatenate([_csv_rows(feats, s)[0] for s in pool.song_ids.tolist()])
    for lo, hi in ((1, 2), (int(pool.offsets[2]) + 1, int(pool.offsets[4]) - 1), (3, n - 1)):
        assert pool.X[lo:hi].tobytes() == expected[lo:hi].tobytes(), (lo, hi)


def test_a_shard_whose_songs_are_all_removed_goes_and_the_others_stay(feats):
    P.load_pool(feats)
    first = min(_manifest(feats)["shards"].items())[1]["csvs"]
    assert len(first) == PER_SHARD
    for name in first:
        (feats / name).unlink()
    # and one song changed in a later shard, so shards after the emptied one are rewritten too
    write_feature_csv(_song(np.random.default_rng(5), 2), feats / "S09.csv")
    _bump(feats / "S09.csv")
    pool = P.load_pool(feats)
    gone = {n[:-4].lower() for n in first}
    assert pool.song_ids.tolist() == [f"s{i:02d}" for i in range(N_SONGS) if f"s{i:02d}" not in gone]
    _assert_every_song_is_its_csv(feats, pool)
    assert sum(len(r["csvs"]) for r in _manifest(feats)["shards"].values()) == N_SONGS - PER_SHARD

