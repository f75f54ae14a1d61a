"""Two processes on one user, and processes that die in the middle of saving."""
import json
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from test_loop_support import (ROOT, TEST_USER, call_ok, loop_assets, loop_env,  # noqa: F401
                               read_state, retrain_failing_each_rename, run)
from trompa_mer.committee import Committee
from trompa_mer.errors import MERError
from trompa_mer.users import UserStore, committee_folder_name


def _assert_consistent(env, user=TEST_USER):
    """The state loads, names a complete committee that loads, and agrees with its history."""
    state = UserStore(env["users"]).read_state(user)
    assert state["iteration"] == len(state["history"])
    assert state["committee"] == committee_folder_name(state["iteration"])
    Committee.load(env["users"] / user / state["committee"])
    assert len(state["asked"]) == sum(len(h["asked"]) for h in state["history"])
    return state


def test_lock_waits_for_the_holder_then_proceeds(tmp_path):
    store = UserStore(tmp_path)
    released = threading.Event()

    def hold():
        with store.lock("bob", timeout=5):
            time.sleep(0.6)
        released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    start = time.monotonic()
    with store.lock("bob", timeout=10):
        waited = time.monotonic() - start
        assert released.is_set()
    holder.join()
    assert waited >= 0.4


def test_lock_timeout_is_a_clear_error(tmp_path):
    store = UserStore(tmp_path)
    with store.lock("bob"):
        with pytest.raises(MERError, match=r"user 'bob' is busy: another process holds .*bob.lock"):
            with store.lock("bob", timeout=0.2):
                pass
        with pytest.raises(MERError, match="busy"):
            with store.lock("bob", timeout=0.2, shared=True):
                pass
    with store.lock("bob", shared=True), store.lock("bob", timeout=0.2, shared=True):
        pass  # readers share


