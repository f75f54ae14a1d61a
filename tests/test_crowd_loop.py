"""The crowd-aware member in the live loop: create_user.py --crowd-member, get_hard_tracks.py,
retrain_model.py and predict_emotion.py -u on a small generated pool (one test on the real
TROMPA-MER annotations, skipped when ../shared/data is absent)."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from test_loop_support import (N_SONGS, TEST_USER, assert_refused, call, call_ok, loop_assets,  # noqa: F401
                               loop_env, ok, read_state, retrain_failing_each_rename, snapshot, song_ids,
                               write_pool)
from trompa_mer import consensus, crowd_loop
from trompa_mer.committee import CROWD_LAYOUT, Committee
from trompa_mer.crowd import CROWD_COLUMNS
from trompa_mer.users import CROWD_FEATURES_FILE
from trompa_mer.datasets.annotations import load_annotations
from trompa_mer.pool import load_pool

QUADS = ["Q1", "Q2", "Q3", "Q4"]


def _create(env, *extra, user=TEST_USER, mode="mc"):
    return call_ok(env, "create_user.py", "-i", user, "-m", mode, "--crowd-member", *extra)


def _crowd_of(env, user=TEST_USER, folder=None):
    """(the user's crowd members as a committee, the crowd table)."""
    state = read_state(env, user)
    user_dir = env["users"] / user
    return (Committee.load(user_dir / (folder or state["crowd"]), layout=CROWD_LAYOUT),
            crowd_loop.read_crowd_table(user_dir / CROWD_FEATURES_FILE))


def _pool_proba(env, user=TEST_USER):
    crowd, table = _crowd_of(env, user)
    pool = load_pool(env["feats"])
    return crowd.song_proba(pool, crowd=crowd_loop.crowd_rows(table, pool.song_ids))


def test_crowd_user_through_the_scripts(loop_env):
    """create -> get_hard_tracks -> retrain -> predict as subprocesses; the folder layout and the
    state name the crowd members, and a retrain replaces them in the same commit."""
    env = loop_env
    out = ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc", "--crowd-member")
    assert "5 crowd-aware members" in out.stdout and "4 without other listeners" in out.stdout
    user_dir = env["users"] / TEST_USER
    state = read_state(env)
    assert state["crowd"] == "crowd-0000"
    assert state["annotations_source"] == str((env["dir"] / "data" / "annotations.csv").resolve())
    assert sorted(p.name for p in user_dir.iterdir()) == [
        "base-committee", "base-crowd", "committee-0000", "crowd-0000", "crowd_features.csv", "state.json"]
    manifest = json.loads((user_dir / "crowd-0000" / "crowd.json").read_text())
    assert manifest["excluded_user"] == TEST_USER and len(manifest["members"]) == 5
    songs = ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 4).stdout.split()
    assert len(songs) == 4
    ok(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps({s: "Q3" for s in songs}))
    state = read_state(env)
    assert state["crowd"] == "crowd-0001" and state["committee"] == "committee-0001"
    assert sorted(p.name for p in user_dir.iterdir()) == [  # round 0's folders kept for undo
        "base-committee", "base-crowd", "committee-0000", "committee-0001", "crowd-0000", "crowd-0001",
        "crowd_features.csv", "state.json"]
    crowd, _ = _crowd_of(env)
    assert all(len(m.answers_y) == 4 for _, m in crowd.members)
    out_json = env["dir"] / "p.json"
    out = ok(env, "predict_emotion.py", "-i", env["feats"] / "song03.csv", "-o", out_json, "-u", TEST_USER)
    assert "for the listener (crowd-aware members, song song03" in out.stdout
    result = json.loads(out_json.read_text())
    # the original keys are still the audio committee's; the crowd's come beside them
    for key in ("input_feats", "output_probs", "mean_probs", "highest_prob_quad", "output_predictions",
                "freq_pred", "mode_quad", "member_mean_probs", "algorithm_mean_probs"):
        assert key in result
    assert set(result["algorithm_mean_probs"]) == {"gnb", "sgd", "xgb"}
    assert np.allclose(result["mean_probs"], np.mean(result["output_probs"], axis=0))
    assert result["crowd"]["song_id"] == "song03"
    assert result["listener_source"] == "crowd"
    assert result["listener_probs"] == result["crowd"]["mean_probs"]
    assert result["listener_quad"] == QUADS[int(np.argmax(result["listener_probs"]))]
    np.testing.assert_allclose(result["listener_probs"],
                               _pool_proba(env)[:, song_ids().index("song03")].mean(axis=0), atol=1e-6)


