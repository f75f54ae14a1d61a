"""The short-chunk CNN member on generated audio (tiny n_channels, CPU, a few seconds)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trompa_mer import cnn
from trompa_mer.cnn import CHUNK_SAMPLES, CNNMember, MelFrontEnd, ShortChunkCNN
from trompa_mer.errors import MERError

SR = 16000
TONES = (220.0, 880.0, 440.0, 1760.0)  # one pitch per quadrant: learnable from a mel spectrogram


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def make_song(quadrant: int, seconds: float, rng) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    tone = 0.5 * np.sin(2 * np.pi * TONES[quadrant] * t) * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    return (tone + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def songs():
    rng = np.random.default_rng(7)
    ids = [f"song{i:02d}" for i in range(8)]
    labels = np.array([i % 4 for i in range(8)])
    # Different lengths: shorter than a chunk, a few chunks, and in between.
    lengths = [2.0, 5.0, 4.1, 6.5, 3.0, 5.5, 7.2, 4.0]
    audio = {s: make_song(q, sec, rng) for s, q, sec in zip(ids, labels, lengths)}
    return ids, labels, audio


def tiny_member(**kwargs) -> CNNMember:
    params = dict(n_channels=4, epochs=15, adam_lr=3e-3, chunks_per_song=2, batch_size=8,
                  progress=False, device="cpu", seed=3)
    params.update(kwargs)
    return CNNMember(**params)


@pytest.fixture(scope="module")
def trained(songs, tmp_path_factory):
    ids, labels, audio = songs
    log = tmp_path_factory.mktemp("cnnlog") / "log.csv"
    return tiny_member(log_path=log).fit_songs(ids, labels, audio), log


# --- front end ---------------------------------------------------------------------------
def reference_mel_db(signal: np.ndarray, n_fft=512, hop=256, n_mels=128, sr=SR, top_db=80.0):
    """The same definition written independently: explicit framing + numpy rfft, and the
    triangular HTK filters evaluated point by point from their three corner frequencies."""
    padded = np.pad(signal.astype(np.float64), n_fft // 2, mode="reflect")
    n_frames = 1 + (len(padded) - n_fft) // hop
    k = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * k / n_fft)  # periodic Hann
    frames = np.stack([padded[i * hop:i * hop + n_fft] * window for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, bins)

    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    corners = [hz(mel(0.0) + i * (mel(sr / 2) - mel(0.0)) / (n_mels + 1)) for i in range(n_mels + 2)]
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    weights = np.zeros((n_fft // 2 + 1, n_mels))
    for m in range(n_mels):
        lo, mid, hi = corners[m], corners[m + 1], corners[m + 2]
        for b, f in enumerate(freqs):
            if lo <= f <= mid:
                weights[b, m] = (f - lo) / (mid - lo)
            elif mid < f <= hi:
                weights[b, m] = (hi - f) / (hi - mid)
    db = 10 * np.log10(np.maximum(power @ weights, 1e-10)).T  # (mels, frames)
    return np.maximum(db, db.max() - top_db)


def test_front_end_matches_independent_reference():
    rng = np.random.default_rng(0)
    t = np.arange(CHUNK_SAMPLES) / SR
    loud = np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(t.size)
    quiet = 1e-3 * np.sin(2 * np.pi * 3000 * t) + 1e-4 * rng.standard_normal(t.size)
    front = MelFrontEnd()  # float64 input: exact arithmetic end to end
    ours = front(torch.from_numpy(np.stack([loud, quiet]))).numpy()
    for row, signal in zip(ours, (loud, quiet)):
        ref = reference_mel_db(signal)
        assert row.shape == ref.shape == (128, 231)
        assert np.abs(row - ref).max() < 1e-4
    # The floor is per example: the quiet clip keeps its own 80 dB range next to a loud one.
    assert ours[1].max() - ours[1].min() > 60
    assert ours[1].max() < ours[0].max() - 40


def test_front_end_float32_close_to_reference():
    rng = np.random.default_rng(1)
    signal = (0.3 * rng.standard_normal(CHUNK_SAMPLES)).astype(np.float32)
    ours = MelFrontEnd()(torch.from_numpy(signal[None]))[0].numpy()
    assert np.median(np.abs(ours - reference_mel_db(signal))) < 1e-3


def test_architecture_shapes_and_channels():
    model = ShortChunkCNN(n_channels=4)
    widths = [block[0].out_channels for block in model.blocks]
    assert widths == [4, 4, 8, 8, 8, 8, 16]
    assert model.dense1.in_features == model.dense1.out_features == 16
    model.eval()
    assert model(torch.zeros(3, CHUNK_SAMPLES)).shape == (3, 4)


def test_chunk_starts_cover_song():
    for n in (100, CHUNK_SAMPLES, CHUNK_SAMPLES + 1, 10 * CHUNK_SAMPLES + 5):
        starts = cnn.chunk_starts(n)
        covered = np.zeros(max(n, CHUNK_SAMPLES), bool)
        for s in starts:
            covered[s:s + CHUNK_SAMPLES] = True
        assert covered[:n].all()
        assert starts.max() + CHUNK_SAMPLES <= max(n, CHUNK_SAMPLES)


# --- training ----------------------------------------------------------------------------
def test_training_loss_falls(trained):
    member, log = trained
    losses = [row["train_loss"] for row in member.history_]
    assert len(losses) == 15
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:3])
    rows = log.read_text().splitlines()
    assert rows[0].startswith("epoch,stage,lr,train_loss,val_loss")
    assert len(rows) == 1 + 15


def test_schedule_switches_adam_to_sgd_on_plateau(songs, monkeypatch):
    ids, labels, audio = songs
    many_ids = ids + [f"x{s}" for s in ids]
    many = {**audio, **{f"x{s}": a for s, a in audio.items()}}
    member = tiny_member(n_channels=2, chunks_per_song=1, epochs=5, adam_patience=1, sgd_patience=1)
    worse_each_time = iter(range(100))
    monkeypatch.setattr(member, "_val_loss", lambda *args: float(next(worse_each_time)))
    member.fit_songs(many_ids, np.concatenate([labels, labels]), many)
    # Validation never improves after epoch 1, so from epoch 2 on each epoch ends with one
    # step along the schedule, and the next epoch trains in the new stage.
    stages = [row["stage"] for row in member.history_]
    assert stages == ["adam", "adam", "sgd_1", "sgd_2", "sgd_3"]
    np.testing.assert_allclose([row["lr"] for row in member.history_], [3e-3, 3e-3, 1e-3, 1e-4, 1e-5])
    assert member.best_epoch_ == 1


def test_update_single_quadrant_batch(trained, songs):
    member, _ = trained
    ids, labels, audio = songs
    before = {k: v.clone() for k, v in member.model_.state_dict().items()}
    member.update_songs(ids[:2], np.array([1, 1]), audio, epochs=2)
    member.update_songs(ids[:1], np.array([2]), audio, epochs=1)  # one song, one chunk
    after = member.model_.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # Batch norm statistics are frozen during fine-tuning.
    assert torch.equal(before["spec_bn.running_mean"], after["spec_bn.running_mean"])
    proba = member.predict_proba_songs(ids, audio)
    assert proba.shape == (len(ids), 4)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    member.model_.load_state_dict(before)  # leave the shared fixture as it was


def test_bad_labels_and_missing_audio(songs):
    ids, labels, audio = songs
    member = tiny_member(epochs=1)
    with pytest.raises(MERError, match="quadrant codes"):
        member.fit_songs(ids, labels + 1, audio)
    with pytest.raises(MERError, match="one quadrant per song"):
        member.fit_songs(ids, labels[:-1], audio)
    with pytest.raises(MERError, match="nosuchsong"):
        member.fit_songs(ids + ["nosuchsong"], np.append(labels, 0), audio)
    with pytest.raises(MERError, match="not trained"):
        member.predict_proba_songs(ids, audio)
    with pytest.raises(MERError, match="SongAudio"):
        member.predict_proba(np.zeros((2, 260)))


# --- alignment and persistence -----------------------------------------------------------
def test_shuffled_loader_keeps_song_alignment(trained, songs):
    member, _ = trained
    ids, _, audio = songs
    ordered = member.predict_proba_songs(ids, audio, shuffle=False)
    shuffled = member.predict_proba_songs(ids, audio, shuffle=True)
    one_by_one = np.vstack([member.predict_proba_songs([s], audio) for s in ids])
    # The songs get visibly different probabilities, so a misalignment would show.
    assert np.abs(one_by_one[:, None, :] - one_by_one[None, :, :]).sum(-1).max() > 0.05
    np.testing.assert_allclose(shuffled, one_by_one, atol=1e-6)
    np.testing.assert_allclose(ordered, one_by_one, atol=1e-6)
    reversed_ids = ids[::-1]
    np.testing.assert_allclose(member.predict_proba_songs(reversed_ids, audio, shuffle=True),
                               one_by_one[::-1], atol=1e-6)


def test_save_load_round_trip(trained, songs, tmp_path):
    member, _ = trained
    ids, _, audio = songs
    names = member.save(tmp_path / "cnn_0")
    assert sorted(names) == ["cnn_0.json", "cnn_0.pt"]
    meta = json.loads((tmp_path / "cnn_0.json").read_text())
    assert meta["algorithm"] == "cnn" and meta["hyperparameters"]["n_channels"] == 4
    loaded = CNNMember.load(tmp_path / "cnn_0", device="cpu")
    for key, value in member.model_.state_dict().items():
        assert torch.equal(value, loaded.model_.state_dict()[key]), key
    np.testing.assert_array_equal(loaded.predict_proba_songs(ids, audio),
                                  member.predict_proba_songs(ids, audio))
    assert loaded.algorithm == "cnn" and loaded.input_kind == "audio"


def test_load_refuses_bad_files(trained, tmp_path):
    member, _ = trained
    member.save(tmp_path / "m")
    (tmp_path / "m.pt").write_bytes(b"not a torch file")
    with pytest.raises(MERError, match="m.pt"):
        CNNMember.load(tmp_path / "m")
    (tmp_path / "m.json").write_text('{"algorithm": "xgb", "format": 1}')
    with pytest.raises(MERError, match="algorithm"):
        CNNMember.load(tmp_path / "m")


def test_predict_chunks(trained, songs):
    member, _, = trained
    _, _, audio = songs
    samples = audio["song06"]  # 7.2 s -> two chunks
    starts, proba = member.predict_chunks(samples)
    assert len(starts) == len(proba) == 2 and starts[0] == 0
    np.testing.assert_allclose(proba.sum(1), 1.0)


def test_pretrain_members_on_splits(songs, tmp_path):
    ids, labels, audio = songs
    splits = [(np.arange(0, 6), np.arange(6, 8)), (np.arange(2, 8), np.arange(0, 2))]
    results = cnn.pretrain_cnn_members(ids, labels, audio, splits, out_dir=tmp_path,
                                       n_channels=2, epochs=2, progress=False, device="cpu")
    assert [r["name"] for r in results] == ["cnn_0", "cnn_1"]
    from sklearn.metrics import accuracy_score, f1_score

    for r, (_, test) in zip(results, splits):
        assert r["n_train"] == 6 and r["n_test"] == 2
        # the reported scores are the member's own song-level predictions on its test songs
        truth = np.asarray(labels)[test]
        predicted = r["member"].predict_proba_songs([ids[i] for i in test], audio).argmax(axis=1)
        assert r["f1_macro"] == pytest.approx(f1_score(truth, predicted, average="macro", zero_division=0), abs=1e-12)
        assert r["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
        assert (tmp_path / f"{r['name']}.pt").exists()
        assert len((tmp_path / f"{r['name']}_log.csv").read_text().splitlines()) == 3
    window_ids = np.repeat(np.array(ids), 3)
    from_windows = cnn.song_splits_from_windows(window_ids, [(np.arange(0, 18), np.arange(18, 24))], ids)
    np.testing.assert_array_equal(from_windows[0][0], np.arange(6))
    np.testing.assert_array_equal(from_windows[0][1], [6, 7])
