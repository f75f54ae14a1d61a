"""1000 Songs / emoMusic (Soleymani et al. 2013): per-song window feature CSVs + static
(1..9) and continuous (-1..1) arousal/valence.

Layout: `feats_dir/<song_id>.csv` as DEAM's (`;`-separated, `frameTime` in seconds, 260 IS13
columns, DEAM's or this project's names; read through `pool.load_pool`), and in
`annotations_dir` the published files:
- `static_annotations.csv`: `song_id`, `mean_arousal`, `std_arousal`, `mean_valence`,
  `std_valence` (1..9; the means are the targets, mapped onto -1..1);
- `arousal_cont_average.csv`, `valence_cont_average.csv`: DEAM's dynamic layout (`song_id`,
  `sample_15000ms`, ...; -1..1, every 500 ms).

`load_emomusic(feats_dir, annotations_dir, targets="static")`: every window of a song gets the
song's static means; `targets="dynamic"`: each window gets the continuous annotations at its
own time (windows without one dropped). Only the files the chosen targets need are read.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import MERError
from .deam import read_dynamic
from .generic import LabeledWindows, windows_with_av
from .targets import check_targets, dynamic_window_av, read_static, stack_dynamic, static_window_av

STATIC = "static_annotations.csv"
AROUSAL = "arousal_cont_average.csv"
VALENCE = "valence_cont_average.csv"


def read_static_emomusic(path):
    """DataFrame (index song id, arousal, valence on -1..1) from the 1..9 means."""
    return read_static(path, "song_id", "mean_arousal", "mean_valence", "1..9")


def load_emomusic(feats_dir, annotations_dir, targets: str = "static", progress: bool = False,
                  jobs: int = 1) -> LabeledWindows:
    from ..features import FEATURE_NAMES
    from ..pool import load_pool

    check_targets(targets, "emoMusic")
    annotations_dir = Path(annotations_dir)
    if targets == "static":
        song_av = read_static_emomusic(annotations_dir / STATIC)
        source = annotations_dir / STATIC
    else:
        arousal = stack_dynamic(read_dynamic(annotations_dir / AROUSAL), "-1..1",
                                f"{annotations_dir / AROUSAL}: sample columns")
        valence = stack_dynamic(read_dynamic(annotations_dir / VALENCE), "-1..1",
                                f"{annotations_dir / VALENCE}: sample columns")
        source = f"{annotations_dir / AROUSAL} / {VALENCE}"
    feats_dir = Path(feats_dir)
    pool = load_pool(feats_dir, cache=os.access(feats_dir, os.W_OK), progress=progress, jobs=jobs)
    songs = pool.song_ids[pool.song_of_window]
    if targets == "static":
        keep, av = static_window_av(songs, song_av)
    else:
        keep, av = dynamic_window_av(songs, pool.frame_times, arousal, valence)
    if not keep.any():
        raise MERError(f"{feats_dir}: no feature window has an arousal and valence annotation in "
                       f"{source} (song ids must match the CSV file names)")
    return windows_with_av(np.asarray(pool.X)[keep], av, songs[keep], list(FEATURE_NAMES))
