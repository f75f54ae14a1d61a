"""get_hard_tracks --candidates: a round ranks a seeded random sample of the unlabelled songs
(issue 22), and ranks exactly as before when the sample would cover them all."""
import json
import zlib

import numpy as np
import pytest

from test_loop_support import TEST_USER, call, loop_assets, loop_env, song_ids  # noqa: F401
from trompa_mer import loop
from trompa_mer.committee import Committee
from trompa_mer.errors import MERError
from trompa_mer.pool import open_pool, write_single_file_store
from trompa_mer.pool_scoring import pool_song_proba
from trompa_mer import consensus


def _user(env, mode="mc", balanced=False, user=TEST_USER):
    loop.create_user(user, mode, env["users"], env["dir"] / "pretrained", balanced=balanced,
                     annotations_path=env["dir"] / "data" / "annotations.csv", feats_dir=env["feats"])
    return user


def _state(env, user=TEST_USER):
    return json.loads((env["users"] / user / "state.json").read_text())


def _rank(env, q=4, candidates=None, user=TEST_USER):
    return loop.get_hard_tracks(user, q, env["users"], env["feats"], candidates=candidates)


def test_a_sample_covering_every_unlabelled_song_ranks_as_before(loop_env, tmp_path):
    env = loop_env
    _user(env)
    everything = _rank(env, candidates=None)
    state_all = _state(env)
    for candidates in (len(song_ids()), len(song_ids()) + 1, 10_000):
        (env["users"] / TEST_USER / "state.json").write_text(json.dumps(dict(state_all, pending=[])))
        again = _rank(env, candidates=candidates)
        assert again["songs"] == everything["songs"] and again["scores"] == everything["scores"]
        assert again["candidates"] is None and "pending_candidates" not in _state(env)


def test_a_smaller_sample_is_drawn_per_user_and_round_and_recorded(loop_env):
    env = loop_env
    _user(env)
    result = _rank(env, q=3, candidates=8)
    seed_parts = [1987, zlib.crc32(TEST_USER.encode()), 0, 1]
    expected_sample, parts = loop.candidate_sample(TEST_USER, 0, 1987, song_ids(), 8)
    assert parts == seed_parts
    assert len(expected_sample) == 8 and list(expected_sample) == sorted(expected_sample)
    assert set(result["songs"]) <= set(expected_sample.tolist())
    record = {"size": 8, "unlabelled": len(song_ids()), "seed": seed_parts}
    assert result["candidates"] == record
    assert _state(env)["pending_candidates"] == record
    # asked again while pending: the same songs and the same record
    again = _rank(env, q=3, candidates=8)
    assert again["reused"] and again["songs"] == result["songs"] and again["candidates"] == record
    # answered: the record moves into the round's history
    loop.retrain(TEST_USER, json.dumps({s: "Q1" for s in result["songs"]}), env["users"], env["feats"])
    state = _state(env)
    assert "pending_candidates" not in state
    assert state["history"][-1]["candidates"] == record
    # the next round samples other songs, never an asked one, from a stream of round 1
    second = _rank(env, q=3, candidates=8)
    unlabelled = [s for s in song_ids() if s not in result["songs"]]
    sample, parts = loop.candidate_sample(TEST_USER, 1, 1987, unlabelled, 8)
    assert parts == [1987, zlib.crc32(TEST_USER.encode()), 1, 1]
    assert second["candidates"] == {"size": 8, "unlabelled": len(unlabelled), "seed": parts}
    assert set(second["songs"]) <= set(sample.tolist()) and not set(second["songs"]) & set(result["songs"])


def test_the_sample_is_ranked_by_the_same_scores_as_the_whole_pool(loop_env):
    env = loop_env
    _user(env)
    result = _rank(env, q=5, candidates=10)
    sample, _ = loop.candidate_sample(TEST_USER, 0, 1987, song_ids(), 10)
    committee = Committee.load(env["users"] / TEST_USER / _state(env)["committee"])
    pool = open_pool(env["feats"])
    whole = consensus.entropy(consensus.machine_consensus(pool_song_proba(committee, pool)))
    score_of = dict(zip(song_ids(), whole))
    expected = consensus.rank_by_score(sample, [score_of[s] for s in sample])[:5]
    assert result["songs"] == expected
    for song in expected:
        assert result["scores"][song] == pytest.approx(score_of[song], abs=1e-12)


