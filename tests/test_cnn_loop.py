"""A user committee with a CNN member runs a whole round of the live loop on the CPU.

Generated clips -> openSMILE features (the pool) + the audio (MER_AUDIO_DIR); a GaussianNB
member beside a tiny CNN member; the top-level scripts driven as subprocesses.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from audio_loop_support import audio_loop_env, ok, write_audio_pool
from trompa_mer.pool_scoring import pool_song_proba

SR = 16000
TONES = (220.0, 880.0, 440.0, 1760.0)  # one pitch per quadrant
SONGS = [f"clip{i:02d}" for i in range(8)]
USER = "carol"


def quadrant_of(song: str) -> int:
    return int(song[-2:]) % 4


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Audio folder, pool of features, and a saved GNB + tiny CNN committee."""
    from trompa_mer.audio_cache import AudioCache
    from trompa_mer.cnn import CNNMember
    from trompa_mer.committee import Committee
    from trompa_mer.features import FEATURE_NAMES
    from trompa_mer.members import make_member

    base = tmp_path_factory.mktemp("cnn_loop")
    rng = np.random.default_rng(5)

    def clip_of(song):
        t = np.arange(int(rng.uniform(3.0, 5.0) * 22050)) / 22050  # resampled to 16 kHz by the cache
        clip = 0.4 * np.sin(2 * np.pi * TONES[quadrant_of(song)] * t) + 0.05 * rng.standard_normal(t.size)
        return clip.astype(np.float32), 22050

    # upper-case file names: a song's id is its lowercased stem
    audio_dir, scaler, X, y = write_audio_pool(base, SONGS, clip_of, quadrant_of, audio_name=str.upper)
    gnb = make_member("gnb")
    gnb.fit(X, y)
    audio = AudioCache.from_folder(audio_dir, base / "fixture_cache")
    cnn = CNNMember(n_channels=2, epochs=1, update_epochs=1, batch_size=4, progress=False,
                    device="cpu", seed=2)
    cnn.fit_songs(SONGS, [quadrant_of(s) for s in SONGS], audio)
    Committee([("gnb_0", gnb), ("cnn_0", cnn)], scaler, FEATURE_NAMES,
              {"corpus": "generated clips (test)"}).save(base / "committee")
    return base


@pytest.fixture
def env(assets, tmp_path):
    return audio_loop_env(assets, tmp_path)


def call_ok(env, script, *args):
    """In-process run of a script's main (same argument parsing and error path, no interpreter
    start-up): for the checks beyond the round itself, which runs as subprocesses."""
    from test_loop_support import call

    result = call(env, script, *args)
    assert result.returncode == 0, f"{script} {args} failed: {result.stderr}"
    return result


def user_committee(env):
    from trompa_mer.committee import Committee

    state = json.loads((env["users"] / USER / "state.json").read_text())
    return Committee.load(env["users"] / USER / state["committee"]), state


def cnn_weights(committee) -> dict:
    cnn = dict(committee.members)["cnn_0"]
    return {k: v.detach().clone() for k, v in cnn.model_.state_dict().items()}


def changed(before: dict, after: dict) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())


def hard_round(env, update):
    songs = json.loads(ok(env, "get_hard_tracks.py", "-i", USER, "-q", 2, "--json").stdout)
    assert len(songs) == 2 and set(songs) <= set(SONGS)
    answers = env["dir"] / f"answers_{update}.json"
    answers.write_text(json.dumps({s: f"Q{quadrant_of(s) + 1}" for s in songs}))
    ok(env, "retrain_model.py", "-i", USER, "-a", answers, "--update", update)
    return songs


def test_whole_round_with_a_cnn_member(env):
    from trompa_mer import loop
    from trompa_mer.audio_cache import AudioCache
    from trompa_mer.pool import load_pool

    ok(env, "create_user.py", "-i", USER, "-m", "mc", "--committee", env["committee"])
    base, _ = user_committee(env)
    first = hard_round(env, "cumulative")
    after_cumulative, state = user_committee(env)
    assert state["iteration"] == 1 and set(state["answers"]) == set(first)
    assert changed(cnn_weights(base), cnn_weights(after_cumulative)), "the CNN was fine-tuned"
    second = hard_round(env, "batch")
    assert not set(first) & set(second)
    after_batch, state = user_committee(env)
    assert state["iteration"] == 2
    assert changed(cnn_weights(after_cumulative), cnn_weights(after_batch))

    # The committee's pool probabilities keep the CNN rows on their songs.
    pool = load_pool(env["dir"] / "data" / "feats")
    audio = AudioCache.from_folder(env["dir"] / "data" / "audio", env["dir"] / "check_cache")
    proba = pool_song_proba(after_batch, pool, audio_source=audio)
    assert proba.shape == (2, len(SONGS), 4) and np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=2), 1.0, atol=1e-6)
    cnn = dict(after_batch.members)["cnn_0"]
    for k, song in enumerate(pool.song_ids):
        np.testing.assert_allclose(proba[1, k], cnn.predict_proba_songs([song], audio)[0], atol=1e-6)

    # predict -u on audio: both members; on a features CSV: the CNN is skipped with a note.
    out = env["dir"] / "pred_audio.json"
    ok(env, "predict_emotion.py", "-i", env["dir"] / "data" / "audio" / "CLIP03.wav", "-o", out, "-u", USER)
    result = json.loads(out.read_text())
    assert set(result["member_mean_probs"]) == {"gnb_0", "cnn_0"} and "skipped_members" not in result
    cnn_song = cnn.predict_proba_songs(["clip03"], audio)[0]
    np.testing.assert_allclose(result["member_mean_probs"]["cnn_0"], cnn_song, atol=1e-6)
    assert np.all(np.isfinite(result["output_probs"])) and np.isclose(sum(result["mean_probs"]), 1.0)
    out_csv = env["dir"] / "pred_csv.json"
    call_ok(env, "predict_emotion.py", "-i", env["dir"] / "data" / "feats" / "clip03.csv", "-o", out_csv, "-u", USER)
    result = json.loads(out_csv.read_text())
    assert list(result["member_mean_probs"]) == ["gnb_0"] and "cnn_0" in result["skipped_members"]
    assert np.all(np.isfinite(result["output_probs"]))

    # Recommendations score the group's songs with the CNN too (its audio read by song id).
    playlists = env["dir"] / "playlists.csv"
    playlists.write_text("group,song\n" + "".join(f"g1,{s.upper()}\n" for s in SONGS[:5]))
    picks = json.loads(call_ok(env, "get_recommendations.py", "-i", USER, "-r", "g1",
                               "--playlists", playlists, "--json").stdout)
    chosen = [song for song in picks.values() if song is not None]
    assert len(chosen) == 4 and set(chosen) <= set(SONGS[:5])


def test_missing_audio_is_one_clear_line(env):
    from test_loop_support import assert_refused, call

    call_ok(env, "create_user.py", "-i", USER, "-m", "mc", "--committee", env["committee"])
    (env["dir"] / "data" / "audio" / "CLIP05.wav").unlink()
    assert_refused(call(env, "get_hard_tracks.py", "-i", USER, "-q", 2),
                   "'clip05'", str(env["dir"] / "data" / "audio"), "MER_AUDIO_DIR")
    state = json.loads((env["users"] / USER / "state.json").read_text())
    assert not state["pending"], "nothing recorded when the audio is missing"
    env["env"]["MER_AUDIO_DIR"] = str(env["dir"] / "no_such_folder")
    assert_refused(call(env, "get_hard_tracks.py", "-i", USER, "-q", 2), "no_such_folder", "MER_AUDIO_DIR")
