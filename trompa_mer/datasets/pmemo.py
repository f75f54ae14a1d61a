"""PMEmo 2019: one table of window features + static and dynamic arousal/valence (0..1).

Layout (as published, under `root`):
- `annotations/static_annotations.csv`: `musicId`, `Arousal(mean)`, `Valence(mean)` (0..1);
- `annotations/dynamic_annotations.csv`: `musicId`, `frameTime` (s), `Arousal(mean)`,
  `Valence(mean)` (0..1, every 0.5 s from 15 s);
- `features/dynamic_features.csv`: `musicId`, `frameTime`, then the 260 IS13 window features
  under openSMILE's names (MFCCs with DEAM's `pcm_fftMag_` prefix, mapped onto ours).

`load_pmemo(root, targets="dynamic")`: each window keyed by (musicId, frameTime) gets the
dynamic annotation at the same time (matched after rounding to the millisecond; windows
without one dropped); `targets="static"`: every window of a song gets the song's static
annotation. Values are mapped from 0..1 onto -1..1 (`datasets.scales`); the quadrant labels
are those of the targets.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import MERError
from .generic import LabeledWindows, map_feature_columns, read_table, windows_with_av
from .scales import to_unit
from .targets import check_targets, dynamic_window_av, read_static, song_ids, static_window_av, to_ms

STATIC = Path("annotations") / "static_annotations.csv"
DYNAMIC = Path("annotations") / "dynamic_annotations.csv"
FEATURES = Path("features") / "dynamic_features.csv"
SCALE = "0..1"
AROUSAL, VALENCE = "Arousal(mean)", "Valence(mean)"


def _require(table: pd.DataFrame, path, columns) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise MERError(f"{path}: missing column {missing[0]!r} (expected PMEmo's layout: {', '.join(columns[:4])}, ...)")


def _keys(table: pd.DataFrame, path) -> tuple[np.ndarray, np.ndarray]:
    """(song ids, times in ms) of the rows; (musicId, frameTime) given twice refused."""
    times = pd.to_numeric(table["frameTime"], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(times))
    if bad.size:
        raise MERError(f"{path}: row {bad[0] + 2} field 'frameTime' must be a number of seconds")
    songs, ms = song_ids(table["musicId"]), to_ms(times)
    twice = pd.MultiIndex.from_arrays([songs, ms]).duplicated()
    if twice.any():
        i = int(np.flatnonzero(twice)[0])
        raise MERError(f"{path}: musicId {str(songs[i])!r} frameTime {ms[i] / 1000:g} appears twice "
                       f"(expected one row per song and time)")
    return songs, ms


def read_features(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(song id per window, frameTime in s per window, X float32 windows x 260), sorted by
    song id and time."""
    from ..features import FEATURE_NAMES

    table = read_table(path)
    table.columns = map_feature_columns(table.columns)
    _require(table, path, ["musicId", "frameTime", *FEATURE_NAMES])
    if len(table) == 0:
        raise MERError(f"{path}: no feature rows")
    songs, ms = _keys(table, path)
    X = table[FEATURE_NAMES].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise MERError(f"{path}: row {row + 2} column {FEATURE_NAMES[col]!r} is empty or not a number")
    order = np.lexsort((ms, songs))
    return songs[order], ms[order] / 1000.0, X[order].astype(np.float32)


def read_dynamic_pmemo(path) -> tuple[pd.Series, pd.Series]:
    """(arousal, valence) on -1..1, each a Series indexed by (song id, ms)."""
    table = read_table(path)
    _require(table, path, ["musicId", "frameTime", AROUSAL, VALENCE])
    index = pd.MultiIndex.from_arrays(_keys(table, path))
    out = []
    for column in (AROUSAL, VALENCE):
        values = pd.Series(pd.to_numeric(table[column], errors="coerce").to_numpy(), index=index)
        out.append(pd.Series(to_unit(values, SCALE, f"{path}: {column}"), index=index))
    return out[0], out[1]


def read_static_pmemo(path) -> pd.DataFrame:
    """DataFrame (index song id, arousal, valence on -1..1)."""
    return read_static(path, "musicId", AROUSAL, VALENCE, SCALE)


def load_pmemo(root, targets: str = "dynamic") -> LabeledWindows:
    from ..features import FEATURE_NAMES

    check_targets(targets, "PMEmo")
    root = Path(root)
    # annotations first: a bad annotation file is reported before the large feature table is read
    if targets == "dynamic":
        source = root / DYNAMIC
        arousal, valence = read_dynamic_pmemo(source)
    else:
        source = root / STATIC
        song_av = read_static_pmemo(source)
    songs, times, X = read_features(root / FEATURES)
    if targets == "dynamic":
        keep, av = dynamic_window_av(songs, times, arousal, valence)
    else:
        keep, av = static_window_av(songs, song_av)
    if not keep.any():
        raise MERError(f"{source}: no (musicId, frameTime) matches a window of {root / FEATURES}"
                       if targets == "dynamic" else
                       f"{source}: no musicId matches a song of {root / FEATURES}")
    return windows_with_av(X[keep], av, songs[keep], list(FEATURE_NAMES))
