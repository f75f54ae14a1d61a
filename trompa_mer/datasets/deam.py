"""DEAM: per-song window feature CSVs + dynamic (per 500 ms) arousal and valence annotations.

Feature files are `<song_id>.csv` in DEAM's layout (`frameTime` in seconds, MFCC names with
a `pcm_fftMag_` prefix) or this project's; `arousal.csv`/`valence.csv` have `song_id` and
`sample_<ms>ms` columns, trailing cells empty where a song is shorter. A window is labeled by
the quadrant of the annotations at its own time (`sample_15000ms` <-> frameTime 15.0);
windows where either annotation is missing are dropped (DEAM annotates from 15 s on, and the
arousal and valence rows of a song may end at different times).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import MERError
from ..quadrants import quadrant_from_av
from .generic import LabeledWindows

_SAMPLE = re.compile(r"^sample_(\d+)ms$")


def read_dynamic(path) -> pd.DataFrame:
    """songs x annotation times: index song id (lowercase str), columns times in ms (int)."""
    path = Path(path)
    if not path.is_file():
        raise MERError(f"{path}: annotation file not found")
    try:
        table = pd.read_csv(path, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise MERError(f"{path}: cannot parse as a CSV ({err})") from None
    table.columns = [str(c).strip() for c in table.columns]
    if "song_id" not in table.columns:
        raise MERError(f"{path}: missing column 'song_id' (expected DEAM's dynamic annotations)")
    times = {}
    for column in table.columns:
        if column == "song_id":
            continue
        match = _SAMPLE.match(column)
        if not match:
            raise MERError(f"{path}: column {column!r} is not 'sample_<milliseconds>ms'")
        times[column] = int(match.group(1))
    values = table[list(times)].apply(pd.to_numeric, errors="coerce")
    values.columns = list(times.values())
    values.index = [str(s).strip().lower().removesuffix(".0") for s in table["song_id"]]
    if values.index.duplicated().any():
        raise MERError(f"{path}: song_id {values.index[values.index.duplicated()][0]!r} appears twice")
    return values


def load_deam(feats_dir, arousal_csv, valence_csv, progress: bool = False, jobs: int = 1) -> LabeledWindows:
    from ..features import FEATURE_NAMES
    from ..pool import load_pool

    arousal = read_dynamic(arousal_csv)
    valence = read_dynamic(valence_csv)
    feats_dir = Path(feats_dir)
    pool = load_pool(feats_dir, cache=os.access(feats_dir, os.W_OK), progress=progress, jobs=jobs)
    xs, ys, groups = [], [], []
    for i, song in enumerate(pool.song_ids.tolist()):
        if song not in arousal.index or song not in valence.index:
            continue
        start, stop = pool.offsets[i], pool.offsets[i + 1]
        ms = np.rint(np.asarray(pool.frame_times[start:stop], dtype=np.float64) * 1000).astype(np.int64)
        a = arousal.loc[song].reindex(ms).to_numpy(dtype=np.float64)
        v = valence.loc[song].reindex(ms).to_numpy(dtype=np.float64)
        keep = np.isfinite(a) & np.isfinite(v)
        if not keep.any():
            continue
        xs.append(np.asarray(pool.X[start:stop])[keep])
        ys.append(quadrant_from_av(a[keep], v[keep]))
        groups.append(np.full(int(keep.sum()), song))
    if not xs:
        raise MERError(f"{feats_dir}: no feature window has an arousal and valence annotation "
                       f"in {arousal_csv} / {valence_csv} (song ids must match the CSV file names)")
    return LabeledWindows(np.concatenate(xs).astype(np.float32), np.concatenate(ys),
                          np.concatenate(groups).astype(str), list(FEATURE_NAMES))
