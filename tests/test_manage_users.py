"""manage_users.py (list, show, export, undo, delete, gc) and --scale, run as a platform would:
the scripts on a small generated pool and committee (tests/test_loop_support.py)."""
import csv
import io
import json
import shutil
import time

import numpy as np
import pytest

from test_loop_support import (TEST_USER, assert_refused, build_committee, call, call_ok, loop_assets,  # noqa: F401
                               loop_env, ok, read_state, run, snapshot)
from trompa_mer.committee import Committee
from trompa_mer.errors import MERError
from trompa_mer.users import UserStore


def _round(env, user, answers_of, q=3):
    """One round through the scripts: propose q songs, answer them with answers_of(songs)."""
    songs = call_ok(env, "get_hard_tracks.py", "-i", user, "-q", q).stdout.split()
    call_ok(env, "retrain_model.py", "-i", user, "-a", json.dumps(answers_of(songs)))
    return songs


def _blobs(env):
    shared = env["users"] / ".shared"
    return {p.name for p in shared.iterdir()} if shared.is_dir() else set()


def test_list_show_and_export_as_a_user_would(loop_env, tmp_path):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    call_ok(env, "create_user.py", "-i", "bob", "-m", "rand", "--balanced")
    songs = _round(env, TEST_USER, lambda s: {s[0]: "Q2", s[1]: {"arousal": -0.5, "valence": 0.25}})
    members = len(json.loads((env["dir"] / "pretrained" / "committee.json").read_text())["members"])

    table = call_ok(env, "manage_users.py", "list").stdout.splitlines()
    assert table[0].split() == ["user", "mode", "round", "answers", "pending", "members"]
    assert table[1].split() == [TEST_USER, "mc", "1", "2", "0", str(members)]
    assert table[2].split() == ["bob", "rand+b", "0", "0", "0", str(members)]
    rows = json.loads(call_ok(env, "manage_users.py", "list", "--json").stdout)
    assert [(r["user_id"], r["round"], r["answers"], r["members"]) for r in rows] == [
        (TEST_USER, 1, 2, members), ("bob", 0, 0, members)]

    shown = call_ok(env, "manage_users.py", "show", "-i", TEST_USER).stdout
    assert "1 rounds, 2 answers, 1 skipped" in shown
    assert f"round 1: asked " in shown and f"{songs[0]}=Q2, {songs[1]}=Q4; skipped {songs[2]}" in shown
    history = json.loads(call_ok(env, "manage_users.py", "show", "-i", TEST_USER, "--json").stdout)
    assert history["history"] == read_state(env)["history"] and history["pending"] == []

    out = tmp_path / "alice.csv"
    printed = call_ok(env, "manage_users.py", "export", "-i", TEST_USER, "-o", out).stdout
    assert f"2 answers -> {out}" in printed
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["song"], r["quadrant"], r["arousal"], r["valence"], r["round"]) for r in rows] == [
        (songs[0], "Q2", "", "", "1"), (songs[1], "Q4", "-0.5", "0.25", "1")]
    # JSON on stdout, the values on the listener's 1..9 scale: -1 -> 1, 0 -> 5, +1 -> 9
    exported = json.loads(call_ok(env, "manage_users.py", "export", "-i", TEST_USER, "--format", "json",
                                  "--scale", "1..9").stdout)
    assert exported[1] == {"song": songs[1], "quadrant": "Q4", "arousal": 3.0, "valence": 6.0, "round": 1,
                           "answered_at": read_state(env)["history"][0]["answered_at"]}
    assert exported[0]["arousal"] is None


