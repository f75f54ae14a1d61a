"""Issue 23 item 6: nothing read from a cache in the pool folder is used unverified.

The pool folder holds three caches: the consolidated pool (.pool_cache/), the song
probabilities of saved committees (.song_proba_cache/) and the margins of XGBoost members'
leading rounds (.tree_margin_cache/). Each of them used to be read as found: editing one
changed every new or retrained listener's ranking, exit 0, no warning. Now every cache file
is checked against a checksum written with it (in its name, or in the cache's meta.json);
a file that does not match is one `warning:` line naming it, and the answer is computed
again: the tests run the scripts as a platform would and compare with the answer of an
untouched copy."""
import json
import shutil

import numpy as np
import pytest

from test_loop_support import TEST_USER, env_for, loop_assets, loop_env, ok, run  # noqa: F401


def _one_warning(result, *needles):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert len(warnings) == 1, result.stderr
    for needle in needles:
        assert needle in warnings[0], (needle, warnings[0])
    assert not [line for line in lines if line.startswith("error: ")], result.stderr
    return warnings[0]


def _twin(env, tmp_path, *drop):
    """A copy of the whole environment (data, committee, users) without the caches in `drop`."""
    base = tmp_path / "twin"
    for name in ("data", "pretrained", "models"):
        if (env["dir"] / name).exists():
            shutil.copytree(env["dir"] / name, base / name)
    for cache in drop:
        shutil.rmtree(base / "data" / "feats" / cache, ignore_errors=True)
    return env_for(base)


