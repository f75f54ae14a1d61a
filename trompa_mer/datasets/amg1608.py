"""AMG1608: per-annotator valence/arousal ratings of 1,608 songs, as an annotation table.

The corpus ships a MATLAB file whose variable `song_label` has the shape
songs x annotators x 2 with (valence, arousal) in the last axis; an annotator who did not rate
a song has NaN there. Songs are rows in the corpus' own order, so their ids come from a
separate mapping: a text/CSV file with one id per song in that order (or two columns,
position and id), a `song_id`/`song_ids` variable inside the .mat, or by default the 1-based
row number.

Output: the tidy table of `trompa_mer.datasets.annotations` — user (annotator column, 1-based,
as str), song (str, lowercase), quadrant (0..3, 0 counts as positive), arousal, valence.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import MERError
from ..quadrants import quadrant_from_av
from .annotations import COLUMNS

LABEL_VARIABLE = "song_label"
_ID_VARIABLES = ("song_id", "song_ids", "songid")


def _read_mat(path: Path) -> dict:
    from scipy.io import loadmat

    try:
        return loadmat(path)
    except NotImplementedError:  # MATLAB v7.3 files are HDF5, which scipy does not read
        raise MERError(f"{path}: MATLAB v7.3 (HDF5) file; save it with -v7 or earlier to read it here") from None
    except (ValueError, TypeError, OSError, IndexError) as err:  # scipy's errors on a damaged file vary
        raise MERError(f"{path}: not a readable MATLAB .mat file ({err})") from None


def _ids_from_file(path: Path, n_songs: int) -> list[str]:
    if not path.exists():
        raise MERError(f"{path}: song-id mapping file not found")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [[cell.strip() for cell in line.replace(";", ",").replace("\t", ",").split(",")] for line in lines]
    if rows and len(rows) == n_songs + 1:  # a header line
        rows = rows[1:]
    if len(rows) != n_songs:
        raise MERError(f"{path}: expected one song id per song of {LABEL_VARIABLE} ({n_songs}), "
                       f"got {len(rows)} lines")
    if all(len(r) >= 2 for r in rows):
        try:
            positions = [int(float(r[0])) for r in rows]
        except ValueError:
            positions = None
        if positions is not None:
            order = np.argsort(positions, kind="stable")
            if sorted(positions) not in (list(range(n_songs)), list(range(1, n_songs + 1))):
                raise MERError(f"{path}: first column: expected song positions 0..{n_songs - 1} or 1..{n_songs}")
            return [rows[i][1].lower() for i in order]
    return [r[0].lower() for r in rows]


def load_amg1608(mat_path, ids_path=None) -> pd.DataFrame:
    """Read `song_label` (songs x annotators x (valence, arousal)) into the annotation table."""
    mat_path = Path(mat_path)
    if not mat_path.exists():
        raise MERError(f"{mat_path}: AMG1608 .mat file not found")
    data = _read_mat(mat_path)
    if LABEL_VARIABLE not in data:
        found = ", ".join(k for k in data if not k.startswith("__")) or "none"
        raise MERError(f"{mat_path}: missing variable {LABEL_VARIABLE!r} (found: {found})")
    labels = np.asarray(data[LABEL_VARIABLE], dtype=float)
    if labels.ndim != 3 or labels.shape[2] != 2:
        raise MERError(f"{mat_path}: variable {LABEL_VARIABLE!r}: expected shape songs x annotators x 2 "
                       f"(valence, arousal), got {labels.shape}")
    n_songs = labels.shape[0]
    if ids_path is not None:
        ids = _ids_from_file(Path(ids_path), n_songs)
    else:
        key = next((k for k in _ID_VARIABLES if k in data), None)
        if key is not None:
            raw = np.asarray(data[key]).ravel()
            if raw.size != n_songs:
                raise MERError(f"{mat_path}: variable {key!r}: expected {n_songs} song ids, got {raw.size}")
            ids = [str(np.asarray(v).ravel()[0]).strip().lower() if np.asarray(v).size else "" for v in raw]
        else:
            ids = [str(i + 1) for i in range(n_songs)]
    if len(set(ids)) != len(ids) or any(not s for s in ids):
        raise MERError(f"{ids_path or mat_path}: song ids must be unique and non-empty")
    valence, arousal = labels[..., 0], labels[..., 1]
    rated = ~(np.isnan(valence) | np.isnan(arousal))
    if np.isinf(labels).any():
        raise MERError(f"{mat_path}: variable {LABEL_VARIABLE!r}: contains infinite ratings")
    song_idx, annotator_idx = np.nonzero(rated)
    if song_idx.size == 0:
        raise MERError(f"{mat_path}: variable {LABEL_VARIABLE!r}: no ratings (all NaN)")
    a = arousal[song_idx, annotator_idx]
    v = valence[song_idx, annotator_idx]
    table = pd.DataFrame({
        "user": (annotator_idx + 1).astype(str),
        "song": np.asarray(ids, dtype=object)[song_idx],
        "quadrant": quadrant_from_av(a, v),
        "arousal": a,
        "valence": v,
    })
    return table[COLUMNS].reset_index(drop=True)