def test_different_users_draw_different_samples():
    a, _ = loop.candidate_sample("alice", 0, 1987, song_ids(), 8)
    b, _ = loop.candidate_sample("bob", 0, 1987, song_ids(), 8)
    c, _ = loop.candidate_sample("alice", 0, 1988, song_ids(), 8)
    again, _ = loop.candidate_sample("alice", 0, 1987, song_ids(), 8)
    assert a.tolist() == again.tolist()
    assert a.tolist() != b.tolist() and a.tolist() != c.tolist()


def test_balanced_selection_also_ranks_the_sample(loop_env):
    env = loop_env
    _user(env, mode="rand", balanced=True)
    result = _rank(env, q=4, candidates=8)
    sample, _ = loop.candidate_sample(TEST_USER, 0, 1987, song_ids(), 8)
    assert set(result["songs"]) <= set(sample.tolist())
    assert result["candidates"]["size"] == 8


@pytest.mark.parametrize("mode", ["hc", "rand"])
def test_modes_that_do_not_score_with_the_committee_rank_every_song(loop_env, mode):
    env = loop_env
    _user(env, mode=mode)
    sampled = _rank(env, candidates=3)
    assert sampled["candidates"] is None and "pending_candidates" not in _state(env)
    state = _state(env)
    (env["users"] / TEST_USER / "state.json").write_text(json.dumps(dict(state, pending=[])))
    assert _rank(env, candidates=None)["songs"] == sampled["songs"]


def test_a_non_positive_count_is_refused_in_process(loop_env):
    env = loop_env
    _user(env)
    with pytest.raises(MERError, match="candidates: expected a positive number"):
        _rank(env, candidates=0)
    assert _state(env)["pending"] == []


@pytest.mark.parametrize("value", ["0", "-3", "abc", "1.5", ""])
def test_the_flag_refuses_anything_but_a_positive_count_or_all(loop_env, value):
    env = loop_env
    _user(env)
    result = call(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 2, "--candidates", value)
    assert result.returncode == 2
    assert "--candidates" in result.stderr and "expected a positive whole number of songs or 'all'" in result.stderr
    assert _state(env)["pending"] == []


def test_the_flag_and_its_default(loop_env):
    env = loop_env
    _user(env)
    out = call(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 2, "--candidates", "5", "--json")
    assert out.returncode == 0, out.stderr
    assert _state(env)["pending_candidates"]["size"] == 5
    sample, _ = loop.candidate_sample(TEST_USER, 0, 1987, song_ids(), 5)
    assert set(json.loads(out.stdout)) <= set(sample.tolist())
    # 'all', and the default (more candidates than this pool has songs): the whole pool, unrecorded
    for extra in (["--candidates", "ALL"], []):
        state = _state(env)
        (env["users"] / TEST_USER / "state.json").write_text(
            json.dumps({k: v for k, v in state.items() if k != "pending_candidates"} | {"pending": []}))
        out = call(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 2, *extra)
        assert out.returncode == 0, out.stderr
        assert "pending_candidates" not in _state(env)


def test_the_default_is_a_positive_setting(monkeypatch):
    import importlib

    import settings

    assert settings.CANDIDATES >= 1
    monkeypatch.setenv("MER_CANDIDATES", "0")
    with pytest.raises(SystemExit, match="MER_CANDIDATES"):
        importlib.reload(settings)
    monkeypatch.delenv("MER_CANDIDATES")
    importlib.reload(settings)


