"""Refusals inside a retrain, after the answers parsed: each leaves the user folder byte-identical.

test_loop_refusals.py covers the answers themselves (labels, JSON, pending songs) and a song
without features. Here the answers are fine and something the retrain needs next is not:
the base committee (cumulative), the current committee (batch; missing or damaged), the pool,
another process's lock, the crowd members of a --crowd-member user, the audio of an audio
(CNN) member. Every refusal is one `error:` line, exit status 1, and the user's folder
(state, committees, crowd members) is exactly as before; the same retrain then succeeds
once the cause is repaired.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from test_loop_support import (TEST_USER, assert_refused, call, call_ok, loop_assets,  # noqa: F401
                               loop_env, read_state, snapshot)


def _pending(env, *create_args, q=3):
    call_ok(env, "create_user.py", "-i", TEST_USER, *create_args)
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", q).stdout.split()
    return {song: f"Q{1 + int(song[-2:]) % 4}" for song in songs}


def _refused_unchanged(env, answers, *needles, update=None, environ=None):
    """The retrain is refused naming `needles`, and nothing under the user folder changed."""
    user_dir = env["users"] / TEST_USER
    before = snapshot(user_dir)
    run_env = env if environ is None else {**env, "env": {**env["env"], **environ}}
    args = ["-i", TEST_USER, "-a", json.dumps(answers)] + (["--update", update] if update else [])
    line = assert_refused(call(run_env, "retrain_model.py", *args), *needles)
    after = snapshot(user_dir)
    assert sorted(after) == sorted(before), f"files appeared or vanished: {sorted(set(after) ^ set(before))}"
    assert after == before, "a refused retrain changed a file of the user"
    return line


def _stored_file(folder, name):
    """Where the bytes of a committee file live: in the folder, or the shared store's blob."""
    if (folder / name).is_file():
        return folder / name
    manifest = json.loads((folder / "committee.json").read_text())
    return (folder / manifest["store"] / manifest["stored"][name]["blob"]).resolve()


def _succeeds(env, answers, update=None):
    args = ["-i", TEST_USER, "-a", json.dumps(answers)] + (["--update", update] if update else [])
    call_ok(env, "retrain_model.py", *args)
    state = read_state(env)
    assert state["iteration"] == 1 and state["pending"] == [] and set(state["answers"]) == set(answers)


def test_cumulative_without_the_base_committee(loop_env):
    env = loop_env
    answers = _pending(env, "-m", "mc")
    base = env["users"] / TEST_USER / "base-committee"
    shutil.move(base, env["dir"] / "kept")
    _refused_unchanged(env, answers, str(base), "missing", "--update batch", update="cumulative")
    shutil.move(env["dir"] / "kept", base)
    _succeeds(env, answers, update="cumulative")


def test_batch_with_the_current_committee_missing(loop_env):
    env = loop_env
    answers = _pending(env, "-m", "rand")
    current = env["users"] / TEST_USER / read_state(env)["committee"]
    shutil.move(current, env["dir"] / "kept")
    # state.json names a folder that is not there: refused as an inconsistent state
    _refused_unchanged(env, answers, "state.json", "field 'committee'", "recreate the user", update="batch")
    shutil.move(env["dir"] / "kept", current)
    _succeeds(env, answers, update="batch")


@pytest.mark.parametrize("update", ["batch", "cumulative"])
def test_damaged_committee_it_starts_from(loop_env, update):
    env = loop_env
    answers = _pending(env, "-m", "rand")
    folder = env["users"] / TEST_USER / ("base-committee" if update == "cumulative" else read_state(env)["committee"])
    victim = _stored_file(folder, "sgd_0.skops")
    original = victim.read_bytes()
    victim.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    _refused_unchanged(env, answers, str(victim), "sgd_0.skops", "changed or damaged", update=update)
    victim.write_bytes(original)
    _succeeds(env, answers, update=update)


def test_pool_folder_missing_or_empty(loop_env):
    env = loop_env
    answers = _pending(env, "-m", "rand")
    nowhere = env["dir"] / "no_feats"
    _refused_unchanged(env, answers, str(nowhere), "not found", environ={"MER_FEATS_DIR": str(nowhere)})
    nowhere.mkdir()
    _refused_unchanged(env, answers, str(nowhere), "no feature CSVs", environ={"MER_FEATS_DIR": str(nowhere)})
    _succeeds(env, answers)


def test_another_process_holds_the_lock(loop_env):
    from trompa_mer.users import UserStore

    env = loop_env
    answers = _pending(env, "-m", "rand")
    with UserStore(env["users"]).lock(TEST_USER):
        _refused_unchanged(env, answers, "is busy", "MER_LOCK_TIMEOUT", environ={"MER_LOCK_TIMEOUT": "0.2"})
    _succeeds(env, answers)


