"""The loop scripts with a committee that holds arousal/valence regression members (issue 14):
answers given as the listener's own values, predictions with arousal and valence."""
import json
import shutil

import numpy as np
import pytest

from test_loop_support import (TEST_USER, assert_refused, call, call_ok, env_for, make_windows,  # noqa: F401
                               loop_assets, read_state, snapshot, true_quadrant)
from trompa_mer import users
from trompa_mer.committee import Committee
from trompa_mer.errors import MERError
from trompa_mer.quadrants import quadrant_from_av

ALGORITHMS = ("gnb", "sgd", "xgb", "sgd-av", "xgb-av")
# the middle of each quadrant (Q1 a+ v+, Q2 a+ v-, Q3 a- v-, Q4 a- v+)
MIDDLES = np.array([[0.5, 0.5], [0.5, -0.5], [-0.5, -0.5], [-0.5, 0.5]])


def build_av_committee(directory, seed=1):
    """A weak committee of classifiers and regressors (noisy windows, a/v near each quadrant's middle)."""
    from trompa_mer.examples import train_committee

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 160)
    X = np.concatenate([make_windows(rng, q, 1) for q in y])
    X += rng.normal(scale=2.0, size=X.shape).astype(np.float32)
    av = np.clip(MIDDLES[y] + rng.normal(scale=0.2, size=(len(y), 2)), -1, 1)
    av = np.where(quadrant_from_av(av[:, 0], av[:, 1])[:, None] == y[:, None], av, MIDDLES[y])
    return train_committee(X, y, directory, algorithms=ALGORITHMS, xgb_rounds=5, xgb_update_rounds=2, av=av)


@pytest.fixture
def av_env(loop_assets, tmp_path):
    shutil.copytree(loop_assets / "data", tmp_path / "data")
    build_av_committee(tmp_path / "pretrained")
    return env_for(tmp_path)


def _predict(env, song="song03"):
    out = env["dir"] / f"predict-{song}.json"
    call_ok(env, "predict_emotion.py", "-i", env["feats"] / f"{song}.csv", "-o", out, "-u", TEST_USER)
    return json.loads(out.read_text())


def _own_values(song):
    """Values the listener might give, in the song's true quadrant."""
    a, v = MIDDLES[true_quadrant(song)] * 1.6
    return {"arousal": float(a), "valence": float(v)}


@pytest.mark.parametrize("update", ["cumulative", "batch"])
def test_rounds_with_quadrants_and_own_values(av_env, update):
    env = av_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    before = _predict(env)
    for key in ("arousal", "valence"):
        assert -1 <= before[key] <= 1
        assert len(before[f"output_{key}"]) == len(before["output_probs"])
    assert before["av_members"] == ["sgd-av_0", "xgb-av_0"]
    for round_no in range(2):
        songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 4).stdout.split()
        answers = {songs[0]: f"Q{true_quadrant(songs[0]) + 1}", songs[1]: _own_values(songs[1]),
                   songs[2].upper(): _own_values(songs[2])}
        call_ok(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps(answers), "--update", update)
        state = read_state(env)
        assert state["iteration"] == round_no + 1
        assert state["answers"][songs[1]] == f"Q{true_quadrant(songs[1]) + 1}"
        own = state["answer_values"]
        assert own[songs[1]] == [answers[songs[1]]["arousal"], answers[songs[1]]["valence"]]
        assert songs[0] not in own and songs[2] in own
        assert set(state["history"][-1]["values"]) == {songs[1], songs[2]}
    assert len(state["answer_values"]) == 4, "later rounds keep the earlier rounds' values"
    after = _predict(env)
    for key in ("arousal", "valence"):
        assert -1 <= after[key] <= 1
        assert all(-1 <= x <= 1 for x in after[f"output_{key}"])
        assert after[key] == pytest.approx(np.mean(after[f"output_{key}"]))
    assert after["output_arousal"] != before["output_arousal"], "the regressors learnt from the answers"
    assert set(after["algorithm_mean_probs"]) == set(ALGORITHMS)
    # the committee saved through the user folder (shared blob store) loads, verified, and
    # predicts what the user's committee predicted
    user_dir = env["users"] / TEST_USER
    loaded = users.UserStore(env["users"]).load_committee(TEST_USER, state)
    assert loaded.algorithms() == list(ALGORITHMS)
    X = np.random.default_rng(5).normal(size=(8, 260))
    again = Committee.load(user_dir / state["committee"])
    assert np.array_equal(loaded.window_av(X), again.window_av(X))
    assert np.array_equal(loaded.window_proba(X), again.window_proba(X))
    assert (env["users"] / ".shared").is_dir()
    if update == "cumulative":
        # the saved round is the base committee updated in memory on every answer so far
        from trompa_mer.committee import Songs
        from trompa_mer.pool import load_pool
        from trompa_mer.quadrants import Labels

        quadrants, values = users.stored_answers(state)
        songs = sorted(quadrants)
        pool = load_pool(env["feats"])
        windows = [np.asarray(pool.windows(s), dtype=np.float32) for s in songs]
        offsets = np.concatenate([[0], np.cumsum([len(w) for w in windows])])
        memory = Committee.load(user_dir / "base-committee")
        memory.update(Songs.from_offsets(np.concatenate(windows), offsets, songs),
                      Labels([quadrants[s] for s in songs], [values.get(s, (np.nan, np.nan)) for s in songs]))
        assert np.allclose(memory.window_av(X), loaded.window_av(X), atol=1e-6)
        assert np.allclose(memory.window_proba(X), loaded.window_proba(X), atol=1e-6)


