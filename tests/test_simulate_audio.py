"""The simulator runs a given committee with audio members when an audio source comes with it.

A feature member plus a fake audio member that records the song ids it is asked about: on
update it must see the real ids of the songs the listener answered (with their answers), and
on scoring the real ids of the listener's songs (the test songs among them). Without an audio
source, or with songs missing from it, the run is refused in one line; audio algorithms are
never pre-trained per user.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trompa_mer import simulate
from trompa_mer.committee import Committee
from trompa_mer.errors import MERError
from trompa_mer.members import SongAudio, make_member
from trompa_mer.simulate import ExperimentConfig, FeatureTable, run_experiment

N_SONGS = 60


class RecordingAudioMember:
    """An audio member answering from the source (one-hot of a per-song quadrant); every copy
    writes into the same log, so the simulator's per-configuration copies are seen too."""

    algorithm = "fake-audio"
    input_kind = "audio"
    target_kind = "quadrant"
    margin_cacheable = False

    def __init__(self, log):
        self.log = log

    def copy(self):
        return RecordingAudioMember(self.log)

    def fit(self, X, y):
        self.log.append(("fit", list(X.song_ids), list(y)))
        return self

    def update(self, X, y):
        self.log.append(("update", list(X.song_ids), [int(v) for v in y]))
        return self

    def predict_proba(self, X):
        self.log.append(("predict", list(X.song_ids), None))
        return np.array([np.eye(4)[int(X.source[s][0])] for s in X.song_ids])


def _setup():
    rng = np.random.default_rng(3)
    quadrant = rng.integers(0, 4, N_SONGS)
    ids = np.array([f"song-{i:02d}" for i in range(N_SONGS)])
    X = (np.eye(4)[quadrant] + 0.3 * rng.standard_normal((N_SONGS, 4))).astype(np.float32)
    features = FeatureTable(ids, X, np.arange(N_SONGS + 1), ["f0", "f1", "f2", "f3"])
    rows = [("me", s, int(q)) for s, q in zip(ids, quadrant)]
    rows += [("other", s, int((q + 1) % 4)) for s, q in zip(ids, quadrant)]
    annotations = pd.DataFrame(rows, columns=["user", "song", "quadrant"])
    # the "audio": a constant signal whose value is the song's quadrant
    audio = {s: np.full(16, float(q), dtype=np.float32) for s, q in zip(ids, quadrant)}
    return annotations, features, audio, dict(zip(ids.tolist(), quadrant.tolist()))


def _committee(features, log) -> Committee:
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(features.X)
    y = np.asarray([int(np.argmax(r)) for r in features.X])
    gnb = make_member("gnb").fit(scaler.transform(features.X).astype(np.float32), y)
    return Committee([("gnb_0", gnb), ("audio_0", RecordingAudioMember(log))], scaler, features.feature_names)


def _config(**kw):
    options = dict(min_annotations=50, modes=["rand"], queries=[4], iterations=[2], updates=["batch"],
                   repeats=1, algorithms=["gnb"], users=["me"])
    options.update(kw)
    return ExperimentConfig(**options)


def test_audio_members_see_the_real_song_ids(tmp_path):
    annotations, features, audio, labels = _setup()
    log = []
    config = _config()
    run_experiment(annotations, features, config, tmp_path / "run", committee=_committee(features, log),
                   progress=False, plots=False, audio=audio)
    songs = sorted(labels)
    pool, test = simulate.user_split(songs, config.seed, "me", 0, config.test_size)
    predicted = [ids for kind, ids, _ in log if kind == "predict"]
    updates = [(ids, y) for kind, ids, y in log if kind == "update"]
    # one scoring before the first answer and after each of the 2 rounds; every song of the
    # listener by its id, so the test songs among them
    assert len(predicted) == 3 and all(ids == songs for ids in predicted)
    assert set(test) <= set(predicted[0])
    # each round: 4 new pool songs, with the listener's own answers
    assert len(updates) == 2
    asked = [s for ids, _ in updates for s in ids]
    assert len(asked) == 8 and len(set(asked)) == 8 and set(asked) <= set(pool)
    for ids, y in updates:
        assert y == [labels[s] for s in ids]
    table = simulate.read_results(tmp_path / "run")
    rows = table[(table["mode"] == "rand") & (table["algorithm"] == "fake-audio")]
    assert rows["iteration"].tolist() == [0, 1, 2]
    # the fake audio member knows every song's quadrant: its test F1 is perfect
    assert (rows["f1_macro"] == 1.0).all()
    assert not [entry for entry in log if entry[0] == "fit"]