def test_refusals_name_the_user_and_the_valid_ones(loop_env, tmp_path):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    for command in ("show", "export", "undo"):
        assert_refused(call(env, "manage_users.py", command, "-i", "zed"), "'zed'", "no such user",
                       f"users: {TEST_USER}")
    assert_refused(call(env, "manage_users.py", "delete", "-i", "zed", "--yes"), "no such user", TEST_USER)
    assert_refused(call(env, "manage_users.py", "undo", "-i", TEST_USER), "nothing to undo")
    assert_refused(call(env, "manage_users.py", "export", "-i", TEST_USER, "-o", tmp_path / "no" / "x.csv"),
                   "does not exist")
    assert_refused(call(env, "manage_users.py", "export", "-i", TEST_USER, "-o", tmp_path / "x.txt"),
                   ".csv or .json")
    assert_refused(call(env, "manage_users.py", "delete", "-i", TEST_USER), "--yes")
    assert (env["users"] / TEST_USER / "state.json").is_file()
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 2).stdout.split()
    assert_refused(call(env, "manage_users.py", "undo", "-i", TEST_USER),
                   f"user '{TEST_USER}': 2 songs are pending ({songs[0]}, {songs[1]}): only an answered round")
    for bad in ("9..1", "1..1", "1-9", "a..9", "1..nan", "1..9..10"):
        result = call(env, "manage_users.py", "export", "-i", TEST_USER, "--scale", bad)
        assert result.returncode == 2 and "--scale" in result.stderr and "LOW..HIGH" in result.stderr, bad
    nobody = {**env, "env": {**env["env"], "MER_USERS_DIR": str(tmp_path / "none")}}
    assert "no users in" in call_ok(nobody, "manage_users.py", "list").stdout


def test_undo_restores_the_previous_committee_exactly(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    _round(env, TEST_USER, lambda s: {s[0]: "Q1", s[1]: "Q3", s[2]: {"arousal": -0.5, "valence": 0.5}})
    user_dir = env["users"] / TEST_USER
    kept = snapshot(user_dir / "committee-0001")
    X = np.random.default_rng(3).normal(size=(10, 260))
    before = Committee.load(user_dir / "committee-0001").window_proba(X)
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 3).stdout.split()
    pending_state = read_state(env)
    answers = json.dumps({songs[0]: {"arousal": 0.9, "valence": 0.1}, songs[1]: "Q2"})
    call_ok(env, "retrain_model.py", "-i", TEST_USER, "-a", answers)
    assert sorted(p.name for p in user_dir.iterdir() if p.name.startswith("committee-")) == [
        "committee-0001", "committee-0002"], "the previous round's committee is kept for undo"
    assert snapshot(user_dir / "committee-0001") == kept

    out = call_ok(env, "manage_users.py", "undo", "-i", TEST_USER).stdout
    assert "round 2 undone, back at round 1; 2 answers withdrawn, 3 songs pending again" in out
    assert read_state(env) == pending_state  # exactly the state before the retrain
    assert snapshot(user_dir / "committee-0001") == kept
    assert not (user_dir / "committee-0002").exists()
    assert np.array_equal(Committee.load(user_dir / "committee-0001").window_proba(X), before)

    # one round back only: the undone round's songs are pending again
    assert_refused(call(env, "manage_users.py", "undo", "-i", TEST_USER), "3 songs are pending",
                   "only an answered round can be undone, once")
    # the round answered again goes on as before
    call_ok(env, "retrain_model.py", "-i", TEST_USER, "-a", answers)
    assert read_state(env)["iteration"] == 2 and not (user_dir / "committee-0000").exists()
    # a user whose previous committee is gone (rounds answered before undo existed)
    shutil.rmtree(user_dir / "committee-0001")
    snapshot_before = snapshot(user_dir)
    assert_refused(call(env, "manage_users.py", "undo", "-i", TEST_USER), "round 2 cannot be undone",
                   "committee-0001", "was not kept")
    assert snapshot(user_dir) == snapshot_before


def test_undo_of_the_first_round_and_of_a_crowd_user(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc", "--crowd-member")
    user_dir = env["users"] / TEST_USER
    created = read_state(env)
    start = {name: snapshot(user_dir / name) for name in ("committee-0000", "crowd-0000")}
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 2).stdout.split()
    pending_state = read_state(env)
    call_ok(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps({s: "Q4" for s in songs}))
    call_ok(env, "manage_users.py", "undo", "-i", TEST_USER)
    assert read_state(env) == pending_state and pending_state["iteration"] == created["iteration"] == 0
    assert {name: snapshot(user_dir / name) for name in start} == start
    assert sorted(p.name for p in user_dir.iterdir()) == [
        "base-committee", "base-crowd", "committee-0000", "crowd-0000", "crowd_features.csv", "state.json"]


