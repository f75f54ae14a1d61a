"""Issue 13: every script driven into each failure class ends with exit status 1, one line on
stderr starting with `error:`, no traceback, and nothing already saved changed; inconsistent
states are refused without deleting anything; the newcomer details (original flags, case
twins, exhausted pool, playlist songs without features, demo --help)."""
import errno
import hashlib
import json
import os
import shutil

import pytest

from test_loop_support import (ROOT, TEST_USER, assert_refused, call, call_ok, loop_assets,  # noqa: F401
                               loop_env, read_state, run, snapshot, song_ids)


def refused(env, result, *needles, folder=None, before=None):
    line = assert_refused(result, *needles)
    assert "Traceback" not in result.stderr
    if before is not None:
        def files(snap):  # lock files are created by any command that waits for a user
            return {k: v for k, v in snap.items() if not k.startswith(".locks/")}
        assert files(snapshot(folder)) == files(before), "a refused command changed files"
    return line


@pytest.fixture
def user(loop_env):
    call_ok(loop_env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    return loop_env


# --- part 1: inconsistent state, nothing deleted ---------------------------------------------
@pytest.mark.parametrize("committee", ["committee-0003", "../carol/committee-0000"])
@pytest.mark.parametrize("script", ["get_hard_tracks.py", "retrain_model.py", "get_recommendations.py",
                                    "predict_emotion.py"])
def test_an_inconsistent_state_is_refused_and_nothing_is_deleted(user, committee, script):
    env = user
    call_ok(env, "create_user.py", "-i", "carol", "-m", "mc")
    call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2")
    path = env["users"] / TEST_USER / "state.json"
    state = json.loads(path.read_text())
    state["committee"] = committee
    path.write_text(json.dumps(state))
    args = {"get_hard_tracks.py": ["-i", TEST_USER, "-q", "2"],
            "retrain_model.py": ["-i", TEST_USER, "-a", json.dumps({state["pending"][0]: "Q1"})],
            "get_recommendations.py": ["-i", TEST_USER, "-r", "g2"],
            "predict_emotion.py": ["-i", env["feats"] / "song01.csv", "-o", env["dir"] / "p.json",
                                   "-u", TEST_USER]}[script]
    before = snapshot(env["users"])
    refused(env, call(env, script, *args), "field 'committee'", "inconsistent", "recreate the user",
            folder=env["users"], before=before)
    assert (env["users"] / TEST_USER / "committee-0000" / "committee.json").is_file()
    assert (env["users"] / "carol" / "committee-0000" / "committee.json").is_file()


def test_answers_with_a_song_twice_are_refused(user):
    env = user
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2").stdout.split()
    path = env["dir"] / "answers.json"
    path.write_text(f'{{"{songs[0]}": "Q1", "{songs[0].upper()}": "Q3", "{songs[0]}": "Q3"}}')
    before = snapshot(env["users"])
    refused(env, call(env, "retrain_model.py", "-i", TEST_USER, "-a", path), "given twice",
            folder=env["users"], before=before)


def test_hc_consensus_covering_no_pool_song_is_refused_and_coverage_reported(loop_env):
    env = loop_env
    out = call_ok(env, "create_user.py", "-i", "bob", "-m", "hc").stdout
    assert "covering 20 of the 24 pool songs (83%)" in out, out
    other = env["dir"] / "other.csv"
    other.write_text("user,song,quadrant\nu1,elsewhere1,Q1\nu2,elsewhere2,Q2\n")
    before = snapshot(env["users"])
    for mode in ("hc", "mix"):
        refused(env, call(env, "create_user.py", "-i", "dan", "-m", mode, "--annotations", other),
                "covers none of the 24 pool songs", folder=env["users"], before=before)


# --- part 2: every failure one line ------------------------------------------------------------
def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", str(args[-1]) if args else None)


def test_disk_full_during_create_user_is_one_line(loop_env, monkeypatch):
    env = loop_env
    env["users"].mkdir(parents=True)
    before = snapshot(env["users"])
    monkeypatch.setattr(os, "rename", _disk_full)
    result = call(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    line = refused(env, result, "no space left")
    assert "free some space" in line
    # the shared store is written before the user folder is renamed in (the commit): the blobs
    # that made it may stay, each intact under its sha256 (never half a file); nothing else
    after = snapshot(env["users"])
    blobs = {k: v for k, v in after.items() if k.startswith(".shared/")}
    assert all(k == f".shared/{hashlib.sha256(v).hexdigest()}" for k, v in blobs.items())
    assert {k: v for k, v in after.items() if not k.startswith((".locks/", ".shared/"))} == before
    assert [p.name for p in env["users"].iterdir() if p.name not in (".locks", ".shared")] == []


def test_disk_full_during_retrain_is_one_line(user, monkeypatch):
    env = user
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2").stdout.split()
    state_before = (env["users"] / TEST_USER / "state.json").read_bytes()
    monkeypatch.setattr(shutil, "copyfileobj", _disk_full)
    monkeypatch.setattr(os, "replace", _disk_full)
    refused(env, call(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps({songs[0]: "Q2"})),
            "no space left")
    monkeypatch.undo()
    assert (env["users"] / TEST_USER / "state.json").read_bytes() == state_before
    call_ok(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps({songs[0]: "Q2"}))


@pytest.mark.parametrize("var,value", [("MER_LOCK_TIMEOUT", "soon"), ("MER_JOBS", "two"), ("MER_JOBS", "0"),
                                       ("MER_LOCK_TIMEOUT", "nan"), ("MER_SEED", "1.5")])
def test_a_bad_numeric_setting_is_one_line(loop_env, var, value):
    env = dict(loop_env, env={**loop_env["env"], var: value})
    before = snapshot(env["dir"])
    refused(env, run(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2"), var, repr(value),
            folder=env["dir"], before=before)


def test_playlist_and_annotation_files_refused_in_one_line(user, tmp_path):
    env = user
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    before = snapshot(env["users"])
    refused(env, call(env, "get_recommendations.py", "-i", TEST_USER, "-r", "g2", "--playlists", empty),
            "empty.csv", "empty", folder=env["users"], before=before)
    refused(env, call(env, "get_recommendations.py", "-i", TEST_USER, "-r", "g2", "--playlists", tmp_path),
            "is a folder", folder=env["users"], before=before)
    for flag in (["-m", "hc"], ["-m", "mc", "--crowd-member"]):
        refused(env, call(env, "create_user.py", "-i", "bob", *flag, "--annotations", tmp_path), "folder",
                folder=env["users"], before=before)
    refused(env, call(env, "retrain_model.py", "-i", TEST_USER, "-a", tmp_path), "is a folder",
            folder=env["users"], before=before)


def test_byte_order_marks_are_accepted(user, tmp_path):
    env = user
    playlists = tmp_path / "bom.csv"
    playlists.write_bytes(b"\xef\xbb\xbfgroup,song\r\ng2,song06\r\ng2,song07\r\n")
    picks = json.loads(call_ok(env, "get_recommendations.py", "-i", TEST_USER, "-r", "g2", "--playlists",
                               playlists, "--json").stdout)
    assert set(picks.values()) - {None} <= {"song06", "song07"}
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2").stdout.split()
    answers = tmp_path / "answers.json"
    answers.write_bytes(b"\xef\xbb\xbf" + json.dumps({songs[0]: "Q1"}).encode())
    call_ok(env, "retrain_model.py", "-i", TEST_USER, "-a", answers)
    assert read_state(env)["iteration"] == 1


def test_unwritable_outputs_name_the_file_asked_for(user, tmp_path):
    env = user
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    target = blocker / "out.json"  # a folder that is a file: unwritable whoever runs the test
    line = refused(env, call(env, "predict_emotion.py", "-i", env["feats"] / "song01.csv", "-o", target),
                   str(target), "cannot write")
    assert ".tmp" not in line
    line = refused(env, call(env, "extract_features.py", "-i", tmp_path / "none.wav", "-o", blocker / "x.csv"),
                   "none.wav", "not found")


def test_extraction_input_mistakes_are_one_line(loop_env, tmp_path):
    env = loop_env
    fake = tmp_path / "x.mp3"
    fake.mkdir()
    refused(env, call(env, "extract_features.py", "-i", fake, "-o", tmp_path / "out"), "x.mp3",
            "no audio files")
    assert not (tmp_path / "out").exists()
    refused(env, call(env, "extract_features.py", "-i", fake, "-o", tmp_path / "x.csv"), "x.csv",
            "not a .csv file")
    assert not (tmp_path / "x.csv").exists()


# --- part 5: newcomer details ------------------------------------------------------------------
def test_the_original_long_flags_are_accepted(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "--input_user", "orig", "--mode", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "--input_user", "orig", "--queries", "2").stdout.split()
    call_ok(env, "retrain_model.py", "--input_user", "orig", "--annotations", json.dumps({songs[0]: "Q1"}))
    call_ok(env, "get_recommendations.py", "--input_user", "orig", "--group", "g2")
    out = env["dir"] / "o.json"
    call_ok(env, "predict_emotion.py", "--input", env["feats"] / "song01.csv", "--output", out, "--model", "default")
    call_ok(env, "predict_emotion.py", "--input", env["feats"] / "song01.csv", "--output", out,
            "--input_user", "orig")
    assert json.loads(out.read_text())["model"].startswith("user orig")
    feats = env["dir"] / "copy.csv"
    assert read_state(env, "orig")["iteration"] == 1
    refused(env, call(env, "extract_features.py", "--input", env["dir"] / "nosuch.wav", "--output", feats),
            "nosuch.wav")


def test_user_ids_differing_only_in_case_are_refused(user):
    env = user
    before = snapshot(env["users"])
    for twin in ("ALICE", "Alice"):
        refused(env, call(env, "create_user.py", "-i", twin, "-m", "mc"), "'alice' exists", "case",
                folder=env["users"], before=before)
        refused(env, call(env, "create_user.py", "-i", twin, "-m", "mc", "--exist-ok"), "case",
                folder=env["users"], before=before)


def test_an_exhausted_pool_is_said_before_scoring(user, monkeypatch):
    env = user
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "24").stdout.split()
    call_ok(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps({songs[0]: "Q1"}))
    from trompa_mer import loop

    def no_scoring(*args, **kwargs):
        raise AssertionError("the pool was scored")

    monkeypatch.setattr(loop, "cached_song_proba", no_scoring)
    before = snapshot(env["users"])
    refused(env, call(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2"), "has been asked already",
            folder=env["users"], before=before)


def test_a_playlist_song_without_features_is_warned_about(user):
    env = user
    playlists = env["dir"] / "p.csv"
    playlists.write_text("group,song\nmix,song01\nmix,song02\nmix,nofeatures\n")
    result = call_ok(env, "get_recommendations.py", "-i", TEST_USER, "-r", "mix", "--playlists", playlists)
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ") and "nofeatures" in warnings[0], result.stderr


def test_demo_help_does_not_run_the_demo(tmp_path):
    result = run({"env": dict(os.environ, MER_DEMO_DIR=str(tmp_path / "demo")), "dir": tmp_path}, "demo.py", "--help")
    assert result.returncode == 0 and "usage:" in result.stdout and "MER_DEMO_DIR" in result.stdout
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("limit", ["5", "8", "forty", ""])
def test_demo_refuses_a_limit_too_small_for_its_rounds_before_writing(tmp_path, limit):
    env = dict(os.environ, MER_DEMO_DIR=str(tmp_path / "demo"), MER_DEMO_LIMIT=limit,
               MER_DEMO_AUDIO=str(tmp_path))
    result = run({"env": env, "dir": tmp_path}, "demo.py")
    assert result.returncode != 0
    assert f"demo: MER_DEMO_LIMIT={limit!r}: expected a whole number of at least 9 (the 3 rounds ask about " \
           "3 songs each)" in result.stderr
    assert not (tmp_path / "demo").exists()


def test_demo_limit_takes_exactly_the_rounds_songs():
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    assert demo.demo_limit("9") == 9 and demo.demo_limit(" 40 ") == 40
    with pytest.raises(SystemExit):
        demo.demo_limit("8")