def test_subset_reads_the_same_rows_from_the_store_file_or_the_map(loop_env):
    env = loop_env
    write_single_file_store(env["feats"])  # the single-file store of before: still read with pread
    pool = open_pool(env["feats"])
    assert pool.x_source is not None
    chosen = [song_ids()[i] for i in (20, 3, 7)]
    expected = np.concatenate([np.asarray(pool.windows(s)) for s in chosen])
    read = pool.subset(chosen)
    assert np.array_equal(read.X, expected) and read.X.dtype == np.float32
    assert read.song_ids.tolist() == chosen and read.offsets.tolist() == [0, 6, 12, 18]
    # a store file that is not the verified one any more: the rows come from the map
    path, identity, offset = pool.x_source
    pool.x_source = (path, [0, 0, 0, 0], offset)
    assert np.array_equal(pool.subset(chosen).X, expected)
    pool.x_source = (str(env["feats"] / "missing.npy"), identity, offset)
    assert np.array_equal(pool.subset(chosen).X, expected)
    assert pool.subset([]).X.shape == (0, expected.shape[1])


def test_a_sample_scored_by_two_threads_gives_the_same_songs(loop_env):
    env = loop_env
    _user(env)
    one = _rank(env, q=5, candidates=12)
    state = _state(env)
    (env["users"] / TEST_USER / "state.json").write_text(
        json.dumps({k: v for k, v in state.items() if k != "pending_candidates"} | {"pending": []}))
    two = loop.get_hard_tracks(TEST_USER, 5, env["users"], env["feats"], candidates=12, jobs=2)
    assert two["songs"] == one["songs"] and two["candidates"] == one["candidates"]
    for song in one["songs"]:
        assert two["scores"][song] == pytest.approx(one["scores"][song], abs=1e-12)


def test_a_sample_never_repeats_a_song():
    ids = [f"s{i:03d}" for i in range(60)]
    for size in (30, 59):
        sample, _ = loop.candidate_sample("alice", 2, 1987, ids, size)
        assert len(sample) == size and len(set(sample.tolist())) == size


class _NoSlices:
    """Stands in for a pool's memory map: any read through it fails the test."""

    def __init__(self, shape):
        self.shape, self.dtype = shape, np.dtype(np.float32)

    def __getitem__(self, key):
        raise AssertionError("read through the memory map")


def test_subset_reads_a_verified_store_with_pread_and_only_then(loop_env):
    env = loop_env
    write_single_file_store(env["feats"])  # the single-file store of before (shards: test_pool_shards.py)
    pool = open_pool(env["feats"])
    chosen = [song_ids()[i] for i in (0, 1, 5)]  # early songs: a wrong read would not hit the end of the file
    expected = np.concatenate([np.asarray(pool.windows(s)) for s in chosen])
    expected_times = np.concatenate([np.asarray(pool.frame_times[pool.offsets[pool.index_of(s)]:
                                                                 pool.offsets[pool.index_of(s) + 1]]) for s in chosen])
    mapped = pool.X
    pool.X = _NoSlices(mapped.shape)
    read = pool.subset(chosen)  # through pread alone
    assert np.array_equal(read.X, expected) and read.X.dtype == np.float32
    assert np.array_equal(read.frame_times, expected_times) and read.feature_names == pool.feature_names
    empty = pool.subset([])
    assert empty.X.shape == (0, mapped.shape[1]) and empty.X.dtype == np.float32
    assert len(empty.frame_times) == 0 and empty.offsets.tolist() == [0]
    path, identity, offset = pool.x_source
    pool.x_source = (path, [identity[0] + 1, *identity[1:]], offset)  # another file now: not read
    with pytest.raises(AssertionError, match="memory map"):
        pool.subset(chosen)
    pool.x_source = (path, identity, offset + 10 ** 9)  # a read past the end: not used
    with pytest.raises(AssertionError, match="memory map"):
        pool.subset(chosen)