def test_help_explains_the_flags(loop_env):
    assert "--crowd-member" in call(loop_env, "create_user.py", "--help").stdout
    assert "--song-id" in call(loop_env, "predict_emotion.py", "--help").stdout


def test_own_annotations_never_reach_the_crowd_features_nor_the_members(loop_env):
    """The stored crowd features are the other listeners' frequencies; changing every one of the
    user's own annotations (and adding some on songs nobody else heard) changes nothing stored."""
    env = loop_env
    path = env["dir"] / "data" / "annotations.csv"
    table = pd.read_csv(path)
    _create(env)
    stored = crowd_loop.read_crowd_table(env["users"] / TEST_USER / "crowd_features.csv")
    assert list(stored.index) == song_ids()
    others = load_annotations(path)
    others = others[others["user"] != TEST_USER]
    for song in song_ids():
        counts = np.bincount(others.loc[others["song"] == song, "quadrant"], minlength=4)
        n = counts.sum()
        expected = np.r_[counts / n if n else np.zeros(4), np.log1p(n), float(n == 0)]
        np.testing.assert_allclose(stored.loc[song, CROWD_COLUMNS].to_numpy(float), expected, rtol=0, atol=1e-15)
        assert stored.loc[song, "n_listeners"] == n
    # with the user's own annotations counted, the features of some songs would differ
    with_user = crowd_loop.pool_crowd_table(load_annotations(path), song_ids(), user_id="nobody")
    assert not np.allclose(with_user[CROWD_COLUMNS].to_numpy(float), stored[CROWD_COLUMNS].to_numpy(float))
    # a second listener file: the user's labels all rotated by one quadrant, plus annotations of
    # the four songs only they have heard
    changed = table.copy()
    own = changed["user"] == TEST_USER
    changed.loc[own, "quadrant"] = [f"Q{int(q[1]) % 4 + 1}" for q in changed.loc[own, "quadrant"]]
    extra = pd.DataFrame({"user": TEST_USER, "song": [s.upper() for s in song_ids()[-4:]], "quadrant": "Q2"})
    changed = pd.concat([changed, extra], ignore_index=True)
    other_path = env["dir"] / "changed.csv"
    changed.to_csv(other_path, index=False)
    env2 = {**env, "users": env["dir"] / "models2" / "users",
            "env": {**env["env"], "MER_MODELS_DIR": str(env["dir"] / "models2")}}
    _create(env2, "--annotations", other_path)
    first = snapshot(env["users"] / TEST_USER / "crowd-0000")
    second = snapshot(env2["users"] / TEST_USER / "crowd-0000")
    manifest = "crowd.json"
    assert set(first) == set(second)
    for name in first:
        if name != manifest:  # the manifest names the (different) annotation file
            assert first[name] == second[name], f"{name} depends on the user's own annotations"
    assert ((env["users"] / TEST_USER / "crowd_features.csv").read_bytes()
            == (env2["users"] / TEST_USER / "crowd_features.csv").read_bytes())
    # and the four songs only the user annotated are none-indicator rows
    for song in song_ids()[-4:]:
        assert stored.loc[song, "crowd_none"] == 1 and stored.loc[song, "n_listeners"] == 0


