"""Multi-listener annotation tables: the TROMPA-MER platform export and a plain CSV.

Both load into one tidy table with the columns
    user (str), song (str, lowercase), quadrant (int 0..3), arousal (float), valence (float)
where arousal/valence are NaN when the source gave a quadrant only.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import MERError
from ..quadrants import parse_quadrant, quadrant_from_av
from .tables import read_csv_table

COLUMNS = ["user", "song", "quadrant", "arousal", "valence"]

# Header aliases accepted in a plain CSV (lowercased).
_USER_KEYS = ("user", "user_id", "userid", "annotator")
_SONG_KEYS = ("song", "song_id", "s_id", "track_id", "externalid")
_QUADRANT_KEYS = ("quadrant", "label", "quad")


def load_annotations(path) -> pd.DataFrame:
    """Load a TROMPA-MER JSON export (.json) or an annotation CSV (.csv)."""
    path = Path(path)
    if path.is_dir():
        raise MERError(f"{path}: is a folder (expected an annotation file: a TROMPA-MER export .json "
                       f"or a CSV user, song, quadrant)")
    if not path.exists():
        raise MERError(f"{path}: annotation file not found")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return load_trompa_annotations(path)
    if suffix in (".csv", ".tsv"):
        return load_annotation_csv(path)
    raise MERError(f"{path}: expected a TROMPA-MER export (.json) or an annotation table (.csv)")


def _number(value, path, index, field) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MERError(f"{path}: annotation {index}, field {field!r}: expected a number, got {value!r}")
    if not np.isfinite(number):
        raise MERError(f"{path}: annotation {index}, field {field!r}: expected a finite number, got {value!r}")
    return number


def load_trompa_annotations(path) -> pd.DataFrame:
    """Read the platform export `{"annotations": [...], "users": [...], "moods": [...]}`.

    The user key is `userid` in the 2021 export and `userId` in later ones: both are read.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as err:
        raise MERError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    except UnicodeDecodeError:
        raise MERError(f"{path}: not UTF-8 text (expected a TROMPA-MER export)") from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise MERError(f"{path}: expected a JSON object with an 'annotations' list (TROMPA-MER export)")
    rows = []
    for index, item in enumerate(data["annotations"]):
        if not isinstance(item, dict):
            raise MERError(f"{path}: annotation {index}: expected an object")
        user = item.get("userid", item.get("userId"))
        if user is None or str(user).strip() == "":
            raise MERError(f"{path}: annotation {index}: missing field 'userid' (or 'userId')")
        song = item.get("externalID")
        if not song:
            raise MERError(f"{path}: annotation {index}: missing field 'externalID'")
        for field in ("arousalValue", "valenceValue"):
            if item.get(field) is None:
                raise MERError(f"{path}: annotation {index}: missing field {field!r}")
        arousal = _number(item["arousalValue"], path, index, "arousalValue")
        valence = _number(item["valenceValue"], path, index, "valenceValue")
        rows.append((str(user).strip(), str(song).strip().lower(), arousal, valence))
    if not rows:
        raise MERError(f"{path}: the export holds no annotations")
    table = pd.DataFrame(rows, columns=["user", "song", "arousal", "valence"])
    table["quadrant"] = quadrant_from_av(table["arousal"], table["valence"])
    return table[COLUMNS]


def _pick(columns: dict, keys, path, what) -> str | None:
    for key in keys:
        if key in columns:
            return columns[key]
    return None


def load_annotation_csv(path) -> pd.DataFrame:
    """Read a CSV with a user column, a song column, and a quadrant or arousal+valence columns."""
    path = Path(path)
    raw = read_csv_table(path, "a CSV with columns user, song and quadrant (or arousal, valence)",
                         "annotation")
    columns = {str(c).strip().lower(): c for c in raw.columns}
    user_col = _pick(columns, _USER_KEYS, path, "user")
    song_col = _pick(columns, _SONG_KEYS, path, "song")
    quad_col = _pick(columns, _QUADRANT_KEYS, path, "quadrant")
    if user_col is None:
        raise MERError(f"{path}: missing a user column (one of {', '.join(_USER_KEYS)})")
    if song_col is None:
        raise MERError(f"{path}: missing a song column (one of {', '.join(_SONG_KEYS)})")
    has_av = "arousal" in columns and "valence" in columns
    if quad_col is None and not has_av:
        raise MERError(f"{path}: needs a 'quadrant' column or both 'arousal' and 'valence' columns")
    table = pd.DataFrame({
        "user": raw[user_col].astype(str).str.strip(),
        "song": raw[song_col].astype(str).str.strip().str.lower(),
    })
    if has_av:
        table["arousal"] = [_number(v, path, i, "arousal") for i, v in enumerate(raw[columns["arousal"]])]
        table["valence"] = [_number(v, path, i, "valence") for i, v in enumerate(raw[columns["valence"]])]
    else:
        table["arousal"] = np.nan
        table["valence"] = np.nan
    if quad_col is not None:
        table["quadrant"] = [parse_quadrant(v, f"{path}: row {i + 2}, field {quad_col!r}")
                             for i, v in enumerate(raw[quad_col])]
    else:
        table["quadrant"] = quadrant_from_av(table["arousal"], table["valence"])
    bad = table.index[(table["user"] == "") | (table["song"] == "") | table["user"].eq("nan") | table["song"].eq("nan")]
    if len(bad):
        raise MERError(f"{path}: row {bad[0] + 2}: empty user or song")
    if table.empty:
        raise MERError(f"{path}: no annotations")
    return table[COLUMNS]