def test_a_sample_reads_the_committees_cached_scores_of_the_whole_pool(loop_env, monkeypatch):
    """Once the default committee has ranked the whole pool (its song probabilities cached), a
    new user's sample takes its rows from that cache: the same scores, nothing scored."""
    env = loop_env
    _user(env, user="first")
    whole = _rank(env, q=24, candidates=None, user="first")  # every song scored and cached
    _user(env)

    def no_scoring(*args, **kwargs):
        raise AssertionError("scored although cached")

    monkeypatch.setattr(loop, "pool_song_proba", no_scoring)
    sampled = _rank(env, q=3, candidates=8)
    sample, _ = loop.candidate_sample(TEST_USER, 0, 1987, song_ids(), 8)
    expected = consensus.rank_by_score(sample, [whole["scores"][s] for s in sample])[:3]
    assert sampled["songs"] == expected
    assert all(sampled["scores"][s] == whole["scores"][s] for s in expected)  # the same bits
    # a retrained committee has no cached scores: its sample is scored
    loop.retrain(TEST_USER, json.dumps({s: "Q2" for s in sampled["songs"]}), env["users"], env["feats"])
    with pytest.raises(AssertionError, match="scored although cached"):
        _rank(env, q=3, candidates=8)


@pytest.mark.parametrize("candidates", [None, 8])
def test_a_fully_cached_ranking_builds_no_member(loop_env, monkeypatch, candidates):
    """A new user of a committee whose scores of the whole pool are cached: ranked from its
    verified manifest and the cache alone, no member built (so no member library imported)."""
    env = loop_env
    _user(env, user="first")
    whole = _rank(env, q=24, candidates=None, user="first")
    _user(env)
    from trompa_mer.users import UserStore

    def no_load(*args, **kwargs):
        raise AssertionError("committee loaded although its scores are cached")

    monkeypatch.setattr(UserStore, "load_committee", no_load)
    result = _rank(env, q=3, candidates=candidates)
    ids = song_ids() if candidates is None else loop.candidate_sample(TEST_USER, 0, 1987, song_ids(), 8)[0].tolist()
    expected = consensus.rank_by_score(ids, [whole["scores"][s] for s in ids])[:3]
    assert result["songs"] == expected and all(result["scores"][s] == whole["scores"][s] for s in expected)
    # a changed member file is refused by the manifest check, as a load would refuse it
    state = _state(env)
    (env["users"] / TEST_USER / "state.json").write_text(
        json.dumps({k: v for k, v in state.items() if k != "pending_candidates"} | {"pending": []}))
    folder = env["users"] / TEST_USER / state["committee"]
    manifest = json.loads((folder / "committee.json").read_text())
    manifest["checksums"][manifest["scaler"]] = "0" * 64
    (folder / "committee.json").write_text(json.dumps(manifest))
    with pytest.raises(MERError, match="sha256|checksum"):
        _rank(env, q=3, candidates=candidates)


def test_a_store_verified_by_its_content_after_a_copy_is_read_with_pread(loop_env, tmp_path):
    """A copied pool folder: its store files have new identities, are hashed once, and the
    refreshed identity of X is the one subset() checks before reading with pread."""
    env = loop_env
    write_single_file_store(env["feats"])  # the single-file store of before (shards: test_pool_shards.py)
    copy = tmp_path / "copied"
    import shutil

    shutil.copytree(env["feats"], copy)
    pool = open_pool(copy)
    path, identity, offset = pool.x_source
    assert path == str(copy / ".pool_cache" / "X.npy") and offset >= 64
    from trompa_mer import cache_files
    import os

    assert identity == cache_files.identity(os.stat(path))
    chosen = [song_ids()[i] for i in (0, 2)]
    expected = np.concatenate([np.asarray(pool.windows(s)) for s in chosen])
    pool.X = _NoSlices(expected.shape[:1] + pool.X.shape[1:])
    assert np.array_equal(pool.subset(chosen).X, expected)


def test_a_pool_read_without_a_memory_map_has_no_store_file_to_read_and_subsets_from_memory(loop_env):
    from trompa_mer.pool import load_pool

    env = loop_env
    open_pool(env["feats"])
    pool = load_pool(env["feats"], mmap=False)
    assert pool.x_source is None and not isinstance(pool.X, np.memmap)
    chosen = [song_ids()[i] for i in (4, 1)]
    expected = np.concatenate([np.asarray(pool.windows(s)) for s in chosen])
    assert np.array_equal(pool.subset(chosen).X, expected)
