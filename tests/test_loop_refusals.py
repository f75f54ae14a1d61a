"""Every refusal of the loop scripts: exit status 1, one clear stderr line, nothing changed.

Most refusals run the script's main() in-process (`call`: same parsing and error path); a few
run as real processes to pin the exit status a platform sees.
"""
import json

import pytest

from test_loop_support import (TEST_USER, assert_refused, call, call_ok, loop_assets,  # noqa: F401
                               loop_env, read_state, run, snapshot)

BAD_IDS = ["../evil", "a/b", "x y", "", ".", "..", "al\u00efce", "a" * 129, "-i"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_user_id_refused_before_any_file_is_touched(loop_env, bad):
    env = loop_env
    before = snapshot(env["dir"])
    commands = [
        ("create_user.py", ["-m", "mc"]),
        ("get_hard_tracks.py", ["-q", "3"]),
        ("retrain_model.py", ["-a", '{"song01": "Q1"}']),
        ("predict_emotion.py", ["-i", env["feats"] / "song01.csv", "-o", env["dir"] / "p.json"]),
        ("get_recommendations.py", ["-r", "g1"]),
    ]
    for script, extra in commands:
        result = call(env, script, f"--user-id={bad}" if script != "predict_emotion.py" else f"-u={bad}", *extra)
        assert_refused(result, "user id")
    assert snapshot(env["dir"]) == before
    assert not (env["dir"] / "models").exists()


def test_bad_user_id_as_a_process(loop_env):
    env = loop_env
    result = run(env, "create_user.py", "-i", "../../etc", "-m", "mc")
    assert_refused(result, "user id", "A-Z a-z 0-9 _ -")
    assert not (env["dir"] / "models").exists()


def test_existing_user_refused(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "hc")
    before = snapshot(env["users"])
    assert_refused(call(env, "create_user.py", "-i", TEST_USER, "-m", "hc"), "already exists", "--exist-ok")
    assert_refused(call(env, "create_user.py", "-i", TEST_USER, "-m", "mc", "--exist-ok"),
                   "already exists with mode 'hc'")
    assert snapshot(env["users"]) == before


def test_create_refusals_leave_no_folder(loop_env, tmp_path):
    env = loop_env
    assert_refused(call(env, "create_user.py", "-i", TEST_USER, "-m", "hc", "--annotations",
                        tmp_path / "missing.json"), "missing.json", "not found")
    assert_refused(call(env, "create_user.py", "-i", TEST_USER, "-m", "mc", "--committee",
                        tmp_path / "nowhere"), "committee folder not found")
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(env["dir"] / "pretrained", broken)
    (broken / "gnb_0.skops").write_bytes(b"tampered")
    assert_refused(call(env, "create_user.py", "-i", TEST_USER, "-m", "mc", "--committee", broken),
                   "checksum")
    assert not (env["users"] / TEST_USER).exists()
    bad_mode = call(env, "create_user.py", "-i", TEST_USER, "-m", "xx")
    assert bad_mode.returncode == 2 and "invalid choice" in bad_mode.stderr


def test_missing_user_refused_everywhere(loop_env):
    env = loop_env
    for script, extra in [("get_hard_tracks.py", ["-q", "2"]),
                          ("retrain_model.py", ["-a", '{"song01": "Q1"}']),
                          ("get_recommendations.py", ["-r", "g1"])]:
        assert_refused(call(env, script, "-i", "nobody", *extra), "no such user", "create_user.py")
    assert_refused(call(env, "predict_emotion.py", "-i", env["feats"] / "song01.csv", "-o",
                        env["dir"] / "p.json", "-u", "nobody"), "no such user")
    assert not (env["users"] / "nobody").exists()


@pytest.fixture
def pending_user(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 3).stdout.split()
    return env, songs


def _retrain_refused(env, annotations, *needles, as_file=True):
    before = snapshot(env["users"] / TEST_USER)
    if as_file:
        path = env["dir"] / "answers.json"
        path.write_text(annotations if isinstance(annotations, str) else json.dumps(annotations))
        annotations = path
    line = assert_refused(call(env, "retrain_model.py", "-i", TEST_USER, "-a", annotations), *needles)
    assert snapshot(env["users"] / TEST_USER) == before, "a refused retrain changed the user folder"
    return line


def test_retrain_refusals_change_nothing(pending_user):
    env, songs = pending_user
    not_asked = sorted({"song00", "song01", "song02", "song03", "song04"} - set(songs))[0]
    line = _retrain_refused(env, {songs[0]: "Q1", "nosuchsong": "Q2", not_asked: "Q3"},
                            "not pending", "nosuchsong", not_asked, "nothing was changed")
    assert songs[0] not in line.split("not pending")[1].split("(")[0]
    _retrain_refused(env, {songs[0]: "Q5", songs[1]: "happy", songs[2]: "Q2"},
                     "invalid labels", f"{songs[0]}='Q5'", f"{songs[1]}='happy'")
    _retrain_refused(env, '{"%s": "Q1",' % songs[0], "not valid JSON")
    _retrain_refused(env, "{}", "no answers")
    _retrain_refused(env, json.dumps([songs[0], "Q1"]), "expected a JSON object")
    _retrain_refused(env, {songs[0]: "Q1", songs[0].upper(): "Q2"}, "given twice")
    _retrain_refused(env, b"\xff\xfe".decode("latin-1"), "not valid JSON")
    _retrain_refused(env, env["dir"] / "nofile.json", "not found", as_file=False)
    assert read_state(env)["pending"] == songs and read_state(env)["iteration"] == 0


def test_retrain_without_a_pending_round(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    _retrain_refused(env, {"song01": "Q1"}, "not pending", "none (run get_hard_tracks.py first)")


def test_retrain_refused_as_a_process(pending_user):
    env, songs = pending_user
    before = snapshot(env["users"] / TEST_USER)
    result = run(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps({songs[0]: "Q9"}))
    assert_refused(result, "invalid labels")
    assert snapshot(env["users"] / TEST_USER) == before
    bad_update = run(env, "retrain_model.py", "-i", TEST_USER, "-a", "{}", "--update", "sometimes")
    assert bad_update.returncode == 2 and "invalid choice" in bad_update.stderr


def test_retrain_refuses_when_a_song_lost_its_features(pending_user):
    env, songs = pending_user
    (env["feats"] / f"{songs[0]}.csv").unlink()
    _retrain_refused(env, {songs[0]: "Q1"}, "no feature CSV", songs[0])


def test_get_hard_tracks_refusals(loop_env, tmp_path):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    before = snapshot(env["users"] / TEST_USER)
    zero = call(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "0")
    assert zero.returncode == 2 and "positive whole number" in zero.stderr
    env["env"]["MER_FEATS_DIR"] = str(tmp_path / "empty")
    assert_refused(call(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2"), "pool")
    assert snapshot(env["users"] / TEST_USER) == before


def test_get_hard_tracks_when_the_pool_is_exhausted(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "rand")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "100").stdout.split()
    assert len(songs) == 24  # fewer left than asked: all of them
    call_ok(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps({songs[0]: "Q1"}))
    before = snapshot(env["users"] / TEST_USER)
    assert_refused(call(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "1"), "every song")
    assert snapshot(env["users"] / TEST_USER) == before


def test_predict_refusals(loop_env):
    env = loop_env
    feats = env["feats"] / "song01.csv"
    assert_refused(call(env, "predict_emotion.py", "-i", env["dir"] / "none.csv", "-o", env["dir"] / "p.json"),
                   "none.csv", "not found")
    assert_refused(call(env, "predict_emotion.py", "-i", feats, "-o", env["dir"] / "p.txt"), ".json")
    assert_refused(call(env, "predict_emotion.py", "-i", feats, "-o", env["dir"] / "p.json", "-m",
                        env["dir"] / "nomodel.pkl"), "model file not found")
    text = env["dir"] / "notes.txt"
    text.write_text("hello")
    assert_refused(call(env, "predict_emotion.py", "-i", text, "-o", env["dir"] / "p.json"), "expected a feature CSV")
    both = call(env, "predict_emotion.py", "-i", feats, "-o", env["dir"] / "p.json", "-m", "default", "-u", "x")
    assert both.returncode == 2 and "not allowed with" in both.stderr
    assert not (env["dir"] / "p.json").exists()


def test_recommendation_refusals(loop_env, tmp_path):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    before = snapshot(env["users"] / TEST_USER)
    assert_refused(call(env, "get_recommendations.py", "-i", TEST_USER, "-r", "nogroup"), "no group", "g1")
    assert_refused(call(env, "get_recommendations.py", "-i", TEST_USER, "-r", "g3"), "no songs left")
    assert_refused(call(env, "get_recommendations.py", "-i", TEST_USER, "-r", "g1", "--playlists",
                        tmp_path / "none.csv"), "playlist file not found")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert_refused(call(env, "get_recommendations.py", "-i", TEST_USER, "-r", "g1", "--playlists", bad),
                   "expected columns")
    assert snapshot(env["users"] / TEST_USER) == before


def test_every_script_has_help(loop_env):
    for script in ("create_user.py", "get_hard_tracks.py", "retrain_model.py", "predict_emotion.py",
                   "get_recommendations.py"):
        result = call(loop_env, script, "--help")
        assert result.returncode == 0 and "usage:" in result.stdout and "--user-id" in result.stdout
