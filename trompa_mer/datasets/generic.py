"""A generic corpus: one feature table (CSV or parquet) with a song id column + a labels CSV.

Features: one row per window (or per song), a song id column (`song_id`, `s_id`, `track_id`
or `id`, or name it), an optional `frameTime`, and numeric feature columns. DEAM's MFCC names
(`pcm_fftMag_mfcc_sma...`) are mapped onto ours; when the columns are the 260 IS13 window
features they are put in the project's order, otherwise they are kept as they are (the
committee records them and refuses other layouts later).

Labels: a CSV with the song id column and either `quadrant` (Q1..Q4 or 1..4) or `arousal` and
`valence` (numbers; quadrant by sign, 0 counts as positive). Every window carries its song's
label; songs without a label are dropped.

With `scale` (a name in `datasets.scales.SCALES`), `arousal`/`valence` labels also become
regression targets: mapped onto -1..1, averaged over a song's rows, every window of the song
carries them (`av`), and its quadrant is that of the song's mapped mean (so on a scale like
1..9 the quadrant is the side of the scale's midpoint, not the sign of the raw number).
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import MERError
from ..quadrants import parse_quadrant, quadrant_from_av

ID_COLUMNS = ("song_id", "s_id", "track_id", "id")


class LabeledWindows(NamedTuple):
    """What every training-corpus loader returns. When `av` is given, `y` is
    `quadrant_from_av(av)` (build it with `windows_with_av`), so classifiers and regressors
    train on consistent targets."""

    X: np.ndarray             # (windows, features) float32
    y: np.ndarray             # (windows,) int64 quadrant 0..3
    groups: np.ndarray        # (windows,) str song id, for grouped splits
    feature_names: list
    av: np.ndarray | None = None   # (windows, 2) float32 arousal, valence on -1..1; None: quadrants only
    # (windows,) the unit that must not leak between training and held-out songs when it is
    # coarser than the song (the artist, in 4Q); None: the song (`groups`)
    split_groups: np.ndarray | None = None
    # song id -> 16 kHz samples (an audio_cache.AudioCache over the corpus' audio folder), for
    # members that read the clips' audio (musicnn); None: the corpus has features only
    audio: object | None = None


def windows_with_av(X, av, groups, feature_names) -> LabeledWindows:
    """LabeledWindows whose quadrant labels are those of their (arousal, valence) targets
    (taken from the float32 values stored, so `y == quadrant_from_av(av)` holds exactly)."""
    av = np.asarray(av, dtype=np.float32).reshape(-1, 2)
    if len(av) != len(X) or len(groups) != len(X):
        raise ValueError(f"windows_with_av: {len(X)} windows, {len(av)} targets, {len(groups)} groups")
    if not np.isfinite(av).all() or np.abs(av).max(initial=0.0) > 1.0:
        raise ValueError("windows_with_av: targets must be finite and on -1..1")
    return LabeledWindows(np.asarray(X, dtype=np.float32), quadrant_from_av(av[:, 0], av[:, 1]),
                          np.asarray(groups).astype(str), list(feature_names), av)


def _find_id_column(columns, path, id_column=None) -> str:
    if id_column:
        if id_column not in columns:
            raise MERError(f"{path}: missing song id column {id_column!r}")
        return id_column
    for name in ID_COLUMNS:
        if name in columns:
            return name
    raise MERError(f"{path}: no song id column (expected one of {', '.join(ID_COLUMNS)})")


def _normalize_ids(values) -> np.ndarray:
    return np.asarray([str(v).strip().lower() for v in values], dtype=str)


def read_table(path, sep=None) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise MERError(f"{path}: file not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(path)
        else:
            if sep is None:
                with open(path, encoding="utf-8") as handle:
                    header = handle.readline()
                sep = ";" if ";" in header else "\t" if "\t" in header else ","
            table = pd.read_csv(path, sep=sep, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as err:
        raise MERError(f"{path}: cannot read as a table ({type(err).__name__}: {err})") from None
    table.columns = [str(c).strip() for c in table.columns]
    return table


def read_labels(path, id_column=None) -> pd.Series:
    """Song id (lowercase) -> quadrant index, from `quadrant` or `arousal`/`valence` columns."""
    table = read_table(path)
    id_col = _find_id_column(table.columns, path, id_column)
    ids = _normalize_ids(table[id_col])
    if "quadrant" in table.columns:
        labels = [parse_quadrant(v if not isinstance(v, float) or not v.is_integer() else int(v),
                                 where=f"{path}: row {i + 2} field 'quadrant'")
                  for i, v in enumerate(table["quadrant"].tolist())]
    elif {"arousal", "valence"} <= set(table.columns):
        a = pd.to_numeric(table["arousal"], errors="coerce")
        v = pd.to_numeric(table["valence"], errors="coerce")
        bad = np.flatnonzero(a.isna().to_numpy() | v.isna().to_numpy())
        if bad.size:
            raise MERError(f"{path}: row {bad[0] + 2} fields 'arousal'/'valence' must be numbers")
        labels = quadrant_from_av(a.to_numpy(), v.to_numpy())
    else:
        raise MERError(f"{path}: expected a 'quadrant' column or 'arousal' and 'valence' columns")
    series = pd.Series(np.asarray(labels, dtype=np.int64), index=ids)
    dupes = series.index[series.index.duplicated()]
    if len(dupes):
        # several rows per song (several listeners): majority quadrant, ties to the lower one
        series = series.groupby(level=0).agg(lambda s: s.value_counts().sort_index().idxmax())
    return series


def read_av_labels(path, scale: str, id_column=None) -> pd.DataFrame:
    """Song id (lowercase) -> arousal, valence on -1..1 (mean of a song's rows) from a labels
    CSV with `arousal` and `valence` columns on the declared `scale`."""
    from .scales import to_unit

    table = read_table(path)
    id_col = _find_id_column(table.columns, path, id_column)
    if not {"arousal", "valence"} <= set(table.columns):
        raise MERError(f"{path}: a scale ({scale}) was given, so 'arousal' and 'valence' columns are expected")
    ids = _normalize_ids(table[id_col])
    out = {}
    for axis in ("arousal", "valence"):
        values = pd.Series(pd.to_numeric(table[axis], errors="coerce").to_numpy(), index=ids)
        out[axis] = to_unit(values, scale, f"{path}: {axis}")
    return pd.DataFrame(out, index=ids).groupby(level=0).mean()


def map_feature_columns(columns) -> list:
    from ..features import DEAM_MFCC_PREFIX

    return [c.replace(DEAM_MFCC_PREFIX, "mfcc_sma", 1) if c.startswith(DEAM_MFCC_PREFIX) else c
            for c in columns]


def load_generic(features, labels, id_column=None, scale: str | None = None) -> LabeledWindows:
    from ..features import FEATURE_NAMES

    table = read_table(features)
    id_col = _find_id_column(table.columns, features, id_column)
    table.columns = map_feature_columns(table.columns)
    feature_cols = [c for c in table.columns if c not in (id_col, "frameTime")]
    if not feature_cols:
        raise MERError(f"{features}: no feature columns besides {id_col!r}")
    if set(feature_cols) == set(FEATURE_NAMES):
        feature_cols = list(FEATURE_NAMES)
    values = table[feature_cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise MERError(f"{features}: row {row + 2} column {feature_cols[col]!r} is empty or not a number")
    ids = _normalize_ids(table[id_col])
    if scale is not None:
        from .scales import scale_range

        scale_range(scale, "scale")
        song_av = read_av_labels(labels, scale, id_column)
        keep = np.isin(ids, song_av.index.to_numpy())
        av = song_av.loc[ids[keep], ["arousal", "valence"]].to_numpy()
        if not keep.any():
            raise MERError(f"{labels}: no song id matches a song in {features}")
        return windows_with_av(values[keep], av, ids[keep], feature_cols)
    song_labels = read_labels(labels, id_column)
    keep = np.isin(ids, song_labels.index.to_numpy())
    if not keep.any():
        raise MERError(f"{labels}: no song id matches a song in {features}")
    ids = ids[keep]
    return LabeledWindows(values[keep].astype(np.float32),
                          song_labels.loc[ids].to_numpy(dtype=np.int64), ids, feature_cols)
