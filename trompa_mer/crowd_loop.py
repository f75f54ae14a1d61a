"""The crowd-aware member (trompa_mer.crowd) in the live personalization loop.

A user created with `create_user.py --crowd-member` gets, beside their audio committee:
    crowd_features.csv   every pool song's crowd features *without this user*: song,
                         crowd_Q1..crowd_Q4 (other listeners' relative frequencies),
                         crowd_log_listeners (log(1 + their number)), crowd_none (1 when no
                         other listener annotated the song), n_listeners; a snapshot taken at
                         creation, like consensus.csv
    crowd-NNNN/          the user's crowd members after NNNN rounds (state["crowd"] names it)
    base-crowd/          the crowd members as pre-trained at creation (cumulative restarts here)
A crowd folder holds `crowd.json` (members, files, sha256 of every file, provenance), one
`<name>.npz` + `<name>.json` per member (CrowdMember.save) and `audio_scaler.npz`: the
committee's stored scaler at creation (mean, scale), which standardizes a song's mean window
features into the members' audio columns. Folders are written under a temporary name and
renamed into place; state.json, written last, is the commit point (trompa_mer.users).

A member's input row for a song is [its 6 crowd columns | the song's standardized mean window
features]. A song without other listeners, or one the crowd table does not know (a song added
to the pool after creation, an outside file given to predict_emotion), gets the none-indicator
row (frequencies 0, log 0, none = 1), so every song gets a prediction.

How it combines with the audio committee (docs/loop.md, "The crowd-aware member in the
loop"): the listener's prediction is the crowd members' mean probability alone; the audio
committee's probabilities are still reported beside it. Offline (docs/experiments.md,
"Crowd-aware member (issue 7)") averaging the two was worse than the crowd members alone
(-.04 to -.05 weighted F1, p < .01) and the crowd members beat the audio committee by ~.29.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from . import atomic
from .errors import MERError
from .quadrants import QUADRANTS, quadrant_name

CROWD_FEATURES_FILE = "crowd_features.csv"
CROWD_PREFIX = "crowd-"          # crowd-NNNN: the user's crowd members after NNNN rounds
BASE_CROWD = "base-crowd"        # as pre-trained at creation
MANIFEST = "crowd.json"
SCALER_FILE = "audio_scaler.npz"
FORMAT_VERSION = 1
# crowd.pretrain_crowd_members needs at least 10 examples; 5 song splits need a few songs and
# each training split at least two quadrants
MIN_EXAMPLES = 10
MIN_SONGS = 5
# queries for a crowd user follow the crowd members (see get_hard_tracks in docs/loop.md)
QUERY_SOURCE = "crowd"


def crowd_folder_name(iteration: int) -> str:
    return f"{CROWD_PREFIX}{int(iteration):04d}"


def crowd_columns() -> list[str]:
    from .crowd import CROWD_COLUMNS

    return list(CROWD_COLUMNS)


def none_row() -> np.ndarray:
    """The crowd features of a song no other listener annotated."""
    from .crowd import crowd_features

    return crowd_features(pd.DataFrame({"user": [], "song": [], "quadrant": []}), ["?"])[0]


# --- the members as one folder ---------------------------------------------------------------
class CrowdSet:
    """A user's crowd members plus the standardization of their audio columns."""

    def __init__(self, members, mean, scale, feature_names, manifest: dict | None = None):
        self.members = list(members)  # [(name, CrowdMember)]
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.feature_names = list(feature_names)
        self.manifest = dict(manifest or {})

    def names(self) -> list[str]:
        return [name for name, _ in self.members]

    def inputs(self, crowd_rows, song_means_raw) -> np.ndarray:
        """(n, 6 + features) member input rows from crowd rows and raw mean window features."""
        crowd_rows = np.asarray(crowd_rows, dtype=np.float64).reshape(-1, len(crowd_columns()))
        raw = np.asarray(song_means_raw, dtype=np.float64).reshape(len(crowd_rows), -1)
        if raw.shape[1] != len(self.mean):
            raise MERError(f"features: the crowd members expect {len(self.mean)} audio columns, "
                           f"got {raw.shape[1]}")
        audio = (raw - self.mean) / self.scale
        return np.hstack([crowd_rows, audio]).astype(np.float32)

    def proba(self, X_in) -> np.ndarray:
        """(n_members, n, 4) every member's probabilities."""
        return np.stack([member.predict_proba(X_in) for _, member in self.members])

    def update(self, X_in, y) -> None:
        for _, member in self.members:
            member.update(X_in, np.asarray(y, dtype=np.int64))

    def save(self, directory) -> Path:
        """Write a new folder and swap it in place of `directory` (a reader never sees half)."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
        try:
            self._write(tmp)
            atomic.replace_dir(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    def _write(self, folder: Path) -> None:
        from .committee import sha256_file

        with atomic.atomic_open(folder / SCALER_FILE, "wb") as handle:
            np.savez(handle, mean=self.mean, scale=self.scale)
        files = [SCALER_FILE]
        entries = []
        for name, member in self.members:
            written = member.save(folder / name)
            files.extend(written)
            entries.append({"name": name, "algorithm": member.algorithm,
                            "input_kind": member.input_kind, "files": written})
        manifest = dict(self.manifest)
        manifest.update(format=FORMAT_VERSION, classes=list(QUADRANTS), crowd_columns=crowd_columns(),
                        feature_names=self.feature_names, scaler=SCALER_FILE, members=entries,
                        checksums={f: sha256_file(folder / f) for f in files})
        atomic.write_json(folder / MANIFEST, manifest)
        self.manifest = manifest

    @classmethod
    def load(cls, directory) -> "CrowdSet":
        """Load and verify a crowd folder (every file's sha256 against crowd.json)."""
        from .committee import sha256_file
        from .crowd import CrowdMember

        directory = Path(directory)
        atomic.recover_dir(directory)
        manifest_path = directory / MANIFEST
        if not manifest_path.is_file():
            raise MERError(f"{manifest_path}: missing (not a crowd-member folder; recreate the user)")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise MERError(f"{manifest_path}: not valid JSON ({err})") from None
        for field in ("members", "checksums", "scaler", "feature_names"):
            if field not in manifest:
                raise MERError(f"{manifest_path}: field {field!r} missing")
        if manifest.get("classes") != list(QUADRANTS):
            raise MERError(f"{manifest_path}: field 'classes' is {manifest.get('classes')}, "
                           f"expected {list(QUADRANTS)}")
        listed = {manifest["scaler"]} | {f for m in manifest["members"] for f in m.get("files", [])}
        unlisted = sorted(listed - set(manifest["checksums"]))
        if unlisted:
            raise MERError(f"{manifest_path}: field 'checksums' has no entry for {unlisted[0]}")
        for name, digest in manifest["checksums"].items():
            path = directory / name
            if Path(name).name != name:
                raise MERError(f"{manifest_path}: file name {name!r} must not contain a folder")
            if not path.is_file():
                raise MERError(f"{path}: listed in {MANIFEST} but missing")
            if sha256_file(path) != digest:
                raise MERError(f"{path}: checksum does not match {MANIFEST} "
                               "(the file was changed or damaged after it was saved)")
        try:
            with np.load(directory / manifest["scaler"], allow_pickle=False) as data:
                mean, scale = np.asarray(data["mean"]), np.asarray(data["scale"])
        except (OSError, ValueError, KeyError) as err:
            raise MERError(f"{directory / manifest['scaler']}: not a readable scaler ({err})") from None
        members = []
        for entry in manifest["members"]:
            name = entry.get("name")
            if not name or Path(name).name != name:
                raise MERError(f"{manifest_path}: member name {name!r} is not a plain name")
            members.append((name, CrowdMember.load(directory / name)))
        return cls(members, mean, scale, manifest["feature_names"], manifest)


# --- the pool's crowd table --------------------------------------------------------------------
def pool_crowd_table(annotations: pd.DataFrame, song_ids, user_id) -> pd.DataFrame:
    """Crowd features of every pool song with `user_id`'s annotations left out (index song)."""
    from .crowd import crowd_features, song_counts

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


def song_means(X, offsets) -> np.ndarray:
    """(songs, features) mean window features; song i's windows are X[offsets[i]:offsets[i+1]].

    The values of Pool.song_mean (float64 sums, cast to float32) without its float64 copy of
    the whole pool (1.2 GB for 10,000 songs x 60 windows); every step computes them this way.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    sums = np.add.reduceat(np.asarray(X), offsets[:-1], axis=0, dtype=np.float64)
    return (sums / np.diff(offsets)[:, None]).astype(np.float32)


def _song_means(windows_by_song: dict, songs) -> np.ndarray:
    parts = [np.asarray(windows_by_song[s]) for s in songs]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])])
    return song_means(np.concatenate(parts), offsets)


# --- create -------------------------------------------------------------------------------------
def prepare(annotations_path, user_id, committee, feats_dir, seed: int = 1987):
    """Pre-train `user_id`'s crowd members and compute the pool's crowd table (no file written).

    Returns (CrowdSet, crowd table, summary). The user's own annotations reach neither the
    members' training examples nor any crowd feature.
    """
    from .committee import check_feature_names
    from .crowd import pretrain_crowd_members
    from .datasets.annotations import load_annotations

    if annotations_path is None or not Path(annotations_path).is_file():
        raise MERError(f"annotations: {annotations_path} not found; --crowd-member needs the "
                       f"multi-listener annotations (pass --annotations FILE or set MER_ANNOTATIONS)")
    from .loop import _load_pool  # here: loop imports this module

    feats_dir = Path(feats_dir)
    pool = _load_pool(feats_dir)  # the loop's own refusals of a missing or empty pool
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
    crowd = CrowdSet([(f"crowd_{k}", m) for k, m in enumerate(members)], mean, scale,
                     committee.feature_names, manifest)
    crowd_table = pool_crowd_table(table, song_ids, user_id)
    summary = {"crowd_members": len(members), "crowd_examples": int(len(others)),
               "crowd_songs": int(len(song_ids)),
               "crowd_songs_without_listeners": int((crowd_table["n_listeners"] == 0).sum()),
               "crowd_prior_strength": float(members[0].prior_strength)}
    return crowd, crowd_table, summary


def writer(crowd: CrowdSet, table: pd.DataFrame):
    """A callback for UserStore.create: writes the crowd files into the folder being assembled
    and returns the state fields that name them."""
    def write(folder: Path) -> dict:
        write_crowd_table(table, folder / CROWD_FEATURES_FILE)
        name = crowd_folder_name(0)
        _write_new(crowd, folder / name)
        _write_new(crowd, folder / BASE_CROWD)
        return {"crowd": name}
    return write


def _write_new(crowd: CrowdSet, directory: Path) -> None:
    directory.mkdir()
    crowd._write(directory)


# --- reading a user's crowd --------------------------------------------------------------------
def has_crowd(state: dict) -> bool:
    return bool(state.get("crowd"))


def user_crowd(store, user_id, state: dict):
    """(CrowdSet, crowd table) of a user created with --crowd-member, else None."""
    if not has_crowd(state):
        return None
    user_dir = store.user_dir(user_id)
    return CrowdSet.load(user_dir / state["crowd"]), read_crowd_table(user_dir / CROWD_FEATURES_FILE)


def pool_proba(crowd: CrowdSet, table: pd.DataFrame, pool) -> np.ndarray:
    """(n_members, n_pool_songs, 4) the crowd members' probabilities of every pool song."""
    song_ids = np.asarray(pool.song_ids).tolist()
    return crowd.proba(crowd.inputs(crowd_rows(table, song_ids), song_means(pool.X, pool.offsets)))


# --- retrain -------------------------------------------------------------------------------------
def retrain_step(store, user_id, state: dict, training: dict, feats: dict, update: str):
    """Update the user's crowd members on `training` ({song: quadrant index}) and save them as
    the next crowd-NNNN folder; returns its name (None for a user without crowd members).

    cumulative: start again from base-crowd and update on every answer so far (`training` holds
    them all); batch: continue the current crowd members on this round's answers. The caller
    commits by writing a state that names the folder.
    """
    if not has_crowd(state):
        return None
    user_dir = store.user_dir(user_id)
    start = user_dir / (BASE_CROWD if update == "cumulative" else state["crowd"])
    if not start.is_dir():
        raise MERError(f"{start}: missing; the user's crowd members start from it (recreate the user"
                       f"{'' if update == 'batch' else ', or use --update batch'})")
    crowd = CrowdSet.load(start)
    table = read_crowd_table(user_dir / CROWD_FEATURES_FILE)
    songs = sorted(training)
    X_in = crowd.inputs(crowd_rows(table, songs), _song_means(feats, songs))
    crowd.update(X_in, [training[s] for s in songs])
    name = crowd_folder_name(int(state["iteration"]) + 1)
    crowd.save(user_dir / name)
    return name


# --- predict --------------------------------------------------------------------------------------
def predict_keys(crowd: CrowdSet, table: pd.DataFrame, X_raw, input_path, song_id=None) -> dict:
    """The JSON keys predict_emotion -u adds for a user with crowd members.

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
    mean_raw = song_means(X_raw, [0, len(X_raw)])
    proba = crowd.proba(crowd.inputs(rows, mean_raw))[:, 0, :]
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

