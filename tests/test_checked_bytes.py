"""Issue 23 item 3: a file is read once, hashed, and built from those same bytes.

A committee's files (in its folder or in the users' shared store) were hashed by
checksummed.read_files and then opened again by each member's loader: a file replaced in
between (another process writing a blob, an attacker racing the check) was used unchecked,
and the prediction changed with exit 0. These tests swap every file of the committee for a
valid file of another committee right after the checksums were verified (a deterministic
stand-in for the race) and require the answer of the verified files."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from test_loop_support import TEST_USER, build_committee, call_ok, loop_assets, loop_env  # noqa: F401
from trompa_mer import checksummed


def _physical_files(directory: Path, manifest: dict) -> dict:
    """{listed file name: the path holding its bytes on disk} (a blob for a stored file)."""
    stored = manifest.get("stored") or {}
    out = {}
    for name in manifest["checksums"]:
        spec = stored.get(name)
        if spec is None:
            out[name] = directory / name
        elif "part" not in spec:
            out[name] = checksummed._store_dir(directory, manifest, directory / "m") / spec["blob"]
        else:
            out[name] = directory / spec["part"]
    return out


def _swap_after_check(monkeypatch, other: Path, swapped: list):
    """After read_files has verified a folder, replace each of its files on disk by the file of
    the same name in `other` (renamed into place, as a concurrent writer would)."""
    real = checksummed.read_files

    def read_then_swap(directory, manifest, manifest_path, what, contents=None):
        result = real(directory, manifest, manifest_path, what, contents)
        for name, path in _physical_files(Path(directory), manifest).items():
            replacement = other / name
            if replacement.is_file() and path.is_file() and replacement.read_bytes() != path.read_bytes():
                tmp = path.with_name(path.name + ".swap")
                shutil.copyfile(replacement, tmp)
                os.replace(tmp, path)
                swapped.append(name)
        return result

    monkeypatch.setattr(checksummed, "read_files", read_then_swap)


def _backup(paths):
    return {p: p.read_bytes() for p in paths}


def _restore(saved):
    for path, data in saved.items():
        path.write_bytes(data)


@pytest.fixture
def other_committee(tmp_path):
    """A valid committee with the same member names and other weights."""
    folder = tmp_path / "other"
    build_committee(folder, seed=7)
    return folder


@pytest.mark.parametrize("target", ["default", "user"])
def test_a_file_swapped_after_its_check_is_not_used(loop_env, other_committee, monkeypatch, target):
    env = loop_env
    one = sorted(env["feats"].glob("*.csv"))[0]
    args = ["-m", "default"] if target == "default" else ["-u", TEST_USER]
    if target == "user":
        call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    call_ok(env, "predict_emotion.py", "-i", one, "-o", env["dir"] / "expected.json", *args)
    expected = json.loads((env["dir"] / "expected.json").read_text())
    # the other committee really predicts differently (or the test would prove nothing)
    call_ok(dict(env, env=dict(env["env"], MER_PRETRAINED_DIR=str(other_committee))),
            "predict_emotion.py", "-i", one, "-o", env["dir"] / "other.json", "-m", "default")
    assert json.loads((env["dir"] / "other.json").read_text())["mean_probs"] != expected["mean_probs"]

    files = [p for p in env["dir"].rglob("*") if p.is_file() and "feats" not in p.parts]
    saved = _backup(files)
    swapped = []
    _swap_after_check(monkeypatch, other_committee, swapped)
    result = call_ok(env, "predict_emotion.py", "-i", one, "-o", env["dir"] / "raced.json", *args)
    monkeypatch.undo()
    _restore(saved)
    assert {"gnb_0.skops", "sgd_0.skops", "sgd_0.linear.npy", "xgb_0.ubj", "scaler.npy"} <= set(swapped), swapped
    raced = json.loads((env["dir"] / "raced.json").read_text())
    assert raced["mean_probs"] == expected["mean_probs"]
    assert raced["member_mean_probs"] == expected["member_mean_probs"]
    assert raced["output_probs"] == expected["output_probs"]
    assert result.stderr == ""


# --- the class: every member kind, a folder or the shared store, the encoder folder --------
SR = 16000


def _every_kind_committee(folder: Path, seed: int):
    """gnb, sgd, xgb, sgd-av, xgb-av and a tiny CNN (torch state dict) in one saved committee."""
    import torch

    from trompa_mer.cnn import CNNMember
    from trompa_mer.committee import Committee
    from trompa_mer.examples import train_committee

    rng = np.random.default_rng(seed)
    n_songs, per_song, n_feat = 6, 4, 5
    song_of_window = np.repeat(np.arange(n_songs), per_song)
    labels = np.arange(n_songs) % 4
    X = rng.normal(size=(len(song_of_window), n_feat)).astype(np.float32) + labels[song_of_window, None]
    av = np.clip(rng.normal(scale=0.4, size=(len(X), 2)), -1, 1).astype(np.float32)
    from trompa_mer.quadrants import quadrant_from_av
    y = quadrant_from_av(av[:, 0], av[:, 1])
    names = [f"f{i}" for i in range(n_feat)]
    base = train_committee(X, y, folder.with_name(folder.name + "-base"), algorithms=("gnb", "sgd", "xgb", "sgd-av", "xgb-av"),
                           xgb_rounds=3, feature_names=names, av=av, seed=seed)
    song_ids = [f"s{i}" for i in range(n_songs)]
    audio = {s: rng.normal(scale=0.3, size=SR * 2).astype(np.float32) for s in song_ids}
    torch.manual_seed(seed)
    cnn = CNNMember(n_channels=2, epochs=1, batch_size=4, progress=False, device="cpu", seed=seed)
    cnn.fit_songs(song_ids, labels, audio)
    committee = Committee(base.members + [("cnn_0", cnn)], base.scaler, names, {"corpus": "generated"})
    committee.save(folder)
    return X, song_of_window, song_ids, audio


def _proba(committee, X, sow, song_ids, audio):
    from trompa_mer.committee import Songs

    return committee.song_proba(Songs.from_windows(X, sow, song_ids, audio=audio))


@pytest.mark.parametrize("shared", [False, True])
def test_every_member_kind_is_built_from_the_verified_bytes(tmp_path, monkeypatch, shared):
    from trompa_mer.checksummed import BlobStore, share_folder
    from trompa_mer.committee import Committee

    X, sow, song_ids, audio = _every_kind_committee(tmp_path / "a", seed=1)
    _every_kind_committee(tmp_path / "b", seed=2)
    folder = tmp_path / "a"
    if shared:  # a user folder: every file a blob of the users' shared store
        (tmp_path / "users" / "u").mkdir(parents=True)
        share_folder(folder, tmp_path / "users" / "u" / "c", "committee.json", BlobStore(tmp_path / "users" / ".shared"))
        folder = tmp_path / "users" / "u" / "c"
    expected = _proba(Committee.load(folder), X, sow, song_ids, audio)
    other = _proba(Committee.load(tmp_path / "b"), X, sow, song_ids, audio)
    assert not np.allclose(other, expected)
    manifest = json.loads((folder / "committee.json").read_text())
    differing = {n for n in manifest["checksums"]
                 if (tmp_path / "a" / n).read_bytes() != (tmp_path / "b" / n).read_bytes()}
    swapped = []
    _swap_after_check(monkeypatch, tmp_path / "b", swapped)
    raced = Committee.load(folder)
    monkeypatch.undo()
    assert set(swapped) == differing and len(differing) >= len(manifest["checksums"]) - 1  # gnb_0.json alike
    np.testing.assert_array_equal(_proba(raced, X, sow, song_ids, audio), expected)


def test_encoder_weights_swapped_after_their_check_are_not_used(tmp_path, monkeypatch):
    import torch

    from trompa_mer import encoder as E, logmel
    from test_encoder import stream

    frames = stream(seconds=8.0)
    for name, seed in (("a", 3), ("b", 4)):
        E.pretrain("scae", frames, frames[:, :0], tmp_path / name, width=1, epochs=1, seed=seed,
                   progress=False, max_batches=1)
    x = torch.from_numpy(logmel.take_patches(frames, [0, 15]))
    with torch.no_grad():
        expected = E.load_encoder(tmp_path / "a")[0](x)
        assert not torch.equal(E.load_encoder(tmp_path / "b")[0](x), expected)
    swapped = []
    _swap_after_check(monkeypatch, tmp_path / "b", swapped)
    raced, _ = E.load_encoder(tmp_path / "a")
    assert "encoder.pt" in swapped
    with torch.no_grad():
        torch.testing.assert_close(raced(x), expected, rtol=0, atol=0)