def test_songs_without_other_listeners_get_a_prediction(loop_env):
    env = loop_env
    _create(env)
    lonely = song_ids()[-1]  # no other listener annotated it
    out = env["dir"] / "lonely.json"
    call_ok(env, "predict_emotion.py", "-i", env["feats"] / f"{lonely}.csv", "-o", out, "-u", TEST_USER)
    result = json.loads(out.read_text())
    assert result["crowd"]["song_id"] == lonely and result["crowd"]["n_listeners"] == 0
    probs = np.array(result["listener_probs"])
    assert probs.shape == (4,) and np.all(np.isfinite(probs)) and np.isclose(probs.sum(), 1)
    for member in result["crowd"]["member_probs"].values():
        assert len(member) == 4 and np.all(np.isfinite(member))
    # a file outside the pool: unknown to the crowd, still predicted
    outside = env["dir"] / "outside.csv"
    shutil.copy(env["feats"] / "song03.csv", outside)
    call_ok(env, "predict_emotion.py", "-i", outside, "-o", out, "-u", TEST_USER)
    unknown = json.loads(out.read_text())
    assert unknown["crowd"]["song_id"] is None and unknown["crowd"]["n_listeners"] == 0
    assert np.all(np.isfinite(unknown["listener_probs"])) and np.isclose(sum(unknown["listener_probs"]), 1)
    # the same windows named as the pool song they are: the other listeners count
    call_ok(env, "predict_emotion.py", "-i", outside, "-o", out, "-u", TEST_USER, "--song-id", "SONG03")
    named = json.loads(out.read_text())
    assert named["crowd"]["song_id"] == "song03" and named["crowd"]["n_listeners"] > 0
    assert not np.allclose(named["listener_probs"], unknown["listener_probs"])
    # in get_hard_tracks every pool song, lonely ones included, gets 4 finite probabilities
    proba = _pool_proba(env)
    assert proba.shape == (5, N_SONGS, 4) and np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=2), 1)
    refused = call(env, "predict_emotion.py", "-i", outside, "-o", out, "-u", TEST_USER, "--song-id", "nosuch")
    assert_refused(refused, "--song-id nosuch", "crowd table")


def test_song_id_needs_a_crowd_user(loop_env):
    env = loop_env
    out = env["dir"] / "x.json"
    feats = env["feats"] / "song01.csv"
    assert_refused(call(env, "predict_emotion.py", "-i", feats, "-o", out, "--song-id", "song01"), "-u")
    call_ok(env, "create_user.py", "-i", "plain", "-m", "mc")
    assert_refused(call(env, "predict_emotion.py", "-i", feats, "-o", out, "-u", "plain", "--song-id", "song01"),
                   "no crowd-aware members")
    call_ok(env, "predict_emotion.py", "-i", feats, "-o", out, "-u", "plain")
    result = json.loads(out.read_text())
    assert not {"crowd", "listener_probs", "listener_quad"} & set(result), "plain users' JSON is unchanged"


@pytest.mark.parametrize("update", ["cumulative", "batch"])
def test_single_quadrant_batches_keep_four_finite_probabilities(loop_env, update):
    env = loop_env
    _create(env)
    before = _pool_proba(env).mean(axis=0)
    for _ in range(2):
        songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 3).stdout.split()
        call_ok(env, "retrain_model.py", "-i", TEST_USER, "--update", update,
                "-a", json.dumps({s: "Q2" for s in songs}))
    after = _pool_proba(env)
    assert after.shape == (5, N_SONGS, 4) and np.all(np.isfinite(after))
    np.testing.assert_allclose(after.sum(axis=2), 1)
    assert (after > 0).all(), "the quadrants nobody answered keep some probability"
    assert after.mean(axis=0)[:, 1].mean() > before[:, 1].mean(), "moves towards the answered quadrant"
    crowd, _ = _crowd_of(env)
    assert all(len(m.answers_y) == 6 for _, m in crowd.members), "each answer counted once"
    state = read_state(env)
    assert state["crowd"] == "crowd-0002" and [h["update"] for h in state["history"]] == [update, update]
    # the base crowd members are untouched (a cumulative update restarts from them)
    base, _ = _crowd_of(env, folder="base-crowd")
    assert all(len(m.answers_y) == 0 for _, m in base.members)


def test_mc_queries_follow_the_crowd_members(loop_env):
    """mc for a crowd user: the top-q pool songs by entropy of the crowd members' mean."""
    env = loop_env
    _create(env)
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 5).stdout.split()
    entropy = consensus.entropy(consensus.machine_consensus(_pool_proba(env)))
    expected = [song_ids()[i] for i in np.argsort(-entropy, kind="stable")[:5]]
    assert songs == expected


