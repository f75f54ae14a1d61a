"""Playlist groups for get_recommendations: a CSV of (group, song)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import MERError
from .tables import read_csv_table


def read_playlists(path) -> pd.DataFrame:
    """A CSV with a group column and a song column -> DataFrame[group, song] (song lowercase)."""
    path = Path(path)
    raw = read_csv_table(path, "a CSV with columns group, song", "playlist")
    columns = {str(c).strip().lower(): c for c in raw.columns}
    group_col = next((columns[k] for k in ("group", "playlist", "group_id", "playlist_id") if k in columns), None)
    song_col = next((columns[k] for k in ("song", "song_id", "s_id", "track_id", "externalid") if k in columns), None)
    if group_col is None or song_col is None:
        raise MERError(f"{path}: expected columns 'group' and 'song' (or song_id), got {', '.join(map(str, raw.columns))}")
    return pd.DataFrame({"group": raw[group_col].astype(str).str.strip(),
                         "song": raw[song_col].astype(str).str.strip().str.lower()})