def test_without_an_audio_source_the_run_is_refused_in_one_line(tmp_path):
    annotations, features, audio, _ = _setup()
    committee = _committee(features, [])
    with pytest.raises(MERError, match="audio members \\['audio_0'\\] need an audio source") as err:
        run_experiment(annotations, features, _config(), tmp_path / "run", committee=committee,
                       progress=False, plots=False)
    assert "\n" not in str(err.value)
    with pytest.raises(MERError, match="audio source"):
        simulate.simulatable(committee)
    del audio["song-07"]
    with pytest.raises(MERError, match="1 songs have no audio") as err:
        run_experiment(annotations, features, _config(), tmp_path / "run2", committee=committee,
                       progress=False, plots=False, audio=audio)
    assert "\n" not in str(err.value)


def test_audio_algorithms_are_not_pretrained_per_user():
    with pytest.raises(MERError, match="does not pre-train audio members \\(cnn\\)"):
        _config(algorithms=["gnb", "cnn"]).validate()
    annotations, features, _, labels = _setup()
    with pytest.raises(MERError, match="does not pre-train audio members \\(encoder\\)"):
        simulate.protocol.pretrain_committee(features, pd.Series(labels), ["encoder"], {})


def test_feature_committees_keep_row_index_song_ids():
    """Without audio members the prepared batches keep the row indices as ids (as recorded)."""
    batch = simulate.protocol._songs(np.zeros((3, 2), np.float32), [0, 1, 3], song_ids=["a", "b"])
    assert batch.song_ids == [0, 1] and batch.audio is None
    batch = simulate.protocol._songs(np.zeros((3, 2), np.float32), [0, 1, 3], song_ids=["a", "b"], audio={})
    assert batch.song_ids == ["a", "b"]


def test_the_script_takes_audio_dir_only_with_a_committee(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    annotations, features, _, _ = _setup()
    annotations.to_csv(tmp_path / "annotations.csv", index=False)
    pd.DataFrame(features.X, columns=features.feature_names).assign(song=features.song_ids).to_csv(
        tmp_path / "features.csv", index=False)
    script = Path(__file__).resolve().parents[1] / "simulate_personalization.py"
    done = subprocess.run([sys.executable, str(script), "-a", str(tmp_path / "annotations.csv"), "-i",
                           str(tmp_path / "features.csv"), "-o", str(tmp_path / "out"), "--audio-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "--audio-dir: only for a --committee with audio members" in done.stderr


@pytest.mark.usefixtures("torch_one_thread")
def test_a_real_encoder_member_is_simulated_and_updated(tmp_path):
    """The same path with a tiny pre-trained encoder member (trompa_mer.transfer) on generated
    tones: it scores every song, and the listener's answers change its heads."""
    import torch

    from trompa_mer import encoder as E
    from trompa_mer import logmel
    from trompa_mer.transfer import EncoderMember

    annotations, features, _, labels = _setup()
    tones = (220.0, 880.0, 440.0, 1760.0)
    t = np.arange(int(1.5 * 16000)) / 16000
    audio = {s: (0.4 * np.sin(2 * np.pi * tones[q] * t)).astype(np.float32) for s, q in labels.items()}
    stream = np.concatenate([logmel.logmel(audio[s]) for s in list(labels)[:8]], axis=1)
    E.pretrain("scae", stream, stream[:, :0], tmp_path / "encoder", width=1, epochs=1, batch_size=8,
               progress=False, max_batches=1)
    member = EncoderMember.from_folder(tmp_path / "encoder", transfer="feature-extractor", epochs=2,
                                       update_epochs=2, update_lr=1e-2, device="cpu", seed=2)
    songs = list(labels)[:12]
    member.fit_songs(songs, [labels[s] for s in songs], audio)
    before = {k: v.clone() for k, v in member.net_.state_dict().items()}
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(features.X)
    gnb = make_member("gnb").fit(scaler.transform(features.X).astype(np.float32),
                                 np.asarray([int(np.argmax(r)) for r in features.X]))
    committee = Committee([("gnb_0", gnb), ("encoder_0", member)], scaler, features.feature_names)
    run_experiment(annotations, features, _config(), tmp_path / "run", committee=committee,
                   progress=False, plots=False, audio=audio)
    table = simulate.read_results(tmp_path / "run")
    rows = table[(table["mode"] == "rand") & (table["algorithm"] == "encoder")]
    assert rows["iteration"].tolist() == [0, 1, 2]
    assert rows["f1_macro"].between(0, 1).all()
    # the simulator works on copies: the committee passed in is left as it was
    assert all(torch.equal(before[k], v) for k, v in member.net_.state_dict().items())
    # and a copy updated with answers, as the simulator does each round, does change
    twin = member.copy()
    twin.update(SongAudio(songs[:4], audio), np.array([labels[s] for s in songs[:4]]))
    assert any(not torch.equal(before[k], v) for k, v in twin.net_.state_dict().items())
