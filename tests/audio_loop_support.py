"""What the loop tests of audio-reading members (CNN, encoder, musicnn) share: a folder of
generated clips with their pool of window features, the scaler and standardized windows for the
committee's feature member, and an environment pointing the scripts at a copy of it."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_audio_pool(base: Path, songs, clip_of, quadrant_of, audio_name=str):
    """data/audio/<audio_name(song)>.wav from clip_of(song) -> (samples, sample rate), each
    song's window features in data/feats/<song>.csv (clip_of is called once per song, in order).
    Returns (audio folder, scaler fitted on every window, standardized windows, their quadrants)."""
    import soundfile
    from sklearn.preprocessing import StandardScaler

    from trompa_mer.features import FEATURE_NAMES, extract_features, write_feature_csv

    audio_dir, feats_dir = base / "data" / "audio", base / "data" / "feats"
    audio_dir.mkdir(parents=True)
    feats_dir.mkdir(parents=True)
    windows, labels = [], []
    for song in songs:
        samples, rate = clip_of(song)
        path = audio_dir / f"{audio_name(song)}.wav"
        soundfile.write(path, samples, rate)
        table = extract_features(path)
        write_feature_csv(table, feats_dir / f"{song}.csv")
        windows.append(table[FEATURE_NAMES].to_numpy(dtype=np.float32))
        labels.append(np.full(len(table), quadrant_of(song)))
    X_raw, y = np.concatenate(windows), np.concatenate(labels)
    scaler = StandardScaler().fit(X_raw)
    return audio_dir, scaler, ((X_raw - scaler.mean_) / scaler.scale_).astype(np.float32), y


def audio_loop_env(assets: Path, tmp_path: Path) -> dict:
    """A copy of the assets' data/ and the scripts' environment: MER_AUDIO_DIR its audio, a
    cache of its own, one thread; `committee` the assets' saved committee."""
    shutil.copytree(assets / "data", tmp_path / "data")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MER_")}
    environ.update({"MER_MODELS_DIR": str(tmp_path / "models"), "MER_DATA_DIR": str(tmp_path / "data"),
                    "MER_AUDIO_DIR": str(tmp_path / "data" / "audio"), "MER_CACHE_DIR": str(tmp_path / "cache"),
                    "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    return {"env": environ, "dir": tmp_path, "committee": assets / "committee",
            "users": tmp_path / "models" / "users"}


def run(env: dict, script: str, *args, timeout: float = 300):
    """A top-level script run in the copy, as a platform runs it."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], env=env["env"],
                          cwd=env["dir"], capture_output=True, text=True, timeout=timeout)


def ok(env: dict, script: str, *args):
    result = run(env, script, *args)
    assert result.returncode == 0, f"{script} {args} failed: {result.stderr}"
    return result
