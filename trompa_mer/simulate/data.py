"""The data side of the simulation: feature tables, annotations, majority labels, the users
who can be simulated, their pool/test splits and the leave-user-out pre-training labels."""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ..consensus import human_consensus
from ..errors import MERError
from ..quadrants import QUADRANTS


# --- features ------------------------------------------------------------------------------
@dataclass
class FeatureTable:
    """Feature rows grouped by song: rows of song i are X[offsets[i]:offsets[i+1]].

    Song-level tables have one row per song; a window-level pool has one row per window.
    """

    song_ids: np.ndarray
    X: np.ndarray
    offsets: np.ndarray
    feature_names: list

    def __post_init__(self):
        self.song_ids = np.asarray(self.song_ids).astype(str)
        self._index = {s: i for i, s in enumerate(self.song_ids.tolist())}

    def has(self, song) -> bool:
        return song in self._index

    def gather(self, songs) -> tuple[np.ndarray, np.ndarray]:
        """Rows of `songs` (in that order) and their offsets."""
        idx = [self._index[s] for s in songs]
        starts, ends = self.offsets[idx], self.offsets[np.asarray(idx, dtype=int) + 1]
        lengths = ends - starts
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        if len(idx) == 0:
            return self.X[:0], offsets
        rows = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)])
        return self.X[rows], offsets

    def subset(self, songs) -> "FeatureTable":
        songs = [s for s in songs if s in self._index]
        X, offsets = self.gather(songs)
        return FeatureTable(np.asarray(songs), X, offsets, list(self.feature_names))


def rows_for_songs(features: FeatureTable, songs, labels_of) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of `songs`, each labeled with its song's label."""
    X, offsets = features.gather(songs)
    y = np.repeat(np.asarray([labels_of[s] for s in songs], dtype=np.int64), np.diff(offsets))
    return X, y


_ID_COLUMNS = ("s_id", "song", "song_id", "track_id", "id", "externalid")


def load_song_features(path) -> FeatureTable:
    """A song-level table (CSV or parquet): one id column (s_id, song, song_id...) + numbers."""
    path = Path(path)
    if not path.exists():
        raise MERError(f"{path}: feature file not found")
    if path.suffix.lower() == ".parquet":
        table = pd.read_parquet(path)
    else:
        try:
            table = pd.read_csv(path, sep=None, engine="python")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise MERError(f"{path}: cannot parse as CSV ({err})") from None
    lower = {str(c).strip().lower(): c for c in table.columns}
    id_col = next((lower[k] for k in _ID_COLUMNS if k in lower), None)
    if id_col is None:
        raise MERError(f"{path}: missing a song id column (one of {', '.join(_ID_COLUMNS)})")
    values = table.drop(columns=[id_col])
    bad = [c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])]
    if bad:
        raise MERError(f"{path}: field {bad[0]!r}: expected numbers in every feature column")
    if values.shape[1] == 0:
        raise MERError(f"{path}: no feature columns beside {id_col!r}")
    X = values.to_numpy(dtype=np.float32)
    if not np.isfinite(X).all():
        row = int(np.where(~np.isfinite(X).all(axis=1))[0][0])
        raise MERError(f"{path}: row {row + 2}: missing or non-finite feature value")
    ids = table[id_col].astype(str).str.strip().str.lower()
    # the TROMPA-MER table repeats a few songs with identical values: keep one; refuse conflicts
    repeated = pd.DataFrame(X).assign(_id=ids.to_numpy()).duplicated()
    X, ids = X[~repeated.to_numpy()], ids[~repeated.to_numpy()].to_numpy()
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise MERError(f"{path}: field {id_col!r}: song id {dup!r} appears more than once with different values")
    return FeatureTable(ids, X, np.arange(len(ids) + 1, dtype=np.int64), [str(c) for c in values.columns])


def load_features(path) -> FeatureTable:
    """A folder of window-level feature CSVs (the pool store) or a song-level table."""
    path = Path(path)
    if path.is_dir():
        from ..pool import load_pool  # the lead's pool store

        pool = load_pool(path)
        return FeatureTable(np.asarray(pool.song_ids).astype(str), np.asarray(pool.X, dtype=np.float32),
                            np.asarray(pool.offsets, dtype=np.int64), list(pool.feature_names))
    return load_song_features(path)


