"""A user committee with a (tiny, speech-style pre-trained) encoder member beside a feature
member runs a round of the live loop: hard tracks, retraining with answers, prediction."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from audio_loop_support import audio_loop_env, ok, write_audio_pool

ROOT = Path(__file__).resolve().parents[1]
TONES = (220.0, 880.0, 440.0, 1760.0)
SONGS = [f"clip{i:02d}" for i in range(8)]
USER = "dora"

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def quadrant_of(song: str) -> int:
    return int(song[-2:]) % 4


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from trompa_mer import encoder as E
    from trompa_mer import logmel
    from trompa_mer.audio_cache import AudioCache
    from trompa_mer.committee import Committee
    from trompa_mer.features import FEATURE_NAMES
    from trompa_mer.members import make_member
    from trompa_mer.transfer import EncoderMember

    base = tmp_path_factory.mktemp("encoder_loop")
    rng = np.random.default_rng(3)
    frames = []

    def clip_of(song):
        t = np.arange(int(rng.uniform(3.0, 4.0) * 16000)) / 16000
        clip = (0.4 * np.sin(2 * np.pi * TONES[quadrant_of(song)] * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
        frames.append(logmel.logmel(clip))
        return clip, 16000

    audio_dir, scaler, X, y = write_audio_pool(base, SONGS, clip_of, quadrant_of)
    gnb = make_member("gnb")
    gnb.fit(X, y)
    stream = np.concatenate(frames, axis=1)
    E.pretrain("scae", stream, stream[:, :0], base / "encoder", width=1, epochs=1, batch_size=8,
               progress=False, max_batches=2)
    member = EncoderMember.from_folder(base / "encoder", transfer="full", epochs=3, full_epochs=1,
                                       update_epochs=2, update_lr=1e-2, device="cpu", seed=2)
    audio = AudioCache.from_folder(audio_dir, base / "fixture_cache")
    member.fit_songs(SONGS, [quadrant_of(s) for s in SONGS], audio)
    Committee([("gnb_0", gnb), ("encoder_0", member)], scaler, FEATURE_NAMES,
              {"corpus": "generated clips (test)"}).save(base / "committee")
    return base


@pytest.fixture
def env(assets, tmp_path):
    return audio_loop_env(assets, tmp_path)


def member_state(env):
    from trompa_mer.committee import Committee

    state = json.loads((env["users"] / USER / "state.json").read_text())
    committee = Committee.load(env["users"] / USER / state["committee"])
    member = dict(committee.members)["encoder_0"]
    return committee, {k: v.clone() for k, v in member.net_.state_dict().items()}


def test_round_with_an_encoder_member(env):
    from trompa_mer.audio_cache import AudioCache
    from trompa_mer.pool import load_pool
    from trompa_mer.pool_scoring import pool_song_proba

    ok(env, "create_user.py", "-i", USER, "-m", "mc", "--committee", env["committee"])
    _, before = member_state(env)
    songs = json.loads(ok(env, "get_hard_tracks.py", "-i", USER, "-q", 2, "--json").stdout)
    assert len(songs) == 2 and set(songs) <= set(SONGS)
    answers = env["dir"] / "answers.json"
    answers.write_text(json.dumps({s: f"Q{quadrant_of(s) + 1}" for s in songs}))
    ok(env, "retrain_model.py", "-i", USER, "-a", answers)
    committee, after = member_state(env)
    heads = [k for k in before if k.startswith("heads.") and before[k].is_floating_point()]
    enc = [k for k in before if k.startswith("encoder.") and before[k].is_floating_point()]
    assert any(not torch.equal(before[k], after[k]) for k in heads), "the heads were updated"
    assert all(torch.equal(before[k], after[k]) for k in enc), "the encoder stays as it was"

    pool = load_pool(env["dir"] / "data" / "feats")
    audio = AudioCache.from_folder(env["dir"] / "data" / "audio", env["dir"] / "check_cache")
    proba = pool_song_proba(committee, pool, audio_source=audio)
    assert proba.shape == (2, len(SONGS), 4) and np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=2), 1.0, atol=1e-6)
    member = dict(committee.members)["encoder_0"]
    np.testing.assert_allclose(proba[1, 3], member.predict_proba_songs([pool.song_ids[3]], audio)[0], atol=1e-6)

    out = env["dir"] / "pred.json"
    ok(env, "predict_emotion.py", "-i", env["dir"] / "data" / "audio" / "clip03.wav", "-o", out, "-u", USER)
    result = json.loads(out.read_text())
    assert set(result["member_mean_probs"]) == {"gnb_0", "encoder_0"}
    assert np.isclose(sum(result["mean_probs"]), 1.0)
    assert "note:" not in ok(env, "predict_emotion.py", "-i", env["dir"] / "data" / "audio" / "clip03.wav",
                             "-o", "-", "-u", USER).stderr

    # a feature CSV carries no audio: the encoder member is left out, and the console says so
    csv_run = ok(env, "predict_emotion.py", "-i", env["dir"] / "data" / "feats" / "clip03.csv", "-o",
                 env["dir"] / "pred_csv.json", "-u", USER)
    result = json.loads((env["dir"] / "pred_csv.json").read_text())
    assert list(result["member_mean_probs"]) == ["gnb_0"] and "encoder_0" in result["skipped_members"]
    notes = [line for line in csv_run.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and notes[0].startswith("note: member(s) encoder_0 skipped: reads audio; "
                                                   "the input is a feature CSV"), csv_run.stderr
    batch = ok(env, "predict_emotion.py", "-i", env["dir"] / "data" / "feats", "-o", env["dir"] / "preds.jsonl",
               "-u", USER, "-q")
    assert f"note: member(s) encoder_0 skipped for {len(SONGS)} of {len(SONGS)} inputs: they read audio" in batch.stderr


def test_member_save_load_and_refusals(tmp_path, assets):
    from trompa_mer.audio_cache import AudioCache
    from trompa_mer.errors import MERError
    from trompa_mer.members import SongAudio
    from trompa_mer.transfer import EncoderMember

    audio = AudioCache.from_folder(assets / "data" / "audio", tmp_path / "cache")
    member = EncoderMember.from_folder(assets / "encoder", epochs=2, device="cpu")
    member.fit(SongAudio(SONGS, audio), np.array([quadrant_of(s) for s in SONGS]))
    p = member.predict_proba(SongAudio(SONGS[:3], audio))
    assert p.shape == (3, 4) and np.allclose(p.sum(axis=1), 1)
    names = member.save(tmp_path / "m")
    assert names == ["m.pt", "m.json"]
    loaded = EncoderMember.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(SongAudio(SONGS[:3], audio)), p, atol=1e-7)
    copy = member.copy()
    copy.update(SongAudio(SONGS[:2], audio), np.array([0, 1]))
    np.testing.assert_allclose(member.predict_proba(SongAudio(SONGS[:3], audio)), p, atol=1e-7)
    with pytest.raises(MERError, match="SongAudio"):
        member.predict_proba(np.zeros((3, 260)))
    with pytest.raises(MERError, match="transfer"):
        EncoderMember(transfer="partial")
    (tmp_path / "m.pt").write_bytes(b"not torch")
    with pytest.raises(MERError, match="m.pt"):
        EncoderMember.load(tmp_path / "m")


def test_the_audio_folder_setting_is_explained_where_a_user_meets_it(env):
    """An encoder committee without its audio: one error line naming the setting, its default and
    the docs; with the default folder (<MER_DATA_DIR>/audio, MER_AUDIO_DIR unset) it works."""
    ok(env, "create_user.py", "-i", USER, "-m", "mc", "--committee", env["committee"])
    env["env"]["MER_AUDIO_DIR"] = str(env["dir"] / "no_such_folder")
    refused = subprocess.run([sys.executable, str(ROOT / "get_hard_tracks.py"), "-i", USER, "-q", "2"],
                             env=env["env"], cwd=env["dir"], capture_output=True, text=True, timeout=300)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), refused.stderr
    for needle in ("no_such_folder", "encoder_0", "MER_AUDIO_DIR", "default <MER_DATA_DIR>/audio", "docs/loop.md"):
        assert needle in lines[0], lines[0]
    state = json.loads((env["users"] / USER / "state.json").read_text())
    assert not state["pending"], "nothing recorded when the audio is missing"
    del env["env"]["MER_AUDIO_DIR"]  # the default: <MER_DATA_DIR>/audio, where the fixture's audio is
    songs = json.loads(ok(env, "get_hard_tracks.py", "-i", USER, "-q", 2, "--json").stdout)
    assert len(songs) == 2 and set(songs) <= set(SONGS)