def test_recommendations_follow_the_crowd_members(loop_env):
    """Per quadrant, the group's song with the highest crowd-member probability of it (not the
    audio committee's pick, which differs on this pool)."""
    env = loop_env
    _create(env)
    picks = json.loads(call_ok(env, "get_recommendations.py", "-i", TEST_USER, "-r", "g1", "--json").stdout)
    candidates = song_ids()[:6]  # group g1 (test_loop_support.write_playlists)
    pool = load_pool(env["feats"])

    def top_per_quadrant(proba):
        used, chosen = set(), {}
        for c, quad in enumerate(QUADS):
            order = sorted(range(len(candidates)), key=lambda i: (-proba[i, c], i))
            chosen[quad] = next(candidates[i] for i in order if candidates[i] not in used)
            used.add(chosen[quad])
        return chosen

    crowd = consensus.machine_consensus(_pool_proba(env))[[song_ids().index(s) for s in candidates]]
    committee = Committee.load(env["users"] / TEST_USER / read_state(env)["committee"])
    audio = consensus.machine_consensus(committee.song_proba(pool.subset(candidates)))
    assert picks == top_per_quadrant(crowd)
    assert picks != top_per_quadrant(audio)  # so the check above tells the two sources apart


def test_refusals(loop_env):
    env = loop_env
    missing = env["dir"] / "nosuch.json"
    result = call(env, "create_user.py", "-i", TEST_USER, "-m", "mc", "--crowd-member", "--annotations", missing)
    assert_refused(result, str(missing), "--crowd-member", "--annotations")
    no_default = {**env, "env": {**env["env"], "MER_ANNOTATIONS": str(missing)}}
    assert_refused(call(no_default, "create_user.py", "-i", TEST_USER, "-m", "rand", "--crowd-member"),
                   "--crowd-member")
    # too few other listeners' annotations of pool songs
    few = env["dir"] / "few.csv"
    pd.DataFrame({"user": ["u1", "u2", TEST_USER], "song": ["song01", "song02", "song03"],
                  "quadrant": ["Q1", "Q2", "Q3"]}).to_csv(few, index=False)
    assert_refused(call(env, "create_user.py", "-i", TEST_USER, "-m", "mc", "--crowd-member", "--annotations", few),
                   str(few), "2 annotations by other listeners", "at least 10")
    assert not (env["users"] / TEST_USER).exists(), "nothing was created"
    # an existing user with the other choice
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    assert_refused(call(env, "create_user.py", "-i", TEST_USER, "-m", "mc", "--crowd-member", "--exist-ok"),
                   "without crowd-aware members")


def test_failure_at_every_rename_of_a_crowd_retrain_keeps_the_previous_user(loop_env, monkeypatch):
    """The n-th os.replace of a retrain fails, for every n: state.json is byte-identical, the
    committee and crowd folders it names load, and the next retrain succeeds."""
    env = loop_env
    _create(env)
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 2).stdout.split()
    answers = json.dumps({songs[0]: "Q2", songs[1]: "Q4"})

    def unchanged(n):
        crowd, _ = _crowd_of(env)
        assert all(len(m.answers_y) == 0 for _, m in crowd.members)
        assert n < 80

    n = retrain_failing_each_rename(env, monkeypatch, answers, unchanged)
    assert n > 10, "the crowd members add renames to a retrain"
    state = read_state(env)
    assert state["iteration"] == 1 and state["crowd"] == "crowd-0001"
    crowd, _ = _crowd_of(env)
    assert all(len(m.answers_y) == 2 for _, m in crowd.members)
    # the next writer tidies what the failures left behind
    call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 1)
    assert sorted(p.name for p in (env["users"] / TEST_USER).iterdir()) == [  # round 0's kept for undo
        "base-committee", "base-crowd", "committee-0000", "committee-0001", "crowd-0000", "crowd-0001",
        "crowd_features.csv", "state.json"]