def _hard_tracks(env, user):
    result = run(env, "get_hard_tracks.py", "-i", user, "-q", "4", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result


def test_an_edited_song_probability_cache_is_a_warning_and_a_recompute(loop_env):
    env = loop_env
    for user in ("first", "second"):
        ok(env, "create_user.py", "-i", user, "-m", "mc")
    first, _ = _hard_tracks(env, "first")
    (cached,) = (env["feats"] / ".song_proba_cache").glob("*.npy")
    proba = np.load(cached)
    proba[:] = np.array([0.97, 0.01, 0.01, 0.01])  # every song certain: no informative song left
    proba[:, -3:] = 0.25                           # but the last three: most uncertain
    np.save(cached, proba)
    second, result = _hard_tracks(env, "second")
    assert second == first  # the committee's real ranking, not the edited one
    _one_warning(result, ".song_proba_cache", "recomputed")
    # the recomputed entry is cached again and served quietly
    ok(env, "create_user.py", "-i", "third", "-m", "mc")
    third, result = _hard_tracks(env, "third")
    assert third == first and "warning" not in result.stderr


def test_an_edited_tree_margin_cache_is_a_warning_and_a_recompute(loop_env, tmp_path):
    env = loop_env
    ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    asked, _ = _hard_tracks(env, TEST_USER)
    ok(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps({s: "Q1" for s in asked}))
    margins = sorted((env["feats"] / ".tree_margin_cache").glob("r*.npy"))
    assert margins, "the pre-trained XGBoost member's margins were cached"
    twin = _twin(env, tmp_path, ".tree_margin_cache", ".song_proba_cache")
    expected, quiet = _hard_tracks(twin, TEST_USER)
    assert "warning" not in quiet.stderr
    for path in margins:
        values = np.load(path)
        values[:, 0] += 50.0  # every window's Q1 margin
        np.save(path, values)
    got, result = _hard_tracks(env, TEST_USER)
    assert got == expected
    _one_warning(result, ".tree_margin_cache", "recomputed")


def test_an_edited_pool_shard_is_an_error_naming_it_and_consolidate_rebuilds_it(loop_env, tmp_path):
    env = loop_env
    for user in ("first", "second"):
        ok(env, "create_user.py", "-i", user, "-m", "mc")
    first, _ = _hard_tracks(env, "first")
    shutil.rmtree(env["feats"] / ".song_proba_cache")  # so the pool's windows are scored again
    shard = sorted((env["feats"] / ".pool_shards").glob("shard-*.npy"))[0]
    X = np.load(shard)
    X[:] = 0.0
    np.save(shard, X)
    result = run(env, "get_hard_tracks.py", "-i", "second", "-q", "4")
    assert result.returncode == 1 and result.stderr.startswith(f"error: {shard}: pool shard does not match its checksum")
    assert "extract_features.py --consolidate" in result.stderr
    fixed = run(env, "extract_features.py", "--consolidate", env["feats"], "-q")
    assert fixed.returncode == 0 and f"{shard.name}" in fixed.stderr and "rebuilt from the CSVs" in fixed.stderr
    second, result = _hard_tracks(env, "second")
    assert second == first and "warning" not in result.stderr


# --- the pool cache's checks, one at a time -----------------------------------------------
@pytest.fixture
def small_pool(tmp_path):
    from test_loop_support import write_pool

    folder = tmp_path / "feats"
    write_pool(folder, n_songs=6, n_windows=3)
    return folder


def _count_csv_reads(monkeypatch):
    from trompa_mer import pool as P

    reads = []
    real = P._read_song
    monkeypatch.setattr(P, "_read_song", lambda path: reads.append(path.name) or real(path))
    return reads


def test_pool_cache_edited_in_place_with_its_old_times_is_caught(small_pool, monkeypatch):
    """An in-place write with the modification time set back: the ctime still moved."""
    import os

    from trompa_mer import pool as P

    P.write_single_file_store(small_pool)  # the single-file store of before (shards: test_pool_shards.py)
    expected = np.asarray(P.load_pool(small_pool).X).copy()
    path = small_pool / P.CACHE_NAME / "X.npy"
    st = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(-4, os.SEEK_END)
        handle.write(np.float32(1234.5).tobytes())
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    reads = _count_csv_reads(monkeypatch)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # a repeated warning would show (no de-duplication)
        pool = P.load_pool(small_pool)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "X.npy: pool cache file does not match its checksum" in messages[0], messages
    np.testing.assert_array_equal(pool.X, expected)
    assert len(reads) == 6  # rebuilt from the CSVs


def test_pool_cache_copied_elsewhere_is_hashed_once_and_served(small_pool, tmp_path, monkeypatch):
    """A copied folder (new inodes and times): the content is hashed, matches, is served, and
    the new identities are recorded so the next load takes the fast path."""
    import warnings

    from trompa_mer import pool as P

    P.write_single_file_store(small_pool)  # the single-file store of before (shards: test_pool_shards.py)
    expected = np.asarray(P.load_pool(small_pool).X).copy()
    copy = tmp_path / "copied"
    shutil.copytree(small_pool, copy)  # copy2 keeps the CSVs' times: same listing
    reads = _count_csv_reads(monkeypatch)
    hashed = []
    from trompa_mer import cache_files

    real = cache_files.open_npy
    monkeypatch.setattr(cache_files, "open_npy", lambda *a: (lambda r: hashed.append(r[1] is not None) or r)(real(*a)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pool = P.load_pool(copy)
        np.testing.assert_array_equal(pool.X, expected)
        assert reads == [] and hashed == [True] * 4
        hashed.clear()
        P.load_pool(copy)
        assert hashed == [False] * 4 and reads == []


@pytest.mark.parametrize("damage, message", [("missing checksum", r"offsets\.npy: pool cache file has no checksum"),
                                             ("file removed", r"frame_times\.npy: pool cache file is missing"),
                                             ("not an array", r"song_ids\.npy: pool cache file is not a readable array")])
def test_pool_cache_without_a_checksum_or_a_file_is_rebuilt(small_pool, monkeypatch, damage, message):
    import hashlib

    from trompa_mer import pool as P

    P.write_single_file_store(small_pool)  # the single-file store of before (shards: test_pool_shards.py)
    expected = np.asarray(P.load_pool(small_pool).X).copy()
    meta_path = small_pool / P.CACHE_NAME / "meta.json"
    meta = json.loads(meta_path.read_text())
    if damage == "missing checksum":
        del meta["files"]["offsets"]
    elif damage == "file removed":
        (small_pool / P.CACHE_NAME / "frame_times.npy").unlink()
    else:  # bytes that match their checksum but are no array (a writer's bug, not an edit)
        (small_pool / P.CACHE_NAME / "song_ids.npy").write_bytes(b"not an array")
        meta["files"]["song_ids"] = {"sha256": hashlib.sha256(b"not an array").hexdigest(), "stat": None}
    meta_path.write_text(json.dumps(meta))
    reads = _count_csv_reads(monkeypatch)
    with pytest.warns(UserWarning, match=message):
        pool = P.load_pool(small_pool)
    np.testing.assert_array_equal(pool.X, expected)
    assert len(reads) == 6


def test_a_freshly_written_pool_cache_is_served_without_hashing(small_pool, monkeypatch):
    """The identity recorded when the cache was written is the file's: no hashing on a hit."""
    import hashlib

    from trompa_mer import pool as P

    P.write_single_file_store(small_pool)  # the single-file store of before (shards: test_pool_shards.py)
    meta = json.loads((small_pool / P.CACHE_NAME / "meta.json").read_text())
    assert set(meta["files"]) == set(P.CACHE_ARRAYS)
    for name, record in meta["files"].items():
        path = small_pool / P.CACHE_NAME / f"{name}.npy"
        assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        st = path.stat()
        assert record["stat"] == [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    from trompa_mer import cache_files

    refreshed = []
    real = cache_files.open_npy
    monkeypatch.setattr(cache_files, "open_npy", lambda *a: (lambda r: refreshed.append(r[1]) or r)(real(*a)))
    P.load_pool(small_pool)
    assert refreshed == [None] * 4  # every file served on its recorded identity, none hashed


def test_pool_cache_one_file_touched_is_hashed_and_the_others_keep_their_identity(small_pool, monkeypatch):
    """Only the file whose identity changed is hashed; the refreshed meta.json keeps the other
    files' recorded identities, so the next load hashes nothing."""
    import os

    from trompa_mer import cache_files, pool as P

    P.write_single_file_store(small_pool)  # the single-file store of before (shards: test_pool_shards.py)
    path = small_pool / P.CACHE_NAME / "offsets.npy"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # a touch: same bytes, new identity
    refreshed = []
    real = cache_files.open_npy
    monkeypatch.setattr(cache_files, "open_npy", lambda *a: (lambda r: refreshed.append(r[1]) or r)(real(*a)))
    P.load_pool(small_pool)
    assert [r is not None for r in refreshed] == [name == "offsets" for name in P.CACHE_ARRAYS]
    refreshed.clear()
    P.load_pool(small_pool)
    assert refreshed == [None] * 4


# --- the two prediction caches' warnings, in-process ----------------------------------------
def test_each_prediction_cache_says_which_file_failed_and_how(tmp_path):
    import warnings

    from trompa_mer.pool_scoring import TREE_MARGIN_CACHE, TreeMarginCache, cached_song_proba
    from test_cache_keys import SCALER, FakeTrees

    class Saved:  # a committee as saved on disk: 2 members
        members = [("a", None), ("b", None)]

        def content_digest(self):
            return "d" * 64

    proba = np.full((2, 3, 4), 0.25)
    cached_song_proba(Saved(), tmp_path, ["s0", "s1", "s2"], lambda: proba)
    (entry,) = (tmp_path / ".song_proba_cache").glob("*.npy")
    entry.write_bytes(entry.read_bytes()[:-8] + np.float64(0.5).tobytes())  # one value edited
    margins = TreeMarginCache(tmp_path, SCALER, "pool-a")
    margins.store(FakeTrees(5), np.zeros((7, 4), np.float32))
    (margin_file,) = (tmp_path / TREE_MARGIN_CACHE).glob("r00005-*.npy")
    margin_file.write_bytes(b"\x93NUMPY not an array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = cached_song_proba(Saved(), tmp_path, ["s0", "s1", "s2"], lambda: proba)
        assert margins.lookup(FakeTrees(5), 7) is None
    np.testing.assert_array_equal(again, proba)
    messages = [str(w.message) for w in caught]
    assert messages == [
        f"{entry}: cache file of song probabilities does not match the checksum in its name (changed or "
        f"damaged after it was written); not used, recomputed",
        f"{margin_file}: cache file of tree margins does not match the checksum in its name (changed or "
        f"damaged after it was written); not used, recomputed"], messages
    assert not margin_file.exists() and entry.exists()  # the damaged file removed, the good one rewritten
    # bytes that match their name but are no array: named as such
    bad = tmp_path / TREE_MARGIN_CACHE / ("r00005-x-" + __import__("hashlib").sha256(b"junk").hexdigest() + ".npy")
    bad.write_bytes(b"junk")
    from trompa_mer.pool_scoring import _read_checked

    with pytest.warns(UserWarning, match=r"cache file of tree margins is not a readable array"):
        assert _read_checked(bad, "tree margins") is None


def test_a_pool_of_one_readable_song_loads_and_of_none_is_refused(tmp_path):
    from test_loop_support import write_pool
    from trompa_mer import pool as P
    from trompa_mer.errors import MERError

    folder = tmp_path / "feats"
    write_pool(folder, n_songs=2, n_windows=3)
    (folder / "song01.csv").write_text("frameTime;nothing\n0;1\n")
    with pytest.warns(UserWarning, match="song01.csv: skipped"):
        assert P.load_pool(folder, cache=False).song_ids.tolist() == ["song00"]
    (folder / "song00.csv").write_text("frameTime;nothing\n0;1\n")
    with pytest.warns(UserWarning), pytest.raises(MERError, match="none of the 2 feature CSVs in the pool folder is readable"):
        P.load_pool(folder, cache=False)