def test_busy_user_as_a_process(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    env["env"]["MER_LOCK_TIMEOUT"] = "0.5"
    with UserStore(env["users"]).lock(TEST_USER):
        result = run(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2")
    assert result.returncode == 1 and "busy" in result.stderr and "MER_LOCK_TIMEOUT" in result.stderr
    assert read_state(env)["pending"] == []


def test_concurrent_retrain_of_one_user(loop_env):
    """Two processes retrain one user at once: one commits, the other waits for the lock and
    is then refused cleanly (the round it answered is closed); never a corrupt user."""
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "4").stdout.split()
    answers = [{songs[0]: "Q1", songs[1]: "Q2"}, {songs[2]: "Q3"}]
    store = UserStore(env["users"])
    with store.lock(TEST_USER):  # both start while the user is busy, so both must wait
        procs = [subprocess.Popen([sys.executable, str(ROOT / "retrain_model.py"), "-i", TEST_USER,
                                   "-a", json.dumps(a)], env=env["env"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for a in answers]
        time.sleep(1.0)
        assert all(p.poll() is None for p in procs), "a retrain ran while the user was locked"
    results = [p.communicate(timeout=180) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 1], results
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    assert "not pending" in results[loser][1] and len(results[loser][1].strip().splitlines()) == 1
    state = _assert_consistent(env)
    assert state["iteration"] == 1
    assert set(state["history"][0]["answers"]) == set(answers[winner])


def test_concurrent_get_hard_tracks_agree(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    procs = [subprocess.Popen([sys.executable, str(ROOT / "get_hard_tracks.py"), "-i", TEST_USER, "-q", "3"],
                              env=env["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert outs[0][0].split() == outs[1][0].split() == read_state(env)["pending"]


def test_failure_at_every_rename_of_a_retrain_keeps_the_previous_user(loop_env, monkeypatch):
    """Make the n-th os.replace of a retrain fail, for every n: each time the user folder's
    state is byte-identical, its committee loads, and the next retrain succeeds."""
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2").stdout.split()
    answers = json.dumps({songs[0]: "Q2", songs[1]: "Q4"})

    def consistent(n):
        _assert_consistent(env)
        assert n < 50

    n = retrain_failing_each_rename(env, monkeypatch, answers, consistent)
    assert n > 5, "the retrain should rename several files"
    state = _assert_consistent(env)
    assert state["iteration"] == 1
    leftovers = [p.name for p in (env["users"] / TEST_USER).iterdir()
                 if p.name not in ("state.json", "committee-0000", "committee-0001", "base-committee")]
    assert leftovers == [], leftovers


CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from trompa_mer import loop
from trompa_mer.errors import MERError
users, feats = sys.argv[2], sys.argv[3]

def one_round(i):
    songs = loop.get_hard_tracks("alice", 1, users, feats)["songs"]
    loop.retrain("alice", json.dumps({songs[0]: "Q%d" % (1 + i % 4)}), users, feats)

try:
    started = time.perf_counter()
    one_round(0)  # imports and caches warm: from here on the child is only saving
    print("ready", time.perf_counter() - started, flush=True)
    # at most ROUNDS more rounds per child, so four children never use up the 24-song pool
    # however fast a round is; the parent kills within that working time
    for i in range(1, 1 + ROUNDS):
        one_round(i)
except MERError:  # the pool ran out
    pass
time.sleep(120)  # wait to be killed
""".replace("ROUNDS", "4")


def test_sigkill_at_random_moments_leaves_a_loadable_user(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "rand")
    rng = random.Random(7)
    iterations = []
    for attempt in range(4):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(env["users"]), str(env["feats"])],
                                 env=env["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = child.stdout.readline().split()
        assert line and line[0] == "ready", child.stderr.read()
        # a moment inside the child's four working rounds (each about as long as the first)
        time.sleep(rng.uniform(0.0, 4 * min(float(line[1]), 1.0)))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL, child.stderr.read()
        state = _assert_consistent(env)
        iterations.append(state["iteration"])
    assert iterations == sorted(iterations) and iterations[0] >= 1
    # the next writer tidies what the kills left and carries on
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "1").stdout.split()
    call_ok(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps({songs[0]: "Q1"}))
    state = _assert_consistent(env)
    names = sorted(p.name for p in (env["users"] / TEST_USER).iterdir())
    previous = f"committee-{state['iteration'] - 1:04d}"  # kept for undo
    assert names == sorted(["state.json", "base-committee", previous, state["committee"]]), names


def test_a_saved_committee_syncs_every_file_and_its_new_folder_once(tmp_path, monkeypatch):
    """Durable before it is named: each file of a committee being saved is fsynced, its new
    folder once (not once per file), and the folder it is renamed into after that."""
    import os

    from test_loop_support import build_committee
    from trompa_mer import atomic
    from trompa_mer.committee import Committee

    build_committee(tmp_path / "source")
    committee = Committee.load(tmp_path / "source")
    synced_dirs, synced_files = [], []
    real_fsync_dir, real_fsync = atomic.fsync_dir, os.fsync

    def fsync_dir(path):
        synced_dirs.append(os.path.basename(os.path.abspath(path)))
        real_fsync_dir(path)

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        if os.path.isfile(target):
            synced_files.append(os.path.basename(target))
        real_fsync(fd)

    monkeypatch.setattr(atomic, "fsync_dir", fsync_dir)
    monkeypatch.setattr(atomic.os, "fsync", fsync)
    committee.save(tmp_path / "saved")
    written = sorted(p.name for p in (tmp_path / "saved").iterdir())
    temporary = [d for d in synced_dirs if d.startswith(".saved.")]
    assert len(temporary) == 1, synced_dirs            # the new folder, once
    assert synced_dirs[-1] == tmp_path.name              # then its parent, after the rename
    assert len(synced_dirs) == 2, synced_dirs
    # every file was synced under its temporary name before its rename into the new folder
    assert len(synced_files) == len(written), (synced_files, written)
    # outside a new folder a file write still syncs its folder
    synced_dirs.clear()
    atomic.write_text(tmp_path / "note.txt", "x")
    assert synced_dirs == [tmp_path.name]
