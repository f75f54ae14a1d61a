"""DEAM: per-song window feature CSVs + dynamic (per 500 ms) arousal and valence annotations.

Feature files are `<song_id>.csv` in DEAM's layout (`frameTime` in seconds, MFCC names with
a `pcm_fftMag_` prefix) or this project's; `arousal.csv`/`valence.csv` have `song_id` and
`sample_<ms>ms` columns, trailing cells empty where a song is shorter. A window is labeled by
the quadrant of the annotations at its own time (`sample_15000ms` <-> frameTime 15.0);
windows where either annotation is missing are dropped (DEAM annotates from 15 s on, and the
arousal and valence rows of a song may end at different times).

Regression targets (`av`, on -1..1 as published): `targets="dynamic"` (the default) gives each
window the annotations at its own time, as the quadrant labels; `targets="static"` gives every
window of a song the song's mean of its dynamic annotations (each axis over its own non-empty
cells), or, with `static_csv`, the song's row of DEAM's static file
(`static_annotations_averaged_songs_1_2000.csv`: `song_id`, ` valence_mean`, ` valence_std`,
` arousal_mean`, ` arousal_std`, 1..9 scale, mapped onto -1..1). Quadrant labels are always
those of the targets.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import MERError
from .generic import LabeledWindows, windows_with_av
from .targets import check_targets, dynamic_window_av, read_static, stack_dynamic, static_window_av

_SAMPLE = re.compile(r"^sample_(\d+)ms$")


def read_dynamic(path) -> pd.DataFrame:
    """songs x annotation times: index song id (lowercase str), columns times in ms (int)."""
    path = Path(path)
    if not path.is_file():
        raise MERError(f"{path}: annotation file not found")
    try:
        # only an empty cell is empty: "NA", "n/a" and the like are refused below, not dropped
        table = pd.read_csv(path, skipinitialspace=True, keep_default_na=False)
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
    raw = table[list(times)]
    values = raw.apply(pd.to_numeric, errors="coerce")
    ids = [str(s).strip().lower().removesuffix(".0") for s in table["song_id"]]
    # an empty cell is a song that ended; anything else that is not a number is refused, not
    # dropped as if it were empty
    empty = raw.isna() | raw.apply(lambda column: column.astype(str).str.strip().eq(""))
    bad = np.argwhere((values.isna() & ~empty).to_numpy())
    if bad.size:
        row, col = bad[0]
        raise MERError(f"{path}: row {row + 2} (song_id {ids[row]!r}) column {raw.columns[col]!r}: "
                       f"{raw.iat[row, col]!r} is not a number ({len(bad)} such cells; expected a "
                       "number or an empty cell)")
    values.columns = list(times.values())
    values.index = ids
    if values.index.duplicated().any():
        raise MERError(f"{path}: song_id {values.index[values.index.duplicated()][0]!r} appears twice")
    return values


def read_static_deam(path) -> pd.DataFrame:
    """DEAM's static file (1..9) -> DataFrame (index song id, arousal, valence on -1..1)."""
    return read_static(path, "song_id", "arousal_mean", "valence_mean", "1..9")


def song_means(arousal: pd.Series, valence: pd.Series) -> pd.DataFrame:
    """Per song: the mean of its dynamic annotations (Series indexed by (song, ms)), each axis
    over its own values; songs lacking either axis left out."""
    means = pd.DataFrame({"arousal": arousal.groupby(level=0).mean(),
                          "valence": valence.groupby(level=0).mean()})
    return means.dropna()


def load_deam(feats_dir, arousal_csv, valence_csv, progress: bool = False, jobs: int = 1,
              targets: str = "dynamic", static_csv=None) -> LabeledWindows:
    from ..features import FEATURE_NAMES
    from ..pool import load_pool

    check_targets(targets, "DEAM")
    if static_csv is not None and targets != "static":
        raise MERError(f"{static_csv}: DEAM's static file gives static targets (targets='static'), "
                       f"got targets={targets!r}")
    arousal = stack_dynamic(read_dynamic(arousal_csv), "-1..1", f"{arousal_csv}: sample columns")
    valence = stack_dynamic(read_dynamic(valence_csv), "-1..1", f"{valence_csv}: sample columns")
    feats_dir = Path(feats_dir)
    pool = load_pool(feats_dir, cache=os.access(feats_dir, os.W_OK), progress=progress, jobs=jobs)
    songs = pool.song_ids[pool.song_of_window]
    if targets == "dynamic":
        keep, av = dynamic_window_av(songs, pool.frame_times, arousal, valence)
        sources = f"{arousal_csv} / {valence_csv}"
    else:
        song_av = read_static_deam(static_csv) if static_csv is not None else song_means(arousal, valence)
        keep, av = static_window_av(songs, song_av)
        sources = str(static_csv) if static_csv is not None else f"{arousal_csv} / {valence_csv}"
    if not keep.any():
        raise MERError(f"{feats_dir}: no feature window has an arousal and valence annotation "
                       f"in {sources} (song ids must match the CSV file names)")
    return windows_with_av(np.asarray(pool.X)[keep], av, songs[keep], list(FEATURE_NAMES))
