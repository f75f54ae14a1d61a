"""The crowd-aware member (trompa_mer.crowd) in the live personalization loop.

A user created with `create_user.py --crowd-member` has a committee with crowd-aware members
beside the audio ones (input kind "crowd+features"; trompa_mer.users stores them in their own
crowd-NNNN/ and base-crowd/ folders, committee.CROWD_LAYOUT) and a snapshot of the pool's
crowd table taken at creation, like consensus.csv:
    crowd_features.csv   every pool song's crowd features *without this user*: song,
                         crowd_Q1..crowd_Q4 (other listeners' relative frequencies),
                         crowd_log_listeners (log(1 + their number)), crowd_none (1 when no
                         other listener annotated the song), n_listeners
A crowd member's input row for a song is [its 6 crowd columns | the song's standardized mean
window features]. A song without other listeners, or one the crowd table does not know (a song
added to the pool after creation, an outside file given to predict_emotion), gets the
none-indicator row (frequencies 0, log 0, none = 1), so every song gets a prediction.

How it combines with the audio members (docs/loop.md, "The crowd-aware member in the loop"):
the listener's prediction is the crowd members' mean probability alone
(Committee.listener_members); the audio members' probabilities are still reported beside it.
Offline (docs/experiments.md, "Crowd-aware member (issue 7)") averaging the two was worse than
the crowd members alone (-.04 to -.05 weighted F1, p < .01) and the crowd members beat the
audio committee by ~.29.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import atomic
from .committee import CROWD_LAYOUT, Committee, Songs, Standardizer, check_feature_names, song_means
from .crowd import CROWD_COLUMNS, crowd_features
from .errors import MERError
from .quadrants import quadrant_name

# crowd.pretrain_crowd_members needs at least 10 examples; 5 song splits need a few songs and
# each training split at least two quadrants
MIN_EXAMPLES = 10
MIN_SONGS = 5
# queries for a crowd user follow the crowd members (see get_hard_tracks in docs/loop.md)
QUERY_SOURCE = "crowd"


def crowd_columns() -> list[str]:
    return list(CROWD_COLUMNS)


def none_row() -> np.ndarray:
    """The crowd features of a song no other listener annotated."""
    return crowd_features(pd.DataFrame({"user": [], "song": [], "quadrant": []}), ["?"])[0]


# --- the pool's crowd table --------------------------------------------------------------------
def pool_crowd_table(annotations: pd.DataFrame, song_ids, user_id) -> pd.DataFrame:
    """Crowd features of every pool song with `user_id`'s annotations left out (index song)."""
    from .crowd import song_counts

    songs = [str(s) for s in song_ids]
    rows = crowd_features(annotations, songs, exclude_users=[user_id])
    table = pd.DataFrame(rows, index=pd.Index(songs, name="song"), columns=crowd_columns())
    table["n_listeners"] = song_counts(annotations, songs, exclude_users=[user_id]).sum(axis=1).astype(int)
    return table


def write_crowd_table(table: pd.DataFrame, path) -> None:
    """song, crowd columns (unrounded: Python's shortest round-trip repr), n_listeners."""
    out = table.reset_index()[["song", *crowd_columns(), "n_listeners"]]
    with atomic.atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        out.to_csv(handle, index=False)


