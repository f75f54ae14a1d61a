"""Small generated corpora in the exact published layouts of PMEmo 2019, 1000 Songs/emoMusic
and DEAM (annotations and features), for the regression loaders' tests.

Every feature window encodes where it came from: column 0 is the song's number, column 1 the
window's frameTime, so a test can check that each window got the annotation of its own song
and time. Annotation values are functions of (song, time) given by the caller.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trompa_mer.features import FEATURE_NAMES

# openSMILE's names as PMEmo and DEAM publish them: MFCCs with a pcm_fftMag_ prefix
OPENSMILE_NAMES = [n.replace("mfcc_sma", "pcm_fftMag_mfcc_sma", 1) if n.startswith("mfcc_sma") else n
                   for n in FEATURE_NAMES]


def window_features(song: int, times, rng) -> np.ndarray:
    X = rng.normal(size=(len(times), len(FEATURE_NAMES)))
    X[:, 0] = song
    X[:, 1] = times
    return X


def write_pmemo(root, songs: dict, annotation_times, arousal, valence, feature_songs=None, seed=0) -> Path:
    """PMEmo 2019 under `root`: songs {musicId: feature frameTimes}; dynamic annotations of
    every song in `songs` (and of `feature_songs` only when given a subset, features only for
    those) at `annotation_times`, values arousal(song, t) / valence(song, t) on 0..1; static
    annotations are the song means of the dynamic ones."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "features").mkdir(parents=True, exist_ok=True)
    feature_songs = list(songs) if feature_songs is None else feature_songs
    frames = []
    for song in feature_songs:
        times = np.asarray(songs[song], dtype=float)
        frame = pd.DataFrame(window_features(song, times, rng), columns=OPENSMILE_NAMES)
        frame.insert(0, "frameTime", times)
        frame.insert(0, "musicId", song)
        frames.append(frame)
    pd.concat(frames).to_csv(root / "features" / "dynamic_features.csv", index=False)
    rows, static = [], []
    for song in songs:
        a = [arousal(song, t) for t in annotation_times]
        v = [valence(song, t) for t in annotation_times]
        rows += [(song, t, x, y) for t, x, y in zip(annotation_times, a, v)]
        static.append((song, np.mean(a), np.mean(v)))
    pd.DataFrame(rows, columns=["musicId", "frameTime", "Arousal(mean)", "Valence(mean)"]).to_csv(
        root / "annotations" / "dynamic_annotations.csv", index=False)
    pd.DataFrame(static, columns=["musicId", "Arousal(mean)", "Valence(mean)"]).to_csv(
        root / "annotations" / "static_annotations.csv", index=False)
    return root


def write_feature_folder(folder, songs: dict, seed=0, opensmile_names=True) -> Path:
    """One `;`-separated `<song>.csv` per song (DEAM's layout): songs {id: frameTimes}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for song, times in songs.items():
        times = np.asarray(times, dtype=float)
        frame = pd.DataFrame(window_features(song, times, rng),
                             columns=OPENSMILE_NAMES if opensmile_names else FEATURE_NAMES)
        frame.insert(0, "frameTime", times)
        frame.to_csv(folder / f"{song}.csv", sep=";", index=False)
    return folder


def write_dynamic(path, values: dict, start_ms=15000, step_ms=500) -> Path:
    """DEAM's dynamic layout: `song_id`, `sample_<ms>ms` ...; values {song: list}, shorter
    rows end in empty cells."""
    width = max(len(v) for v in values.values())
    columns = [f"sample_{start_ms + step_ms * i}ms" for i in range(width)]
    table = pd.DataFrame([list(v) + [np.nan] * (width - len(v)) for v in values.values()], columns=columns)
    table.insert(0, "song_id", list(values))
    table.to_csv(path, index=False)
    return Path(path)


def write_emomusic_static(path, rows: dict) -> Path:
    """1000 Songs' static file: rows {song_id: (mean_arousal, mean_valence)} on 1..9."""
    table = pd.DataFrame([(s, a, 1.0, v, 1.2) for s, (a, v) in rows.items()],
                         columns=["song_id", "mean_arousal", "std_arousal", "mean_valence", "std_valence"])
    table.to_csv(path, index=False)
    return Path(path)


def write_deam_static(path, rows: dict) -> Path:
    """DEAM's static_annotations_averaged_songs_1_2000.csv: rows {song_id: (arousal, valence)}
    on 1..9, with DEAM's space after each comma in the header."""
    lines = ["song_id, valence_mean, valence_std, arousal_mean, arousal_std"]
    lines += [f"{s},{v},1.1,{a},0.9" for s, (a, v) in rows.items()]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)