def test_values_are_stored_as_given(av_env):
    """The state keeps the numbers as the listener gave them (read back by stored_answers)."""
    env = av_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 2).stdout.split()
    call_ok(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps({songs[0]: _own_values(songs[0])}))
    state = read_state(env)
    _, values = users.stored_answers(state)
    assert values == {songs[0]: tuple(_own_values(songs[0]).values())}


@pytest.mark.parametrize("bad, needles", [
    ({"arousal": 0.5}, ["missing 'valence'"]),
    ({"arousal": 0.5, "valence": 0.2, "dominance": 0.1}, ["unexpected 'dominance'"]),
    ({"arousal": "0.5", "valence": 0.2}, ["not a number"]),
    ({"arousal": True, "valence": 0.2}, ["not a number"]),
    ({"arousal": 1.5, "valence": 0.2}, ["outside -1..1"]),
    ({"arousal": 0.5, "valence": -3}, ["outside -1..1"]),
])
def test_bad_values_are_refused_and_nothing_changes(av_env, bad, needles):
    env = av_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 3).stdout.split()
    user_dir = env["users"] / TEST_USER
    before = snapshot(user_dir)
    answers = {songs[0]: "Q1", songs[1]: bad}
    line = assert_refused(call(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps(answers)),
                          songs[1], "invalid labels", *needles, "nothing was changed")
    assert songs[0] not in line
    assert snapshot(user_dir) == before


def test_every_problem_in_one_line_and_non_finite_numbers(av_env, tmp_path):
    env = av_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 4).stdout.split()
    before = snapshot(env["users"] / TEST_USER)
    # JSON's NaN/Infinity extensions, a key twice inside the values, a song twice with other values
    text = ('{"%s": {"arousal": NaN, "valence": 0.1}, "%s": {"arousal": 0.2, "arousal": 0.3, "valence": 0.1}, '
            '"%s": {"arousal": 0.2, "valence": 0.1}, "%s": {"arousal": 0.2, "valence": 0.4}, '
            '"%s": {"arousal": -Infinity, "valence": 0.1}, "nosuch": "Q1"}'
            % (songs[0], songs[1], songs[2], songs[2], songs[3]))
    path = tmp_path / "answers.json"
    path.write_text(text)
    line = assert_refused(call(env, "retrain_model.py", "-i", TEST_USER, "-a", path),
                          "nosuch", "not finite", "'arousal' given twice", "given twice with different labels")
    assert songs[0] in line and songs[1] in line and songs[3] in line
    assert snapshot(env["users"] / TEST_USER) == before
    # the same values twice, or a quadrant twice, is one answer
    ok = json.dumps({songs[0]: {"arousal": 0.0, "valence": -0.25}, songs[0].upper(): {"valence": -0.25, "arousal": 0}})
    call_ok(env, "retrain_model.py", "-i", TEST_USER, "-a", ok)
    state = read_state(env)
    assert state["answers"] == {songs[0]: "Q2"}, "0 counts as positive"
    assert state["answer_values"] == {songs[0]: [0.0, -0.25]}


def test_parse_answer_labels_mixes_forms_and_old_states_load():
    state = users.record_queries(users.new_state("bob", "mc", False, "committee-0000"), ["s1", "s2"])
    quadrants, values = users.parse_answer_labels({"s1": "q3", "S2": {"arousal": -1, "valence": 1}}, state)
    assert quadrants == {"s1": 2, "s2": 3} and values == {"s2": (-1.0, 1.0)}
    after = users.record_answers(state, quadrants, "batch", "committee-0001", n_windows=3, values=values)
    assert after["answers"] == {"s1": "Q3", "s2": "Q4"} and after["answer_values"] == {"s2": [-1.0, 1.0]}
    assert users.stored_answers(after) == ({"s1": 2, "s2": 3}, {"s2": (-1.0, 1.0)})
    # a quadrant-only round writes the state as before (no new fields)
    plain = users.record_answers(state, {"s1": 2}, "batch", "committee-0001", n_windows=3)
    assert "answer_values" not in plain and "values" not in plain["history"][-1]
    assert users.stored_answers(plain) == ({"s1": 2}, {})
    # a hand-edited value that contradicts its quadrant is refused naming the field
    broken = json.loads(json.dumps(after))
    broken["answer_values"]["s2"] = [0.5, 0.5]
    with pytest.raises(MERError, match="answer_values"):
        users.stored_answers(broken, "state.json")


def test_predict_with_a_regression_member_file_or_the_default_committee(av_env):
    env = av_env
    for model in ("default", env["dir"] / "pretrained" / "xgb-av_0.ubj", env["dir"] / "pretrained" / "gnb_0.skops"):
        out = env["dir"] / "p.json"
        call_ok(env, "predict_emotion.py", "-i", env["feats"] / "song05.csv", "-o", out, "-m", model)
        result = json.loads(out.read_text())
        if str(model).endswith("gnb_0.skops"):
            assert "arousal" not in result and "output_valence" not in result, "a classifier alone: as before"
        else:
            assert -1 <= result["valence"] <= 1
            assert result["av_members"] == (["sgd-av_0", "xgb-av_0"] if model == "default" else ["xgb-av_0"])


def test_crowd_user_predictions_carry_the_audio_committees_arousal_valence(av_env):
    """A --crowd-member user's quadrant prediction is the crowd members' mean, which predicts no
    arousal/valence; the values come from the regression members of their audio committee."""
    env = av_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc", "--crowd-member")
    prediction = _predict(env)
    assert prediction["av_members"] == ["sgd-av_0", "xgb-av_0"]
    assert -1 <= prediction["arousal"] <= 1 and -1 <= prediction["valence"] <= 1
    assert "listener_probs" in prediction
