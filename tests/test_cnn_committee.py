"""A committee with a tiny CNN member beside a feature member, on generated audio and windows."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from trompa_mer.cnn import CNNMember
from trompa_mer.committee import Committee
from trompa_mer.errors import MERError
from trompa_mer.members import GaussianNBMember

SR = 16000


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(11)
    song_ids = np.array([f"s{i}" for i in range(6)])
    labels = np.array([0, 1, 2, 3, 0, 2])
    tones = (220.0, 880.0, 440.0, 1760.0)
    audio = {}
    for s, q in zip(song_ids, labels):
        t = np.arange(int(rng.uniform(2.0, 5.0) * SR)) / SR
        audio[s] = (0.5 * np.sin(2 * np.pi * tones[q] * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    # Window features: 3 windows per song, 5 columns, shifted by the quadrant.
    song_of_window = np.repeat(np.arange(len(song_ids)), 3)
    X_raw = rng.standard_normal((len(song_of_window), 5)) + labels[song_of_window, None]
    return song_ids, labels, audio, X_raw, song_of_window


@pytest.fixture(scope="module")
def trained_cnn(corpus):
    song_ids, labels, audio, _, _ = corpus
    cnn = CNNMember(n_channels=2, epochs=2, update_epochs=2, batch_size=4, progress=False, device="cpu")
    return cnn.fit_songs(song_ids, labels, audio)


@pytest.fixture
def committee(corpus, trained_cnn):
    song_ids, labels, audio, X_raw, song_of_window = corpus
    scaler = StandardScaler().fit(X_raw)
    gnb = GaussianNBMember().fit(scaler.transform(X_raw), labels[song_of_window])
    cnn = copy.deepcopy(trained_cnn)  # each test gets its own copy to update
    return Committee([("gnb_0", gnb), ("cnn_0", cnn)], scaler, [f"f{i}" for i in range(5)],
                     {"corpus": "generated"})


def test_song_proba_joins_cnn_rows_by_song_id(committee, corpus):
    song_ids, _, audio, X_raw, song_of_window = corpus
    proba = committee.song_proba(X_raw, song_of_window, song_ids=song_ids, audio=audio)
    assert proba.shape == (2, len(song_ids), 4)
    np.testing.assert_allclose(proba.sum(-1), 1.0, atol=1e-9)
    cnn = committee.members[1][1]
    one_by_one = np.vstack([cnn.predict_proba_songs([s], audio) for s in song_ids])
    np.testing.assert_allclose(proba[1], one_by_one, atol=1e-6)
    with pytest.raises(MERError, match="audio source"):
        committee.song_proba(X_raw, song_of_window, song_ids=song_ids)


def test_update_round_and_save_load(committee, corpus, tmp_path):
    song_ids, labels, audio, X_raw, song_of_window = corpus
    before = committee.members[1][1].predict_proba_songs(song_ids, audio)
    # A listener's round: two songs, both answered Q2 (a batch lacking three quadrants).
    asked = np.array([0, 3])
    rows = np.isin(song_of_window, asked)
    committee.update(X_raw[rows], np.array([1, 1]), song_of_window=np.searchsorted(asked, song_of_window[rows]),
                     song_ids=list(song_ids[asked]), audio=audio)
    after = committee.song_proba(X_raw, song_of_window, song_ids=song_ids, audio=audio)
    assert np.isfinite(after).all() and not np.allclose(after[1], before)
    assert committee.members[1][1].n_updates_ == 1

    committee.save(tmp_path / "user_committee")
    assert {"cnn_0.pt", "cnn_0.json"} <= {p.name for p in (tmp_path / "user_committee").iterdir()}
    loaded = Committee.load(tmp_path / "user_committee")
    assert loaded.algorithms() == ["gnb", "cnn"]
    reloaded = loaded.song_proba(X_raw, song_of_window, song_ids=song_ids, audio=audio)
    np.testing.assert_allclose(reloaded, after, atol=1e-12)
    # A damaged weight file is refused by the committee's checksums.
    weights = tmp_path / "user_committee" / "cnn_0.pt"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(MERError, match="checksum"):
        Committee.load(tmp_path / "user_committee")