def test_delete_forgets_one_user_and_collects_only_their_blobs(loop_env):
    env = loop_env
    other = env["dir"] / "other-committee"
    build_committee(other, seed=7)
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    call_ok(env, "create_user.py", "-i", "bob", "-m", "mc", "--committee", other)
    call_ok(env, "create_user.py", "-i", "carol", "-m", "mc", "--committee", other)
    _round(env, "bob", lambda s: {s[0]: "Q1"})
    store = UserStore(env["users"])
    alice_only = store.shared.referenced()
    bob_dir, carol_dir = snapshot(env["users"] / "bob"), snapshot(env["users"] / "carol")
    sizes = {p.name: p.stat().st_size for p in (env["users"] / ".shared").iterdir()}

    out = call_ok(env, "manage_users.py", "delete", "-i", TEST_USER, "--yes").stdout
    assert f"user {TEST_USER} deleted" in out
    assert not (env["users"] / TEST_USER).exists()
    assert _blobs(env) == store.shared.referenced(), "every blob left is referred to, and only those"
    removed = alice_only - store.shared.referenced()
    freed = sum(sizes[name] for name in removed) / 1e6
    assert removed and f"shared store: {len(removed)} files no user refers to removed ({freed:.2f} MB)" in out
    assert len(removed) > 1, "the freed bytes are a sum"
    assert snapshot(env["users"] / "bob") == bob_dir and snapshot(env["users"] / "carol") == carol_dir
    assert (env["users"] / ".locks" / f"{TEST_USER}.lock").exists(), "the lock file stays"
    for user in ("bob", "carol"):  # the others go on
        _round(env, user, lambda s: {s[0]: "Q3"})
    rows = json.loads(call_ok(env, "manage_users.py", "list", "--json").stdout)
    assert [r["user_id"] for r in rows] == ["bob", "carol"]
    # nothing more to collect
    assert "0 files no user refers to removed" in call_ok(env, "manage_users.py", "gc").stdout