def read_crowd_table(path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise MERError(f"{path}: missing; the user's crowd members need the pool's crowd features "
                       f"(recreate the user with --crowd-member)")
    try:
        table = pd.read_csv(path, dtype={"song": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise MERError(f"{path}: cannot parse as CSV ({err})") from None
    missing = [c for c in ("song", *crowd_columns(), "n_listeners") if c not in table.columns]
    if missing:
        raise MERError(f"{path}: missing column(s) {', '.join(missing)}")
    return table.set_index("song")


def crowd_rows(table: pd.DataFrame, songs) -> np.ndarray:
    """(len(songs), 6) crowd rows; songs the table does not know get the none-indicator row."""
    rows = table.reindex([str(s) for s in songs])[crowd_columns()].to_numpy(dtype=float)
    unknown = np.isnan(rows).any(axis=1)
    if unknown.any():
        rows[unknown] = none_row()
    return rows


# --- create -------------------------------------------------------------------------------------
def prepare(annotations_path, user_id, committee, feats_dir, pool, seed: int = 1987):
    """Pre-train `user_id`'s crowd members and compute the pool's crowd table (no file written).

    Returns (the crowd members as a committee with CROWD_LAYOUT, crowd table, summary). The
    user's own annotations reach neither the members' training examples nor any crowd feature.
    """
    from .crowd import pretrain_crowd_members
    from .datasets.annotations import load_annotations

    if annotations_path is not None and Path(annotations_path).is_dir():
        raise MERError(f"annotations: {annotations_path} is a folder; --crowd-member needs the "
                       f"multi-listener annotations file (pass --annotations FILE or set MER_ANNOTATIONS)")
    if annotations_path is None or not Path(annotations_path).is_file():
        raise MERError(f"annotations: {annotations_path} not found; --crowd-member needs the "
                       f"multi-listener annotations (pass --annotations FILE or set MER_ANNOTATIONS)")
    feats_dir = Path(feats_dir)
    check_feature_names(committee.feature_names, pool.feature_names, f"{feats_dir} (pool)")
    table = load_annotations(annotations_path)
    song_ids = np.asarray(pool.song_ids).tolist()
    scaler = committee.scaler
    mean = np.asarray(scaler.mean_, dtype=np.float64)
    scale = np.asarray(scaler.scale_, dtype=np.float64)
    audio = (song_means(pool.X, pool.offsets).astype(np.float64) - mean) / scale
    song_audio = dict(zip(song_ids, audio))
    others = table[(table["user"] != str(user_id)) & table["song"].isin(set(song_ids))]
    n_songs = others["song"].nunique()
    n_quadrants = others["quadrant"].nunique()
    if len(others) < MIN_EXAMPLES or n_songs < MIN_SONGS or n_quadrants < 2:
        raise MERError(f"{annotations_path}: {len(others)} annotations by other listeners of {n_songs} "
                       f"pool songs ({feats_dir}) in {n_quadrants} quadrant(s); the crowd-aware member "
                       f"needs at least {MIN_EXAMPLES} annotations of {MIN_SONGS} pool songs in 2 "
                       f"quadrants (user {user_id!r} excluded)")
    try:
        members = pretrain_crowd_members(table, song_audio, str(user_id), seed=seed)
    except ValueError as err:  # scikit-learn: a training split with a single quadrant
        raise MERError(f"{annotations_path}: cannot pre-train the crowd-aware member for user "
                       f"{user_id!r} on {len(others)} annotations of {n_songs} pool songs ({err})") from None
    manifest = {
        "user_id": str(user_id),
        "annotations_source": str(Path(annotations_path).resolve()),
        "excluded_user": str(user_id),
        "n_examples": int(len(others)),
        "n_songs": int(n_songs),
        "prior_strength": float(members[0].prior_strength),
        "pretraining": "leave-one-out (trompa_mer.crowd.pretrain_crowd_members), 5 song splits",
        "audio_columns": "the song's mean window features standardized with the committee's scaler",
    }
    crowd = Committee([(f"crowd_{k}", m) for k, m in enumerate(members)], Standardizer(mean, scale),
                      committee.feature_names, manifest, CROWD_LAYOUT)
    crowd_table = pool_crowd_table(table, song_ids, user_id)
    summary = {"crowd_members": len(members), "crowd_examples": int(len(others)),
               "crowd_songs": int(len(song_ids)),
               "crowd_songs_without_listeners": int((crowd_table["n_listeners"] == 0).sum()),
               "crowd_prior_strength": float(members[0].prior_strength)}
    return crowd, crowd_table, summary


# --- predict --------------------------------------------------------------------------------------
def predict_keys(committee, table: pd.DataFrame, X_raw, input_path, song_id=None) -> dict:
    """The JSON keys predict_emotion -u adds for a user with crowd members (the committee's
    listener members).

    The song is the one named by `song_id`, else the input file's stem when the crowd table
    (the pool at creation) has it, else unknown to the crowd (the none-indicator row).
    """
    if song_id is not None:
        song = str(song_id).strip().lower()
        if song not in table.index:
            raise MERError(f"--song-id {song_id}: not a song of the user's crowd table "
                           f"({len(table)} pool songs at creation); omit --song-id for a song the "
                           f"other listeners have not annotated")
    else:
        from .features import song_id_from_path

        stem = song_id_from_path(input_path)
        song = stem if stem in table.index else None
    n_listeners = int(table.loc[song, "n_listeners"]) if song is not None else 0
    rows = crowd_rows(table, [song if song is not None else ""])
    crowd = committee.listener()
    songs = Songs.from_offsets(X_raw, [0, len(X_raw)], [song or ""], crowd=rows)
    proba = crowd.song_proba(songs)[:, 0, :]
    mean = proba.mean(axis=0)
    quad = quadrant_name(int(mean.argmax()))
    return {
        "crowd": {"song_id": song, "n_listeners": n_listeners, "mean_probs": mean.tolist(),
                  "highest_prob_quad": quad,
                  "member_probs": {n: p.tolist() for n, p in zip(crowd.names(), proba)}},
        # what to show the listener: the crowd members (docs/loop.md); the audio committee's
        # probabilities stay in mean_probs and the other original keys
        "listener_probs": mean.tolist(),
        "listener_quad": quad,
        "listener_source": "crowd",
    }