def test_damaged_state_file(loop_env):
    env = loop_env
    answers = _pending(env, "-m", "rand")
    state_path = env["users"] / TEST_USER / "state.json"
    good = state_path.read_text()
    state_path.write_text(good[:-5])
    _refused_unchanged(env, answers, str(state_path), "not valid JSON")
    state_path.write_text(json.dumps({**json.loads(good), "format": 99}))
    _refused_unchanged(env, answers, "field 'format'")
    state_path.write_text(good)
    _succeeds(env, answers)


def test_unknown_update_strategy_through_the_api(loop_env):
    from trompa_mer import loop
    from trompa_mer.errors import MERError

    env = loop_env
    answers = _pending(env, "-m", "rand")
    before = snapshot(env["users"] / TEST_USER)
    with pytest.raises(MERError, match="update strategy: expected one of batch, cumulative, got 'sometimes'"):
        loop.retrain(TEST_USER, json.dumps(answers), env["users"], env["feats"], update="sometimes")
    assert snapshot(env["users"] / TEST_USER) == before


# --- a --crowd-member user: the crowd members are retrained after the audio committee -------
@pytest.mark.slow
@pytest.mark.parametrize("update", ["cumulative", "batch"])
def test_crowd_members_missing(loop_env, update):
    env = loop_env
    answers = _pending(env, "-m", "mc", "--crowd-member")
    state = read_state(env)
    folder = env["users"] / TEST_USER / ("base-crowd" if update == "cumulative" else state["crowd"])
    shutil.move(folder, env["dir"] / "kept")
    if update == "batch":  # state.json names it: refused as an inconsistent state
        _refused_unchanged(env, answers, "state.json", "field 'crowd'", "recreate the user", update=update)
    else:
        _refused_unchanged(env, answers, str(folder), "missing", "recreate the user", update=update)
    shutil.move(env["dir"] / "kept", folder)
    _succeeds(env, answers, update=update)
    assert read_state(env)["crowd"] == "crowd-0001"


@pytest.mark.slow
def test_crowd_table_missing(loop_env):
    env = loop_env
    answers = _pending(env, "-m", "mc", "--crowd-member")
    table = env["users"] / TEST_USER / "crowd_features.csv"
    shutil.move(table, env["dir"] / "kept.csv")
    _refused_unchanged(env, answers, "crowd_features.csv")
    shutil.move(env["dir"] / "kept.csv", table)
    _succeeds(env, answers)


# --- an audio (CNN) member needs every trained song's audio ------------------------------------
@pytest.fixture(scope="module")
def audio_committee(loop_assets, tmp_path_factory, torch_one_thread):
    """The loop pool's GNB member beside a tiny CNN, and 4 s of audio for every pool song."""
    import soundfile
    from sklearn.preprocessing import StandardScaler

    from trompa_mer.audio_cache import AudioCache
    from trompa_mer.cnn import CNNMember
    from trompa_mer.committee import Committee
    from trompa_mer.members import make_member
    from trompa_mer.pool import load_pool
    from test_loop_support import true_quadrant

    base = tmp_path_factory.mktemp("audio_committee")
    pool = load_pool(loop_assets / "data" / "feats", cache=False)
    audio_dir = base / "audio"
    audio_dir.mkdir()
    t = np.arange(4 * 16000) / 16000
    for song in pool.song_ids:
        tone = 220.0 * 2 ** true_quadrant(song)
        soundfile.write(audio_dir / f"{song}.wav", (0.3 * np.sin(2 * np.pi * tone * t)).astype(np.float32), 16000)
    y = np.repeat([true_quadrant(s) for s in pool.song_ids], np.diff(pool.offsets))
    scaler = StandardScaler().fit(pool.X)
    gnb = make_member("gnb").fit(((pool.X - scaler.mean_) / scaler.scale_).astype(np.float32), y)
    cnn = CNNMember(n_channels=2, epochs=1, update_epochs=1, batch_size=4, progress=False, device="cpu", seed=1)
    songs = list(pool.song_ids[:4])
    cnn.fit_songs(songs, [true_quadrant(s) for s in songs], AudioCache.from_folder(audio_dir, base / "cache"))
    Committee([("gnb_0", gnb), ("cnn_0", cnn)], scaler, pool.feature_names, {"corpus": "test"}).save(base / "committee")
    return base


@pytest.mark.slow
def test_audio_member_without_audio(loop_env, audio_committee, tmp_path):
    env = loop_env
    audio = tmp_path / "audio"
    shutil.copytree(audio_committee / "audio", audio)
    env["env"].update({"MER_AUDIO_DIR": str(audio), "MER_CACHE_DIR": str(tmp_path / "cache")})
    answers = _pending(env, "-m", "rand", "--committee", audio_committee / "committee", q=2)
    song = sorted(answers)[0]
    shutil.move(audio / f"{song}.wav", tmp_path / "kept.wav")
    _refused_unchanged(env, answers, f"no audio file for song {song!r}", "MER_AUDIO_DIR")
    _refused_unchanged(env, answers, str(tmp_path / "no_audio"), "audio folder not found",
                       environ={"MER_AUDIO_DIR": str(tmp_path / "no_audio")})
    shutil.move(tmp_path / "kept.wav", audio / f"{song}.wav")
    _succeeds(env, answers)