# --- annotations ---------------------------------------------------------------------------
def load_annotation_table(path) -> pd.DataFrame:
    """Annotations by file type: a .mat file is AMG1608, anything else the lead's loaders."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        from ..datasets.amg1608 import load_amg1608

        return load_amg1608(path)
    from ..datasets.annotations import load_annotations

    return load_annotations(path)


AV_COLUMNS = ("arousal", "valence")


def prepare_annotations(annotations: pd.DataFrame, values: bool = False) -> pd.DataFrame:
    """One label per (user, song): a listener who annotated a song twice counts with the last.

    values: keep the arousal and valence columns (float, NaN where an annotation gave only a
    quadrant; all NaN when the table has none), which regression members need."""
    columns = ["user", "song", "quadrant"]
    table = annotations[columns].copy()
    if values:
        for column in AV_COLUMNS:
            table[column] = (annotations[column].astype(float) if column in annotations.columns
                             else np.nan)
    table["user"] = table["user"].astype(str)
    table["song"] = table["song"].astype(str)
    table["quadrant"] = table["quadrant"].astype(np.int64)
    return table.drop_duplicates(["user", "song"], keep="last").reset_index(drop=True)


def majority_labels(freqs: pd.DataFrame) -> pd.Series:
    """Majority quadrant per song of a consensus table; songs with a tie are dropped."""
    values = freqs[list(QUADRANTS)].to_numpy(dtype=float)
    top = values.max(axis=1, keepdims=True)
    unique = (np.isclose(values, top)).sum(axis=1) == 1
    return pd.Series(values.argmax(axis=1)[unique].astype(np.int64), index=freqs.index[unique])


def majority_any(freqs: pd.DataFrame) -> dict:
    """Majority quadrant of every song in a consensus table (a tie goes to the lower quadrant)."""
    if freqs.empty:
        return {}
    values = freqs[list(QUADRANTS)].to_numpy(dtype=float)
    return dict(zip(freqs.index, values.argmax(axis=1).tolist()))


# --- users and their pool/test splits ------------------------------------------------------
def seed_sequence(*parts) -> np.random.SeedSequence:
    """A seed from the base seed and names: crc32, because Python's str hash changes per process."""
    return np.random.SeedSequence([zlib.crc32(str(p).encode()) if not isinstance(p, int) else p
                                   for p in parts])


def eligible_users(annotations: pd.DataFrame, features: FeatureTable, min_annotations: int,
                   max_annotations: int | None = None) -> list:
    with_features = annotations[annotations["song"].map(features.has)]
    counts = with_features.groupby("user").size()
    keep = counts >= min_annotations
    if max_annotations is not None:
        keep &= counts <= max_annotations
    return sorted(counts.index[keep].tolist())


def user_split(songs, seed: int, user, repeat: int, test_size: float) -> tuple[list, list]:
    """The user's pool/test split for one repeat (identical for every mode and update)."""
    songs = sorted(songs)
    state = int(seed_sequence(seed, "split", user, repeat).generate_state(1)[0])
    pool, test = train_test_split(songs, test_size=test_size, random_state=state)
    return sorted(pool), sorted(test)


# --- leave-user-out pre-training labels ----------------------------------------------------
MIN_PRETRAIN_SONGS = 10


def pretraining_labels(annotations: pd.DataFrame, user, features: FeatureTable) -> pd.Series:
    """Leave-user-out labels: the songs the user did not annotate (with features), each labeled by
    the other listeners' majority quadrant; ties dropped."""
    theirs = set(annotations.loc[annotations["user"] == user, "song"])
    crowd = human_consensus(annotations[~annotations["song"].isin(theirs)], exclude_user=user)
    labels = majority_labels(crowd)
    return labels[[features.has(s) for s in labels.index]]


# Where the other listeners' mean (arousal, valence) falls outside the song's majority quadrant
# (possible with ~3 % of the TROMPA-MER songs: a majority of Q2 votes with more a- than a+ votes
# in the other quadrants), the target moves to the nearest point of that quadrant: the axis
# that disagrees becomes 0 (a positive side; 0 counts as positive) or -AV_EDGE (a negative side).
AV_EDGE = 1e-3


def pretraining_targets(annotations: pd.DataFrame, user, labels: pd.Series) -> pd.DataFrame:
    """Leave-user-out arousal/valence targets of the songs of `labels` (pretraining_labels):
    per song, the mean of the other listeners' values (-1..1; the same listeners whose votes
    made the song's majority label), moved onto the label's quadrant where the mean falls
    outside it (AV_EDGE). Columns arousal, valence, in the order of `labels`; NaN for a song
    whose listeners gave quadrants only. `annotations` as prepare_annotations(values=True)."""
    missing = [c for c in AV_COLUMNS if c not in annotations.columns]
    if missing:
        raise MERError("regression members: the annotations were prepared without arousal/valence "
                       "(prepare_annotations(values=True))")
    theirs = set(annotations.loc[annotations["user"] == user, "song"])
    others = annotations[~annotations["song"].isin(theirs) & (annotations["user"] != user)]
    means = others.groupby("song")[list(AV_COLUMNS)].mean().reindex(labels.index)
    av = means.to_numpy(dtype=float)
    q = labels.to_numpy(dtype=np.int64)
    positive = np.stack([np.isin(q, (0, 1)), np.isin(q, (0, 3))], axis=1)  # a+ for Q1, Q2; v+ for Q1, Q4
    av = np.where(positive & (av < 0), 0.0, av)
    av = np.where(~positive & (av >= 0), -AV_EDGE, av)
    return pd.DataFrame(av, index=labels.index, columns=list(AV_COLUMNS))