def test_gc_waits_for_writers_and_stops_on_an_unreadable_manifest(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    call_ok(env, "create_user.py", "-i", "bob", "-m", "mc")
    store = UserStore(env["users"])
    with store.shared.lock():  # a create or a retrain's save in progress holds it shared
        started = time.monotonic()
        with pytest.raises(MERError, match=r"the shared store .* is busy"):
            store.collect_garbage(timeout=0)
        assert time.monotonic() - started < 5, "the timeout given is the one waited"
    (env["users"] / "bob" / "committee-0000" / "committee.json").write_text("{")
    blobs = _blobs(env)
    result = call(env, "manage_users.py", "delete", "-i", TEST_USER, "--yes")
    assert result.returncode == 0 and f"user {TEST_USER} deleted" in result.stdout
    assert "warning: shared files not collected" in result.stderr and "committee.json" in result.stderr
    assert _blobs(env) == blobs, "nothing is removed while a manifest cannot be read"
    assert_refused(call(env, "manage_users.py", "gc"), "bob/committee-0000/committee.json")


def test_interrupted_delete_is_finished_by_the_next_collection(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    aside = env["users"] / f".deleting-{TEST_USER}-0123abcd"
    (env["users"] / TEST_USER).rename(aside)  # a delete killed after its rename
    result = UserStore(env["users"]).collect_garbage()
    assert not aside.exists() and result["kept"] == 0 and result["removed"] > 0 and _blobs(env) == set()


def test_retrain_with_a_scale(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 3).stdout.split()
    state_before = (env["users"] / TEST_USER / "state.json").read_bytes()
    out_of_range = json.dumps({songs[0]: {"arousal": 0, "valence": 5}})
    line = assert_refused(call(env, "retrain_model.py", "-i", TEST_USER, "-a", out_of_range, "--scale", "1..9"),
                          "arousal 0 is outside 1..9", "numbers in 1..9")
    assert "valence" not in line.split("arousal 0")[1].split(";")[0]
    assert (env["users"] / TEST_USER / "state.json").read_bytes() == state_before
    answers = {songs[0]: {"arousal": 9, "valence": 1}, songs[1]: {"arousal": 5, "valence": 7.0}, songs[2]: "Q3"}
    result = call(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps(answers), "--scale", "1..9")
    assert result.returncode == 0, result.stderr
    state = read_state(env)
    assert state["answer_values"] == {songs[0]: [1.0, -1.0], songs[1]: [0.0, 0.5]}
    assert state["answers"] == {songs[0]: "Q2", songs[1]: "Q1", songs[2]: "Q3"}  # 5 is the middle: positive
    bad = call(env, "retrain_model.py", "-i", TEST_USER, "-a", "{}", "--scale", "9..1")
    assert bad.returncode == 2 and "argument --scale: expected LOW..HIGH" in bad.stderr


def test_as_processes(loop_env, tmp_path):
    """The commands as a platform runs them: separate processes (the tests above run the same
    scripts' main in-process, which mutation testing needs)."""
    env = loop_env
    ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 2).stdout.split()
    answers = json.dumps({songs[0]: {"arousal": 2, "valence": 8}, songs[1]: "Q2"})
    ok(env, "retrain_model.py", "-i", TEST_USER, "-a", answers, "--scale", "1..9")
    assert ok(env, "manage_users.py", "list").stdout.splitlines()[1].split()[:4] == [TEST_USER, "mc", "1", "2"]
    exported = json.loads(ok(env, "manage_users.py", "export", "-i", TEST_USER, "--format", "json",
                             "--scale", "1..9").stdout)
    assert [(r["quadrant"], r["arousal"], r["valence"]) for r in exported] == [("Q4", 2.0, 8.0), ("Q2", None, None)]
    assert "round 1 undone" in ok(env, "manage_users.py", "undo", "-i", TEST_USER).stdout
    assert read_state(env)["pending"] == songs
    refused = run(env, "manage_users.py", "undo", "-i", TEST_USER)
    assert refused.returncode == 1 and refused.stderr.startswith("error: user 'alice': 2 songs are pending")
    assert f"user {TEST_USER} deleted" in ok(env, "manage_users.py", "delete", "-i", TEST_USER, "--yes").stdout
    assert not (env["users"] / TEST_USER).exists() and _blobs(env) == set()


def test_list_shows_busy_and_damaged_users(loop_env):
    from trompa_mer import manage

    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    call_ok(env, "create_user.py", "-i", "bob", "-m", "mc")
    (env["users"] / "bob" / "state.json").write_text("{")
    (env["users"] / "notes").mkdir()  # not a user: no state.json
    with UserStore(env["users"]).lock(TEST_USER):  # a retrain running
        rows = manage.list_users(env["users"], lock_timeout=0)
    assert [r["user_id"] for r in rows] == [TEST_USER, "bob"]
    assert rows[0]["problem"].startswith(f"user '{TEST_USER}' is busy")
    assert "state.json: not valid JSON" in rows[1]["problem"]
    table = call_ok(env, "manage_users.py", "list").stdout.splitlines()
    assert table[1].split()[:2] == [TEST_USER, "mc"]
    assert table[2].split()[:2] == ["bob", "unreadable:"] and "not valid JSON" in table[2]


def test_gc_counts_every_manifest_and_refuses_malformed_ones(loop_env, tmp_path):
    env = loop_env
    store = UserStore(env["users"])
    assert UserStore(tmp_path / "nobody").collect_garbage() == {"removed": 0, "freed_bytes": 0, "kept": 0}
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    blobs = _blobs(env)
    (env["users"] / "0-notes.txt").write_text("a file before the users, in sorted order")
    old = env["users"] / "carol" / "committee-0000"  # a folder written before the store: no "stored"
    shutil.copytree(env["dir"] / "pretrained", old)
    # a crowd manifest alone in its folder counts as much as a committee's
    kept = env["users"] / "dave" / "crowd-0000"
    kept.mkdir(parents=True)
    extra = store.shared.blobs.add(b"a file only dave's crowd members name")
    (kept / "crowd.json").write_text(json.dumps({"stored": {"m.npz": {"blob": extra}}}))
    result = store.collect_garbage()
    assert result == {"removed": 0, "freed_bytes": 0, "kept": len(blobs) + 1}
    assert _blobs(env) == blobs | {extra}
    for bad in ([], {"m.npz": {"blob": 5}}, {"m.npz": "abc"}):
        (kept / "crowd.json").write_text(json.dumps({"stored": bad}))
        with pytest.raises(MERError, match=r"dave/crowd-0000/crowd.json: field 'stored' is not "):
            store.collect_garbage()
        assert _blobs(env) == blobs | {extra}


def test_an_interrupted_delete_of_a_linked_user_is_finished(loop_env, tmp_path):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    call_ok(env, "create_user.py", "-i", "bob", "-m", "mc")
    disk2 = tmp_path / "disk2" / TEST_USER
    disk2.parent.mkdir()
    (env["users"] / TEST_USER).rename(disk2)
    aside = env["users"] / f".deleting-{TEST_USER}-0123abcd"
    aside.symlink_to(disk2)  # a delete killed after renaming the link aside
    blobs = _blobs(env)
    result = UserStore(env["users"]).collect_garbage()
    assert not aside.is_symlink() and not disk2.exists()
    assert result["removed"] == 0 and _blobs(env) == blobs, "bob still names every blob"
    assert (env["users"] / "bob" / "state.json").is_file()


def test_busy_users_are_not_undone_nor_deleted(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    store = UserStore(env["users"])
    with store.lock(TEST_USER):
        for verb in (store.undo, store.delete):
            started = time.monotonic()
            with pytest.raises(MERError, match=f"user '{TEST_USER}' is busy"):
                verb(TEST_USER, timeout=0)
            assert time.monotonic() - started < 5, "the timeout given is the one waited"
    assert (env["users"] / TEST_USER / "state.json").is_file()


def test_undo_refuses_a_history_that_does_not_match_naming_the_state(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    _round(env, TEST_USER, lambda s: {s[0]: "Q1"})
    path = env["users"] / TEST_USER / "state.json"
    state = json.loads(path.read_text())
    state["history"][-1]["round"] = 7
    path.write_text(json.dumps(state))
    before = snapshot(env["users"] / TEST_USER)
    assert_refused(call(env, "manage_users.py", "undo", "-i", TEST_USER),
                   f"{path}: the last 'history' entry does not match round 1")
    assert snapshot(env["users"] / TEST_USER) == before


def test_delete_of_a_user_moved_to_another_disk(loop_env, tmp_path):
    env = loop_env
    for user in (TEST_USER, "bob"):
        call_ok(env, "create_user.py", "-i", user, "-m", "mc")
    disk2 = tmp_path / "disk2"
    disk2.mkdir()
    (env["users"] / TEST_USER).rename(disk2 / TEST_USER)
    (env["users"] / TEST_USER).symlink_to(disk2 / TEST_USER)
    # mallory's link names bob's folder on the other disk: refused, nothing deleted
    (env["users"] / "bob").rename(disk2 / "bob")
    (env["users"] / "bob").symlink_to(disk2 / "bob")
    (env["users"] / "mallory").symlink_to(disk2 / "bob")
    store = UserStore(env["users"])
    with pytest.raises(MERError, match=r"mallory: is a link to .*disk2/bob, the folder of user 'bob', not 'mallory'"):
        store.delete("mallory")
    assert (disk2 / "bob" / "state.json").is_file()
    state_path = disk2 / TEST_USER / "state.json"  # a state without its user_id is read as this user's
    state_path.write_text(json.dumps({k: v for k, v in json.loads(state_path.read_text()).items() if k != "user_id"}))
    assert store.delete(TEST_USER) == {"user_id": TEST_USER, "folder": str(env["users"] / TEST_USER)}
    assert not (disk2 / TEST_USER).exists() and not (env["users"] / TEST_USER).is_symlink()
    assert sorted(p.name for p in env["users"].iterdir()) == [".locks", ".shared", "bob", "mallory"]


def test_a_delete_killed_before_its_removal_is_finished_by_gc(loop_env, monkeypatch):
    from trompa_mer import users

    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    real = shutil.rmtree

    def killed(path, *args, **kwargs):
        raise KeyboardInterrupt  # the process stops right after its rename

    monkeypatch.setattr(users.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        UserStore(env["users"]).delete(TEST_USER)
    monkeypatch.setattr(users.shutil, "rmtree", real)
    left = [p.name for p in env["users"].iterdir() if p.name.startswith(".deleting-")]
    assert len(left) == 1 and users.DELETING.fullmatch(left[0])
    assert "no such user" in call(env, "manage_users.py", "show", "-i", TEST_USER).stderr, "gone at once"
    assert call_ok(env, "manage_users.py", "gc").stdout.startswith("shared store: ")
    assert not any(p.name.startswith(".deleting-") for p in env["users"].iterdir()) and _blobs(env) == set()


def test_unknown_user_messages_list_the_users_there_are(tmp_path):
    store = UserStore(tmp_path / "users")
    with pytest.raises(MERError) as err:
        store.refuse_unknown("zed")
    assert str(err.value) == (f"user 'zed': no such user in {tmp_path / 'users'} "
                              f"(users: none yet; create one with create_user.py)")
    for i in range(21):
        (tmp_path / "users" / f"u{i:02d}").mkdir(parents=True)
        (tmp_path / "users" / f"u{i:02d}" / "state.json").write_text("{}")
    (tmp_path / "users" / "notes").mkdir()
    with pytest.raises(MERError) as err:
        store.refuse_unknown("zed")
    listed = ", ".join(f"u{i:02d}" for i in range(20))
    assert str(err.value).endswith(f"(users: {listed} ... (21 in all))")
    (tmp_path / "users" / "u20" / "state.json").unlink()  # exactly 20: all listed
    with pytest.raises(MERError) as err:
        store.refuse_unknown("zed")
    assert str(err.value).endswith(f"(users: {listed})")
    for i in range(2, 20):
        (tmp_path / "users" / f"u{i:02d}" / "state.json").unlink()
    with pytest.raises(MERError) as err:
        store.refuse_unknown("zed")
    assert str(err.value).endswith("(users: u00, u01)")
    store.refuse_unknown("u01")  # a user: nothing said


def test_undo_of_a_crowd_user_without_the_previous_crowd_members(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc", "--crowd-member")
    _round(env, TEST_USER, lambda s: {s[0]: "Q2"}, q=2)
    shutil.rmtree(env["users"] / TEST_USER / "crowd-0000")
    with pytest.raises(MERError, match=r"round 1 cannot be undone: the crowd before it \(.*crowd-0000\) was not kept"):
        UserStore(env["users"]).undo(TEST_USER)


def test_undo_says_what_it_did_and_gc_keeps_what_is_not_a_blob(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = _round(env, TEST_USER, lambda s: {s[0]: "Q2", s[2]: "Q1"})
    assert UserStore(env["users"]).undo(TEST_USER) == {
        "user_id": TEST_USER, "undone": 1, "iteration": 0, "pending": songs, "withdrawn": sorted([songs[0], songs[2]])}
    shared = env["users"] / ".shared"
    (shared / "README").write_text("not a blob")
    (shared / f".{'0' * 64}.abc.tmp").write_text("an interrupted blob write")
    call_ok(env, "manage_users.py", "delete", "-i", TEST_USER, "--yes")
    assert sorted(p.name for p in shared.iterdir()) == [f".{'0' * 64}.abc.tmp", "README"]
