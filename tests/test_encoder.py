"""The speech-encoder front end, SCAE/CPC pre-training, checkpoints and pretrain_encoder.py,
on generated audio (tones and noise written with soundfile)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trompa_mer import encoder as E
from trompa_mer import logmel
from trompa_mer.errors import MERError

ROOT = Path(__file__).resolve().parents[1]
SR = 16000

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tone(seconds: float, hz: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.4 * np.sin(2 * np.pi * hz * t) * (1 + 0.5 * np.sin(2 * np.pi * 1.5 * t))
            + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def write_folder(folder: Path, n: int, seconds: float = 3.0, sr: int = 22050) -> Path:
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        soundfile.write(folder / f"utt{i:02d}.wav", tone(seconds, 200 + 150 * i, seed=i, sr=sr), sr)
    return folder


# --- front end ------------------------------------------------------------------------------------
def test_front_end_matches_librosa():
    import librosa

    x = tone(2.3, 440.0)
    x = x / np.abs(x).max()
    ours = logmel.mel_magnitude(x)
    ref = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=2048, hop_length=512, win_length=1024,
                                         power=1.0, n_mels=128)  # centre, zero padding: defaults
    assert ours.shape == ref.shape == (128, 1 + len(x) // 512)
    assert np.max(np.abs(ours - ref)) <= 1e-4 * np.abs(ref).max()
    log_ref = np.log(np.maximum(ref, logmel.LOG_FLOOR))
    assert np.max(np.abs(logmel.logmel(x * 0.3) - log_ref)) < 1e-3  # peak-normalised inside


def test_patch_shapes_and_count():
    frames = logmel.logmel(tone(3.0, 300.0))  # 1 + 48000 // 512 = 94 frames
    assert frames.shape == (128, 94)
    starts = logmel.patch_starts(94)
    assert starts.tolist() == [0, 15, 30, 45, 60]  # 60 + 31 <= 94 < 75 + 31
    p = logmel.patches(tone(3.0, 300.0))
    assert p.shape == (5, 128, 31) and p.dtype == np.float32
    np.testing.assert_array_equal(p[2], frames[:, 30:61])
    short = logmel.patches(tone(0.5, 300.0))  # 16 frames: one patch, padded with the log floor
    assert short.shape == (1, 128, 31)
    assert np.all(short[0, :, 16:] == np.float32(np.log(logmel.LOG_FLOOR)))


def test_network_shapes():
    x = torch.randn(3, 128, 31)
    for method, width, dim in (("scae", 2, 4 * 2 * 2 * 31), ("cpc", 2, 256)):
        enc = E.PatchEncoder(method, width).eval()
        assert enc(x).shape == (3, dim) and enc.embed_dim == dim
    scae = E.SCAE(2).eval()
    assert scae.decoder(scae.encoder.conv(scae.encoder.normalise(x))).shape == (3, 1, 128, 31)


# --- training -----------------------------------------------------------------------------------
def stream(seconds=40.0):
    return np.concatenate([logmel.logmel(tone(seconds / 4, 200 + 100 * i, seed=i)) for i in range(4)], axis=1)


@pytest.mark.parametrize("method", ["scae", "cpc"])
def test_loss_falls_over_a_few_steps(method):
    frames = stream()
    mean, std = logmel.band_stats(frames)
    torch.manual_seed(0)
    model = E.make_model(method, 4, mean, std)
    optimizer = torch.optim.Adam(model.parameters(), lr=E.LR, amsgrad=True)
    starts = E.patch_grid(frames.shape[1])[:16] if method == "scae" else E.sequence_starts(frames.shape[1])[::6][:8]
    batch = E._batch(method, frames, starts, "cpu")
    model.train()
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = model.loss(batch, torch.Generator().manual_seed(1))
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.85 * losses[0], losses


def test_cpc_negatives_are_other_sequences():
    """With identical embeddings for every candidate the loss is log(batch): no positive leaks."""
    model = E.CPC(2).eval()
    for p in model.predictors:
        torch.nn.init.zeros_(p.weight)
        torch.nn.init.zeros_(p.bias)
    seq = torch.randn(5, 6, 128, 31)
    with torch.no_grad():
        assert abs(float(model.loss(seq)) - np.log(5)) < 1e-5


def test_save_load_identical_outputs(tmp_path):
    frames = stream()
    enc, manifest = E.pretrain("cpc", frames, frames[:, :200], tmp_path / "enc", width=2, epochs=1,
                               batch_size=4, seed=3, progress=False, max_batches=2)
    loaded, manifest2 = E.load_encoder(tmp_path / "enc")
    x = torch.from_numpy(logmel.take_patches(frames, [0, 15, 30]))
    with torch.no_grad():
        torch.testing.assert_close(enc.eval()(x), loaded(x), rtol=0, atol=0)
    assert manifest2["method"] == "cpc" and manifest2["width"] == 2
    assert len(manifest2["normalisation"]["mean"]) == 128
    assert manifest2["front_end"]["n_fft"] == 2048 and manifest2["front_end"]["patch_frames"] == 31
    # a changed weights file is refused before it is read
    weights = tmp_path / "enc" / "encoder.pt"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(MERError, match="encoder.pt"):
        E.load_encoder(tmp_path / "enc")


def test_resume_matches_uninterrupted_run(tmp_path):
    frames = stream()
    held = frames[:, :150]
    kwargs = dict(width=2, batch_size=8, seed=5, progress=False, max_batches=3)
    full, _ = E.pretrain("scae", frames, held, tmp_path / "full", epochs=3, **kwargs)
    # interrupted after epoch 2, then the same call with 3 epochs resumes
    E.pretrain("scae", frames, held, tmp_path / "cut", epochs=2, **kwargs)
    state = torch.load(tmp_path / "cut" / E.CHECKPOINT, weights_only=True)
    assert state["epoch"] == 2
    resumed, _ = E.pretrain("scae", frames, held, tmp_path / "cut", epochs=3, **kwargs)
    log_full = (tmp_path / "full" / "log.csv").read_text().splitlines()
    log_cut = (tmp_path / "cut" / "log.csv").read_text().splitlines()
    assert len(log_cut) == 4 and [r.split(",")[:3] for r in log_cut] == [r.split(",")[:3] for r in log_full]
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    # another configuration refuses to resume, naming what changed
    with pytest.raises(MERError, match="cannot resume.*seed"):
        E.pretrain("scae", frames, held, tmp_path / "cut", epochs=4, **{**kwargs, "seed": 6})
    with pytest.raises(MERError, match="fewer"):
        E.pretrain("scae", frames, held, tmp_path / "cut", epochs=1, **kwargs)


def test_bad_arguments():
    frames = stream(8.0)
    with pytest.raises(MERError, match="method"):
        E.pretrain("vae", frames, frames, "unused")
    with pytest.raises(MERError, match="width"):
        E.PatchEncoder("scae", 0)
    with pytest.raises(MERError, match="too short"):
        E.pretrain("cpc", frames[:, :100], frames[:, :0], "unused")


# --- the script ------------------------------------------------------------------------------------
def run(args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "pretrain_encoder.py"), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def test_cli_end_to_end_mixture_and_resume(tmp_path):
    en = write_folder(tmp_path / "english", 6)
    zh = write_folder(tmp_path / "mandarin", 4, seconds=4.0)
    out = tmp_path / "out"

    def args(epochs, seed=1):
        return ["--method", "scae", "--audio", en, "--audio", zh, "--max-files-per-folder", 3,
                "--width", 2, "--epochs", epochs, "--seed", seed, "--out", out,
                "--cache-dir", tmp_path / "cache", "--quiet"]

    first = run(args(2), tmp_path)
    assert first.returncode == 0, first.stderr
    manifest = json.loads((out / "encoder.json").read_text())
    assert manifest["method"] == "scae" and manifest["command"].startswith("python pretrain_encoder.py --method scae")
    folders = manifest["data"]["folders"]
    assert [f["files_train"] + f["files_heldout"] for f in folders] == [3, 3]
    assert all(f["files_heldout"] == 1 for f in folders)
    assert len((out / "log.csv").read_text().splitlines()) == 3
    assert list((tmp_path / "cache").glob("logmel-english-*.npy"))
    # more epochs: resumes after epoch 2
    again = run(args(3), tmp_path)
    assert again.returncode == 0, again.stderr
    assert [line.split(",")[0] for line in (out / "log.csv").read_text().splitlines()] == ["epoch", "1", "2", "3"]
    E.load_encoder(out)
    # a changed command refuses to resume
    changed = run(args(3, seed=2), tmp_path)
    assert changed.returncode == 1 and "cannot resume" in changed.stderr


@pytest.mark.parametrize("case", ["empty", "no-audio", "method", "width", "damaged"])
def test_cli_bad_input_is_one_line(tmp_path, case):
    folder = tmp_path / "audio"
    folder.mkdir()
    args = ["--method", "scae", "--audio", folder, "--width", 2, "--epochs", 1, "--out", tmp_path / "out",
            "--cache-dir", tmp_path / "cache", "--quiet"]
    if case == "no-audio":
        (folder / "notes.txt").write_text("not audio")
    elif case in ("method", "width"):
        write_folder(folder, 2)
        args[args.index("scae" if case == "method" else 2)] = "vae" if case == "method" else 0
    elif case == "damaged":
        write_folder(folder, 2)
        (folder / "utt00.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    result = run(args, tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    expected = {"empty": "no audio files", "no-audio": "no audio files", "method": "method",
                "width": "width", "damaged": "utt00.wav"}[case]
    assert expected in lines[0]


def test_damaged_encoder_manifest_is_refused(tmp_path):
    frames = stream(12.0)
    E.pretrain("scae", frames, frames[:, :0], tmp_path / "enc", width=1, epochs=1, progress=False, max_batches=1)
    manifest = json.loads((tmp_path / "enc" / "encoder.json").read_text())
    manifest["width"] = 3
    (tmp_path / "enc" / "encoder.json").write_text(json.dumps(manifest))
    with pytest.raises(MERError, match="width 3"):
        E.load_encoder(tmp_path / "enc")
    (tmp_path / "enc" / "encoder.pt").unlink()
    with pytest.raises(MERError, match="encoder.pt"):
        E.load_encoder(tmp_path / "enc")
