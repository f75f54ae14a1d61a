"""Arousal/valence targets of feature windows (docs/regression.md, "Targets and scales").

`"static"`: every window of a song gets the song's (arousal, valence); `"dynamic"`: each
window gets the annotation at its own time (`frameTime` in seconds matched to annotation
times in milliseconds after rounding to the millisecond); windows where either is missing are
dropped. Values handed in here are already on -1..1 (`datasets.scales`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import MERError
from .scales import to_unit

TARGETS = ("static", "dynamic")


def check_targets(targets: str, corpus: str, available=TARGETS) -> str:
    """`targets` if the corpus has them; MERError naming what it has otherwise."""
    if targets not in TARGETS:
        raise MERError(f"targets: expected one of {', '.join(TARGETS)}, got {targets!r}")
    if targets not in available:
        raise MERError(f"targets: {corpus} has no {targets} annotations (available: {', '.join(available)})")
    return targets


def to_ms(times_s) -> np.ndarray:
    """Seconds -> whole milliseconds (int64), the key annotation times are matched on."""
    return np.rint(np.asarray(times_s, dtype=np.float64) * 1000).astype(np.int64)


def stack_dynamic(table: pd.DataFrame, scale: str, where: str) -> pd.Series:
    """songs x times (ms) table (empty cells allowed: shorter songs) -> Series indexed by
    (song, ms), the empty cells dropped, mapped from `scale` onto -1..1."""
    stacked = table.stack().dropna()
    return pd.Series(to_unit(stacked, scale, where), index=stacked.index)


def dynamic_window_av(songs, times_s, arousal: pd.Series, valence: pd.Series):
    """(keep mask over the windows, av (kept windows, 2)): each window's annotations at its
    own time; `arousal`/`valence` indexed by (song, ms) as `stack_dynamic` returns."""
    index = pd.MultiIndex.from_arrays([np.asarray(songs, dtype=str), to_ms(times_s)])
    a = arousal.reindex(index).to_numpy(dtype=np.float64)
    v = valence.reindex(index).to_numpy(dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(v)
    return keep, np.column_stack([a[keep], v[keep]])


def static_window_av(songs, song_av: pd.DataFrame):
    """(keep mask over the windows, av (kept windows, 2)): every window of a song with a row in
    `song_av` (index song id, columns arousal, valence) gets that row."""
    songs = np.asarray(songs, dtype=str)
    keep = np.isin(songs, song_av.index.to_numpy(dtype=str))
    av = song_av.loc[songs[keep], ["arousal", "valence"]].to_numpy(dtype=np.float64)
    return keep, av.reshape(-1, 2)


def refuse_duplicates(ids, path, field: str) -> None:
    ids = pd.Index(ids)
    if ids.duplicated().any():
        raise MERError(f"{path}: {field} {ids[ids.duplicated()][0]!r} appears twice (expected one row per song)")


def song_ids(values) -> np.ndarray:
    """Song ids as the loaders key them: text, stripped, lowercased, a float's `.0` dropped."""
    return np.asarray([str(v).strip().lower().removesuffix(".0") for v in values], dtype=str)


def read_static(path, id_column: str, arousal_column: str, valence_column: str, scale: str) -> pd.DataFrame:
    """A per-song annotation CSV -> DataFrame (index song id, columns arousal, valence on -1..1).
    Header fields are stripped (DEAM writes ` valence_mean`); a missing column, an empty or
    non-numeric value, a value outside `scale` and a song id given twice are refused."""
    from .generic import read_table

    table = read_table(path)
    for column in (id_column, arousal_column, valence_column):
        if column not in table.columns:
            raise MERError(f"{path}: missing column {column!r} (expected {id_column}, {arousal_column}, "
                           f"{valence_column})")
    ids = song_ids(table[id_column])
    refuse_duplicates(ids, path, id_column)
    out = {}
    for axis, column in (("arousal", arousal_column), ("valence", valence_column)):
        values = pd.Series(pd.to_numeric(table[column], errors="coerce").to_numpy(), index=ids)
        out[axis] = to_unit(values, scale, f"{path}: {column}")
    return pd.DataFrame(out, index=ids)
