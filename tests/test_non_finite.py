"""Issue 23, item 4: one non-finite audio sample, cached frame, loss or weight is refused at
the boundary where it would enter (decoding, the 16 kHz and log-mel caches, training loops,
saving, loading an encoder, prediction), with one `error:` line, and nothing is saved."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import one_error
from test_encoder import stream, write_folder
from trompa_mer import checksummed
from trompa_mer import encoder as E
from trompa_mer import finite
from trompa_mer.errors import MERError

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def one_warning_naming(result, name):
    """Exit 0 with exactly one `warning:` line, naming `name` (a damaged cache recomputed)."""
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and name in lines[0], lines


def script(name, args, env=None, cwd=None):
    return subprocess.run([sys.executable, str(ROOT / name), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def poison_wav(path: Path, value: float, at: int = 1000) -> None:
    import soundfile

    samples, rate = soundfile.read(path, dtype="float32")
    samples[at] = value
    soundfile.write(path, samples, rate, subtype="FLOAT")


def pretrain_args(folder, out, cache):
    return ["--method", "scae", "--audio", folder, "--width", 2, "--epochs", 1, "--out", out,
            "--cache-dir", cache, "--quiet"]


# --- audio decoding ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_pretrain_encoder_refuses_a_non_finite_sample(tmp_path, value):
    folder = write_folder(tmp_path / "audio", 3)
    poison_wav(folder / "utt01.wav", value)
    result = script("pretrain_encoder.py", pretrain_args(folder, tmp_path / "out", tmp_path / "cache"), cwd=tmp_path)
    one_error(result, "utt01.wav", "non-finite samples", "at sample 1000")
    assert not (tmp_path / "out").exists()


def test_extract_features_refuses_a_non_finite_sample(tmp_path):
    folder = write_folder(tmp_path / "audio", 1)
    poison_wav(folder / "utt00.wav", np.nan)
    result = script("extract_features.py", ["-i", folder / "utt00.wav", "-o", tmp_path / "f.csv"], cwd=tmp_path)
    one_error(result, "utt00.wav", "non-finite samples")
    assert not (tmp_path / "f.csv").exists()


def test_caches_holding_nan_are_never_trained_on(tmp_path):
    """A 16 kHz cache file and a log-mel cache edited to hold NaN after they were written no
    longer match the checksums recorded with them (issue 23 item 6): each is one warning, is
    not used, and is computed again from the (finite) audio; nothing non-finite is trained on.
    (A cache that matches its record yet holds NaN is refused when read: the in-process test
    below.)"""
    folder = write_folder(tmp_path / "audio", 3)
    cache = tmp_path / "cache"
    first = script("pretrain_encoder.py", pretrain_args(folder, tmp_path / "out1", cache), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    # the log-mel cache
    (frames_path,) = cache.glob("logmel-audio-*.npy")
    frames = np.load(frames_path)
    index = json.loads(frames_path.with_suffix(".json").read_text())
    frames[5, index["offsets"][1] + 3] = np.nan       # inside the second file (utt01)
    np.save(frames_path, frames)
    result = script("pretrain_encoder.py", pretrain_args(folder, tmp_path / "out2", cache), cwd=tmp_path)
    one_warning_naming(result, frames_path.name)
    assert np.isfinite(np.load(frames_path)).all()
    # the 16 kHz cache (the log-mel cache removed, so it is rebuilt from it)
    frames_path.unlink()
    (npy,) = (cache / "audio16k-audio").glob("utt02-*.npy")
    samples = np.load(npy)
    samples[10] = np.inf
    np.save(npy, samples)
    result = script("pretrain_encoder.py", pretrain_args(folder, tmp_path / "out3", cache), cwd=tmp_path)
    one_warning_naming(result, npy.name)
    assert np.isfinite(np.load(npy)).all()


# --- training loops ---------------------------------------------------------------------------
def test_a_diverging_pre_training_stops_and_saves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(E, "LR", 1e30)
    frames = stream(12.0)
    with pytest.raises(MERError, match=r"pre-training epoch 1: the training loss became (nan|inf)|"
                                       r"pre-training epoch 1: weights .* non-finite"):
        E.pretrain("scae", frames, frames[:, :0], tmp_path / "enc", width=1, epochs=2, progress=False,
                   batch_size=4, max_batches=4)
    assert not any((tmp_path / "enc").iterdir())


def test_loss_check_names_the_loop():
    assert finite.check_loss(0.5, "x") == 0.5
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(MERError, match="cnn member: the training loss became"):
            finite.check_loss(bad, "cnn member")


def test_encoder_member_heads_diverging_stop():
    from trompa_mer.transfer import EncoderMember

    frames = stream(12.0)
    mean, std = E.logmel.band_stats(frames)
    member = EncoderMember(E.PatchEncoder("scae", 1, mean, std).eval(), epochs=3, lr=1e30, device="cpu")
    patches = [E.logmel.take_patches(frames, E.patch_grid(frames.shape[1])[i::4]) for i in range(4)]
    with pytest.raises(MERError, match="encoder member \\(dense layers and heads\\): the training loss became"):
        member.fit_patches(patches, np.arange(4))


# --- saving -----------------------------------------------------------------------------------
def _features(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    y = np.arange(n) % 4
    X[:, 0] += y
    return X, y


@pytest.mark.parametrize("algorithm,attribute", [("gnb", "theta_"), ("sgd", "coef_"), ("sgd-av", "coef_")])
def test_committee_save_refuses_non_finite_member_weights(tmp_path, algorithm, attribute):
    from trompa_mer.committee import Committee, Standardizer
    from trompa_mer.quadrants import Labels, quadrant_from_av
    from trompa_mer.registry import member_class

    X, y = _features()
    member = member_class(algorithm)()
    if algorithm == "sgd-av":
        av = np.stack([np.where(y < 2, 0.5, -0.5), np.where(y % 3 == 0, 0.5, -0.5)], axis=1)
        member.fit(X, Labels(quadrant_from_av(av[:, 0], av[:, 1]), av))
        model = member.model.estimators_[1]
    else:
        member.fit(X, y)
        model = member.model
    getattr(model, attribute)[..., 0] = np.nan
    committee = Committee([(f"{algorithm}_0", member)], Standardizer(np.zeros(6), np.ones(6)),
                          [f"f{i}" for i in range(6)], {})
    with pytest.raises(MERError, match=f"{algorithm}_0.*weights .*{attribute}.* non-finite"):
        committee.save(tmp_path / "committee")
    assert not (tmp_path / "committee").exists()
    assert not list(tmp_path.iterdir())


def test_torch_members_refuse_non_finite_weights_on_save(tmp_path):
    from trompa_mer.cnn import CNNMember, ShortChunkCNN
    from trompa_mer.transfer import EncoderMember

    encoder_member = EncoderMember(E.PatchEncoder("scae", 1), device="cpu")
    with torch.no_grad():
        next(encoder_member.net_.heads.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(MERError, match="enc.pt: weights .* non-finite"):
        encoder_member.save(tmp_path / "enc")
    cnn = CNNMember(n_channels=2, device="cpu")
    cnn.model_ = ShortChunkCNN(2)
    with torch.no_grad():
        next(cnn.model_.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(MERError, match="cnn.pt: weights .* non-finite"):
        cnn.save(tmp_path / "cnn")
    assert not list(tmp_path.iterdir())


# --- loading and using ------------------------------------------------------------------------
def _nan_encoder(folder: Path) -> None:
    """An encoder folder whose weights hold a NaN and whose manifest checksums match them
    (what pretrain_encoder.py wrote before the loss check)."""
    weights = folder / E.WEIGHTS
    state = torch.load(weights, weights_only=True)
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel())
    state[name].view(-1)[0] = float("nan")
    torch.save(state, weights)
    manifest = json.loads((folder / E.MANIFEST).read_text())
    manifest["checksums"][E.WEIGHTS] = checksummed.sha256_file(weights)
    (folder / E.MANIFEST).write_text(json.dumps(manifest))


def test_an_encoder_with_nan_weights_is_refused_on_load(tmp_path):
    frames = stream(12.0)
    E.pretrain("scae", frames, frames[:, :0], tmp_path / "enc", width=1, epochs=1, progress=False, max_batches=1)
    E.load_encoder(tmp_path / "enc")
    _nan_encoder(tmp_path / "enc")
    with pytest.raises(MERError, match="encoder.pt: weights .* non-finite"):
        E.load_encoder(tmp_path / "enc")


def test_deam_classifier_refuses_an_encoder_with_nan_weights(tmp_path, script_env):
    """The path by which a NaN committee used to be saved: deam_classifier.py --encoder on an
    encoder pre-trained on a poisoned file. Exit 1, one line, no committee folder."""
    import soundfile

    from test_deam_encoder import TICKS, TONES
    from trompa_mer.datasets import emotify

    root = tmp_path / "emotify"
    (root / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = ["track id, genre, " + ", ".join(emotify.GEMS) + ", mood, liked"]
    for track in range(1, 9):
        q = track % 4
        t = np.arange(int(2.5 * 16000)) / 16000
        clip = (0.4 * np.sin(2 * np.pi * TONES[q] * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
        soundfile.write(root / "audio" / f"{track}.wav", clip, 16000)
        for _ in range(2):
            lines.append(f"{track}, pop, " + ", ".join("1" if g in TICKS[q] else "0" for g in emotify.GEMS) + ", 3, 1")
    (root / "annotations.csv").write_text("\n".join(lines) + "\n")
    frames = stream(12.0)
    E.pretrain("scae", frames, frames[:, :0], tmp_path / "enc", width=1, epochs=1, progress=False, max_batches=1)
    _nan_encoder(tmp_path / "enc")
    env = dict(script_env, MER_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    result = script("deam_classifier.py", ["--emotify", root, "--cache-dir", tmp_path / "cache", "-m", "gnb",
                                           "-cv", 2, "--test-size", 0.25, "-o", tmp_path / "committee",
                                           "--encoder", tmp_path / "enc", "--encoder-epochs", 1, "--quiet"],
                    env=env, cwd=tmp_path)
    one_error(result, "encoder.pt: weights", "non-finite")
    assert not (tmp_path / "committee").exists()


def _committee_with_a_nan_member(tmp_path, monkeypatch, algorithm="sgd"):
    """A committee folder (saved with the save check switched off, as before the fix) whose
    member sgd_1 has a NaN weight; and a feature CSV to predict."""
    from trompa_mer import members
    from trompa_mer.committee import Committee
    from trompa_mer.features import FEATURE_NAMES, write_feature_csv
    from trompa_mer.registry import member_class

    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, len(FEATURE_NAMES))).astype(np.float32)
    y = np.arange(80) % 4
    X[:, 0] += y
    good, bad = member_class(algorithm)().fit(X, y), member_class(algorithm)().fit(X, y)
    bad.model.coef_[1, 0] = np.nan
    from sklearn.preprocessing import StandardScaler

    committee = Committee([(f"{algorithm}_0", good), (f"{algorithm}_1", bad)], StandardScaler().fit(X),
                          list(FEATURE_NAMES), {})
    with monkeypatch.context() as patch:
        patch.setattr(members, "check_arrays", lambda *a, **k: None)
        committee.save(tmp_path / "committee")
    table = pd.DataFrame(rng.normal(size=(4, len(FEATURE_NAMES))), columns=FEATURE_NAMES)
    table.insert(0, "frameTime", np.arange(4) * 0.5)
    write_feature_csv(table, tmp_path / "song.csv")
    return tmp_path / "committee", tmp_path / "song.csv"


@pytest.mark.parametrize("weights_array", [True, False], ids=["weights-array", "written-before-it"])
def test_predict_emotion_refuses_a_member_with_nan_weights(tmp_path, monkeypatch, script_env, weights_array):
    """Refused when its weights array is read (the folder's format since 2026-12-05), or, for a
    member saved before the array existed, when its NaN output is seen."""
    committee, song = _committee_with_a_nan_member(tmp_path, monkeypatch)
    if not weights_array:
        manifest = json.loads((committee / "committee.json").read_text())
        for entry in manifest["members"]:
            for name in [f for f in entry["files"] if f.endswith(".linear.npy")]:
                entry["files"].remove(name)
                del manifest["checksums"][name]
                (committee / name).unlink()
        (committee / "committee.json").write_text(json.dumps(manifest))
    result = script("predict_emotion.py", ["-i", song, "-o", tmp_path / "out.json", "-m", committee],
                    env=script_env, cwd=tmp_path)
    line = one_error(result, "sgd_1.linear.npy: weights must be finite" if weights_array
                     else "sgd member: non-finite output (NaN)")
    assert "nan" not in result.stdout.lower() and "Q1=" not in result.stdout, line
    assert not (tmp_path / "out.json").exists()


def test_prediction_refuses_non_finite_audio_member_probabilities():
    proba = np.full((2, 3, 4), 0.25)
    assert finite.check_proba(proba, ["a", "b"], "in.wav") is proba
    proba[1, 2, 0] = np.nan
    with pytest.raises(MERError, match="in.wav: member b gives non-finite probabilities"):
        finite.check_proba(proba, ["a", "b"], "in.wav")


def test_first_non_finite_and_check_arrays():
    assert finite.first_non_finite(np.array([1.0, 2.0])) is None
    assert finite.first_non_finite(np.array([[1.0, np.inf], [np.nan, 0]])) == 1
    assert finite.first_non_finite(np.array([1, 2])) is None   # integers are finite
    from sklearn.linear_model import SGDRegressor
    from sklearn.multioutput import MultiOutputRegressor

    model = MultiOutputRegressor(SGDRegressor(max_iter=5, tol=None)).fit(np.eye(4), np.eye(4)[:, :2])
    finite.check_arrays(model, "m")
    model.estimators_[1].intercept_[0] = np.inf
    with pytest.raises(MERError, match=r"m: weights 'estimators_\[1\].intercept_' hold non-finite"):
        finite.check_arrays(model, "m")


def test_predict_emotion_refuses_an_audio_member_with_nan_probabilities(tmp_path, monkeypatch, script_env):
    """An encoder member whose heads hold a NaN (saved before the check): predict_emotion on an
    audio file used to print `Q1 (Q1=nan ...)`; now exit 1 naming the member, no JSON."""
    import soundfile
    from sklearn.preprocessing import StandardScaler

    from test_encoder import tone
    from trompa_mer import transfer
    from trompa_mer.committee import Committee
    from trompa_mer.features import FEATURE_NAMES
    from trompa_mer.members import make_member

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, len(FEATURE_NAMES))).astype(np.float32)
    y = np.arange(40) % 4
    X[:, 0] += y
    scaler = StandardScaler().fit(X)
    gnb = make_member("gnb")
    gnb.fit(((X - scaler.mean_) / scaler.scale_).astype(np.float32), y)
    member = transfer.EncoderMember(E.PatchEncoder("scae", 1), device="cpu")
    with torch.no_grad():
        member.net_.heads.quadrant.bias[0] = float("nan")
    with monkeypatch.context() as patch:
        patch.setattr(transfer, "check_tensors", lambda state, where: state)
        Committee([("gnb_0", gnb), ("encoder_0", member)], scaler, list(FEATURE_NAMES), {}).save(tmp_path / "committee")
    soundfile.write(tmp_path / "song.wav", tone(2.5, 440.0), 16000)
    env = dict(script_env, MER_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    result = script("predict_emotion.py", ["-i", tmp_path / "song.wav", "-o", tmp_path / "out.json",
                                           "-m", tmp_path / "committee"], env=env, cwd=tmp_path)
    one_error(result, "song.wav: member encoder_0 gives non-finite probabilities")
    assert "nan" not in result.stdout.lower()
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("cell", ["inf", "-inf", "nan", ""])
def test_feature_csvs_with_non_finite_cells(tmp_path, script_env, cell):
    """The pool leaves such a CSV out with a warning naming it; predict_emotion refuses it."""
    from trompa_mer import pool as P
    from trompa_mer.errors import MERWarning
    from trompa_mer.features import FEATURE_NAMES, write_feature_csv

    rng = np.random.default_rng(1)
    folder = tmp_path / "feats"
    folder.mkdir()
    for song in ("good", "bad"):
        table = pd.DataFrame(rng.normal(size=(3, len(FEATURE_NAMES))), columns=FEATURE_NAMES)
        table.insert(0, "frameTime", np.arange(3) * 0.5)
        write_feature_csv(table, folder / f"{song}.csv")
    lines = (folder / "bad.csv").read_text().splitlines()
    cells = lines[2].split(";")
    cells[5] = cell
    lines[2] = ";".join(cells)
    (folder / "bad.csv").write_text("\n".join(lines) + "\n")
    with pytest.warns(MERWarning, match=rf"bad.csv: skipped, not a readable feature CSV \(column '{FEATURE_NAMES[4]}' holds empty or non-finite values\)"):
        pool = P.load_pool(folder, cache=False)
    assert pool.song_ids.tolist() == ["good"]
    result = script("predict_emotion.py", ["-i", folder / "bad.csv", "-o", tmp_path / "out.json"],
                    env=script_env, cwd=tmp_path)
    one_error(result, "bad.csv: column", "holds empty or non-finite values")
    assert not (tmp_path / "out.json").exists()


# --- the checks' exact messages and edges (mutation target "finite") -------------------------
def test_check_messages_in_full(tmp_path):
    with pytest.raises(MERError, match=r"^cnn member: the training loss became nan; training stopped and nothing "
                                       r"was saved \(non-finite input or a diverging learning rate\)$"):
        finite.check_loss(float("nan"), "cnn member")
    proba = np.full((2, 1, 4), 0.25)
    proba[1, 0, 2] = np.inf
    with pytest.raises(MERError, match=r"^x.wav: member b gives non-finite probabilities \(NaN\); its weights are "
                                       r"not finite \(rebuild the committee or the member\)$"):
        finite.check_proba(proba, ["a", "b"], "x.wav")
    with pytest.raises(MERError, match=r"^x.wav: non-finite probabilities \(NaN\)$"):
        finite.check_proba(proba, ["a"], "x.wav")            # a row no name covers
    with pytest.raises(MERError, match=r"^m.pt: weights 'w' hold non-finite values \(NaN or infinity\); "
                                       r"refusing to save or use them$"):
        finite.check_tensors({"n": torch.tensor([1, 2]), "extra": "text", "e": torch.zeros(0),
                              "w": torch.tensor([0.0, float("-inf")])}, "m.pt")
    state = {"n": torch.tensor([1, 2]), "extra": None, "e": torch.zeros(0), "w": torch.ones(2)}
    assert finite.check_tensors(state, "m.pt") is state
    with pytest.raises(MERError, match=r"^m: weights 'array' hold non-finite values \(NaN or infinity\); "
                                       r"refusing to save or use them$"):
        finite.check_arrays(np.array([1.0, np.nan]), "m")
    with pytest.raises(MERError, match=r"^a.wav: audio holds non-finite samples \(first: inf at sample 2 of 4\); "
                                       r"expected finite audio \(re-export or remove the file\)$"):
        finite.check_samples(np.array([0.0, 0.1, np.inf, np.nan], dtype=np.float32), "a.wav")
    samples = np.zeros(3, np.float32)
    assert finite.check_samples(samples, "a.wav") is samples


def test_first_non_finite_edges():
    assert finite.first_non_finite(np.array(["a", "b"])) is None        # not numbers: nothing to check
    assert finite.first_non_finite(np.array([None, 1.0], dtype=object)) is None
    assert finite.first_non_finite(np.zeros(0)) is None
    assert finite.first_non_finite([np.nan]) == 0
    assert finite.first_non_finite(np.array([1 + 1j, complex(np.inf, 0)])) == 1


def test_check_arrays_walks_lists_floats_and_fitted_attributes():
    from sklearn.naive_bayes import GaussianNB

    model = GaussianNB().fit(np.eye(4), [0, 1, 2, 3])
    finite.check_arrays([model, np.ones(2), 1.5, "text", None], "m")
    model.epsilon_ = float("nan")                                       # a float attribute
    with pytest.raises(MERError, match=r"m: weights '\[0\].epsilon_' hold"):
        finite.check_arrays([model], "m")
    with pytest.raises(MERError, match=r"m: weights '\[1\]\[0\]' hold"):
        finite.check_arrays([1.0, (np.float64(np.inf),)], "m")
    model = GaussianNB().fit(np.eye(4), [0, 1, 2, 3])
    model.not_fitted = np.array([np.nan])                               # not a fitted attribute: ignored
    finite.check_arrays(model, "m")


def test_decoding_checks_samples_and_the_cache_reads(tmp_path):
    """In process: decode_resampled and AudioCache refuse non-finite samples, naming the file."""
    from trompa_mer.audio_cache import AudioCache, decode_resampled

    folder = write_folder(tmp_path / "audio", 2)
    assert np.isfinite(decode_resampled(folder / "utt00.wav")).all()
    poison_wav(folder / "utt01.wav", np.inf, at=7)
    with pytest.raises(MERError, match=r"utt01.wav: audio holds non-finite samples \(first: inf at sample 7 of"):
        decode_resampled(folder / "utt01.wav")
    # an entry that matches its record yet holds NaN (as a version without the decoding check
    # would have written it): refused when read
    from trompa_mer import audio_cache

    samples = decode_resampled(folder / "utt00.wav")
    real = audio_cache.decode_resampled
    audio_cache.decode_resampled = lambda *a, **k: np.concatenate([samples[:3], [np.nan]]).astype(np.float32)
    try:
        AudioCache.from_folder(folder, tmp_path / "cache").prepare(["utt00"])
    finally:
        audio_cache.decode_resampled = real
    with pytest.raises(MERError, match=r"utt00-\w+.npy \(16 kHz cache of .*utt00.wav\): audio holds non-finite "
                                       r"samples \(first: nan at sample 3 of 4\)"):
        AudioCache.from_folder(folder, tmp_path / "cache")["utt00"]     # another process, say
    # checked once per cache file: a second read of an unchanged file does not scan it again
    good = AudioCache.from_folder(folder, tmp_path / "cache2")
    good["utt00"]
    assert len(good._checked) == 1
    good["utt00"]
    assert len(good._checked) == 1


def test_encoder_member_fine_tuning_and_cnn_diverging_stop():
    """The other two training loops: an encoder member's fine-tuning and the CNN (adam lr 1e30)."""
    from test_encoder import tone
    from trompa_mer.cnn import CNNMember
    from trompa_mer.transfer import EncoderMember

    frames = stream(12.0)
    mean, std = E.logmel.band_stats(frames)
    member = EncoderMember(E.PatchEncoder("scae", 1, mean, std).eval(), transfer="full", epochs=1, full_epochs=2,
                           full_lr=1e30, batch_size=4, patches_per_song=4, device="cpu")
    patches = [E.logmel.take_patches(frames, E.patch_grid(frames.shape[1])[i::4]) for i in range(4)]
    with pytest.raises(MERError, match=r"encoder member \(fine-tuning\): the training loss became"):
        member.fit_patches(patches, np.arange(4))
    audio = {f"s{i}": tone(4.0, 200.0 + 300 * i, seed=i) for i in range(4)}
    cnn = CNNMember(n_channels=2, epochs=3, batch_size=2, adam_lr=1e30, chunks_per_song=2, val_fraction=0.0,
                    device="cpu", progress=False)
    with pytest.raises(MERError, match=r"^cnn member: the training loss became"):
        cnn.fit_songs(list(audio), np.arange(4), audio)