def test_crowd_features_on_trompa_exclude_the_listener(loop_env):
    """Real TROMPA-MER annotations: the most prolific listener's stored crowd features are the
    other listeners' counts, written out plainly from the export."""
    from conftest import shared_path

    path = shared_path("trompa", "annotations.json")
    env = loop_env
    export = json.loads(path.read_text())
    items = export["annotations"]
    user_of = [str(a.get("userid", a.get("userId"))) for a in items]
    user = pd.Series(user_of).value_counts().index[0]
    songs = pd.Series([a["externalID"].lower() for a in items])
    listeners = {}
    for song, who in zip(songs, user_of):
        listeners.setdefault(song, set()).add(who)
    theirs = {s for s, who in listeners.items() if user in who}
    popular = [s for s in songs.value_counts().index if s in theirs][:20]
    only_theirs = sorted(s for s in theirs if listeners[s] == {user})
    pool_songs = sorted(set(popular) | set(only_theirs[:3]) | set(songs.value_counts().index[-3:]))
    feats = env["dir"] / "trompa_feats"
    write_pool(feats, n_songs=len(pool_songs), n_windows=3, seed=4)
    for i, song in enumerate(song_ids(len(pool_songs))):  # rename the generated CSVs to TROMPA ids
        (feats / f"{song}.csv").rename(feats / f"{pool_songs[i]}.csv")
    trompa_env = {**env, "env": {**env["env"], "MER_FEATS_DIR": str(feats)}}
    call_ok(trompa_env, "create_user.py", "-i", user, "-m", "hc", "--crowd-member", "--annotations", path)
    stored = crowd_loop.read_crowd_table(env["users"] / user / "crowd_features.csv")
    assert list(stored.index) == pool_songs
    quad = {(1, 1): 0, (1, -1): 1, (-1, -1): 2, (-1, 1): 3}
    counts = {s: np.zeros(4) for s in pool_songs}
    for item, who in zip(items, user_of):
        song = item["externalID"].lower()
        if who != user and song in counts:
            counts[song][quad[(int(item["arousalValue"]), int(item["valenceValue"]))]] += 1
    for song, c in counts.items():
        n = c.sum()
        expected = np.r_[c / n if n else np.zeros(4), np.log1p(n), float(n == 0)]
        np.testing.assert_allclose(stored.loc[song, CROWD_COLUMNS].to_numpy(float), expected, rtol=0, atol=1e-15)
    assert any(counts[s].sum() == 0 for s in pool_songs) == bool(only_theirs)
    manifest = json.loads((env["users"] / user / "crowd-0000" / "crowd.json").read_text())
    assert manifest["excluded_user"] == user
    assert manifest["n_examples"] == int(sum(c.sum() for c in counts.values()))
    out = env["dir"] / "trompa.json"
    call_ok(trompa_env, "predict_emotion.py", "-i", feats / f"{pool_songs[0]}.csv", "-o", out, "-u", user)
    result = json.loads(out.read_text())
    assert result["crowd"]["song_id"] == pool_songs[0] and np.all(np.isfinite(result["listener_probs"]))


def test_crowd_members_without_other_listeners_are_no_surer_than_the_audio(loop_env):
    """Issue 13: on a song no other listener annotated, a crowd-aware member has only the audio;
    made overconfident (weights x 50), its probabilities there are softened to at most the audio
    committee's confidence, in get_hard_tracks' scoring and in predict -u, while songs with
    other listeners keep the member's own probabilities."""
    from trompa_mer.committee import cap_confidence
    from trompa_mer.users import UserStore

    env = loop_env
    _create(env)
    store = UserStore(env["users"])
    committee = store.load_committee(TEST_USER, read_state(env))
    for _, member in committee.members:
        if member.algorithm == "crowd":
            member.W = member.W * 50
            member.b = member.b * 50
    pool = load_pool(env["feats"])
    rows = crowd_loop.crowd_rows(store.read_crowd_table(TEST_USER), pool.song_ids)
    listener = committee.listener()
    proba = listener.song_proba(pool, crowd=rows)
    audio = committee.subset(committee.of_kind("features")).song_proba(pool).mean(axis=0)
    none = rows[:, CROWD_COLUMNS.index("crowd_none")] == 1
    assert none.sum() == 4
    raw = np.stack([m.predict_proba(listener.member_input("crowd+features",
                                                          _songs(pool, rows))) for _, m in listener.members])
    assert raw[:, none].max() > 0.99, "the test needs overconfident members"
    assert np.all(proba[:, none].max(axis=2) <= audio[none].max(axis=1) + 1e-9)
    np.testing.assert_allclose(proba.sum(axis=2), 1)
    assert np.array_equal(proba[:, none].argmax(axis=2), raw[:, none].argmax(axis=2))  # ranking kept
    np.testing.assert_allclose(proba[:, ~none], raw[:, ~none], rtol=0, atol=1e-12)
    # the softening alone: within the bound untouched, beyond it exactly at the bound
    p = np.array([[0.97, 0.01, 0.01, 0.01], [0.4, 0.3, 0.2, 0.1]])
    capped = cap_confidence(p, [0.5, 0.5])
    assert abs(capped[0].max() - 0.5) < 1e-9 and np.array_equal(capped[1], p[1])


def _songs(pool, rows):
    from trompa_mer.committee import Songs

    return Songs.from_pool(pool, crowd=rows)
