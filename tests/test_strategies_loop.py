"""get_hard_tracks.py --strategy (issue 21): every strategy runs live, is recorded in the state
and the round's history, and the default is the mc ranking as it always was."""
import json
import shutil

import numpy as np
import pytest

from test_loop_av import build_av_committee
from test_loop_support import (TEST_USER, assert_refused, call, call_ok, env_for, loop_assets,  # noqa: F401
                               loop_env, read_state, true_quadrant)
from trompa_mer import consensus, loop, strategies
from trompa_mer.committee import Committee
from trompa_mer.pool import open_pool


def _answer(env, songs, name="answers.json"):
    path = env["dir"] / name
    path.write_text(json.dumps({s: f"Q{true_quadrant(s) + 1}" for s in songs}))
    call_ok(env, "retrain_model.py", "-i", TEST_USER, "-a", path)


def _pool_proba(env):
    state = read_state(env)
    committee = Committee.load(env["users"] / TEST_USER / state["committee"])
    pool = open_pool(env["feats"])
    return np.asarray(pool.song_ids), committee.song_proba(pool), committee, pool, state


@pytest.mark.parametrize("name", ["vote-entropy", "kl-max", "kl-mean", "margin", "least-confident",
                                  "margin+density", "kl-mean+density-cosine"])
def test_score_strategies_rank_the_pool_and_are_recorded(loop_env, name):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    song_ids, proba, committee, pool, _ = _pool_proba(env)
    features = loop._song_feature_means(committee, pool) if "density" in name else None
    expected = consensus.select_queries(song_ids, strategies.scores_for(name, proba, features), 4)
    out = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 4, "--strategy", name, "--json")
    assert json.loads(out.stdout) == expected
    state = read_state(env)
    assert state["strategy"] == state["pending_strategy"] == name
    _answer(env, expected[:3])
    state = read_state(env)
    assert state["history"][-1]["strategy"] == name and "pending_strategy" not in state


def test_default_is_consensus_entropy_and_the_same_songs_as_mode_mc(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    song_ids, proba, *_ = _pool_proba(env)
    expected = consensus.select_queries(song_ids, consensus.mode_scores("mc", song_ids, proba.mean(axis=0)), 5)
    assert json.loads(call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 5, "--json").stdout) == expected
    assert read_state(env)["strategy"] == "consensus-entropy"
    # the named default is the same ranking
    assert strategies.choose("consensus-entropy", song_ids, 5, proba)[0] == expected


def test_ranked_batch_is_diverse_and_counts_the_answered_songs(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    first = json.loads(call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 4, "--strategy",
                               "ranked-batch", "--json").stdout)
    assert len(set(first)) == 4
    _answer(env, first)
    song_ids, proba, committee, pool, state = _pool_proba(env)
    features = loop._song_feature_means(committee, pool)
    position = {s: i for i, s in enumerate(song_ids.tolist())}
    expected, _ = strategies.choose("ranked-batch", song_ids, 4, proba, features=features,
                                    labelled_features=features[[position[s] for s in state["answers"]]],
                                    asked=state["asked"])
    second = json.loads(call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 4, "--strategy",
                                "ranked-batch", "--json").stdout)
    assert second == expected and not set(second) & set(first)


def test_song_feature_means_are_the_standardized_window_means(loop_env):
    env = loop_env
    pool = open_pool(env["feats"])
    committee = Committee.load(env["dir"] / "pretrained")
    means = loop._song_feature_means(committee, pool)
    offsets = np.asarray(pool.offsets)
    for i in (0, len(offsets) - 2):
        windows = committee.scaler.transform(np.asarray(pool.X[offsets[i]:offsets[i + 1]], dtype=np.float64))
        np.testing.assert_allclose(means[i], windows.mean(axis=0), rtol=0, atol=1e-9)


def test_unknown_strategy_is_refused_with_the_valid_names(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    result = call(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 4, "--strategy", "entropy")
    assert_refused(result, "--strategy", "'entropy'", "vote-entropy", "ranked-batch", "+density-cosine")
    assert read_state(env)["pending"] == []


@pytest.mark.parametrize("mode", ["hc", "rand"])
def test_other_modes_refuse_a_strategy(loop_env, mode):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", mode)
    result = call(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 4, "--strategy", "margin")
    assert_refused(result, "--strategy margin", f"mode {mode!r}")
    assert read_state(env)["pending"] == []


def test_balanced_users_refuse_ranked_batch(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc", "--balanced")
    result = call(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 4, "--strategy", "ranked-batch")
    assert_refused(result, "ranked-batch", "balanced")


def test_max_std_needs_regression_members(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    result = call(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 4, "--strategy", "max-std")
    assert_refused(result, "--strategy max-std", "regression members")


@pytest.fixture
def av_env(loop_assets, tmp_path):
    shutil.copytree(loop_assets / "data", tmp_path / "data")
    build_av_committee(tmp_path / "pretrained")
    return env_for(tmp_path)


def test_max_std_ranks_by_the_regression_members_spread(av_env):
    env = av_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    song_ids, _, committee, pool, _ = _pool_proba(env)
    spread = strategies.max_std(committee.song_av(pool))
    expected = consensus.select_queries(song_ids, spread, 3)
    out = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", 3, "--strategy", "max-std", "--json")
    assert json.loads(out.stdout) == expected


@pytest.mark.parametrize("script", ["get_hard_tracks.py", "simulate_personalization.py"])
def test_help_explains_the_strategies(script):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / script), "--help"], capture_output=True, text=True,
                         cwd=root, timeout=120)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "--strategy" in text and "+density-cosine" in text.replace("- ", "-")
    for name in strategies.STRATEGIES:
        assert name in text.replace("- ", "-"), name
