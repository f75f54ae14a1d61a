"""A committee: members of any input kind + the feature scaler, saved as one checksummed folder.

Folder layout (trompa_mer.checksummed writes and verifies it):
  committee.json        manifest: members (name, algorithm, input kind, files), feature names,
                        classes, provenance (corpus, label mapping, splits, scores, command),
                        library versions, sha256 of every other file
  scaler.npy            the committee's training windows' means and scales (2 x features,
                        float64; Standardizer); folders written before 2026-12-05 hold a
                        scikit-learn StandardScaler as scaler.skops instead, still read
  <member>.<ext>, <member>.json   one model file + metadata per member (see members.py)

A --crowd-member user's crowd-aware members are kept in a folder of their own with the crowd
layout (crowd.json, audio_scaler.npz: see CROWD_LAYOUT); Committee.join makes one committee of
the two, and trompa_mer.users stores each part in its folder.

The committee reads a batch of songs (`Songs`) and hands every member the input its declared
kind needs (members.INPUT_KINDS), resolved once when the committee is built:
  features        standardized window rows; a song's probability is the mean of its windows'
  audio           the songs' audio (members.SongAudio); one row per song
  crowd+features  [other listeners' crowd columns | the song's standardized mean window
                  features]; one row per song
Song probabilities of every member: `song_proba(songs)` -> (members, songs, 4). Learning:
`update(songs, y)` with one label per song.
"""
from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import atomic
from .checksummed import BlobStore, materialized, read_manifest, save_new_folder, share_files, write_manifest
from .errors import MERError
from .members import INPUT_KINDS, TARGET_KINDS, SongAudio, skops_load
from .registry import member_class
from .quadrants import N_CLASSES, QUADRANTS, Labels

MANIFEST = "committee.json"
SCALER_FILE = "scaler.npy"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Layout:
    """How a committee folder names its manifest and stores its scaler."""

    manifest: str
    scaler_file: str
    what: str           # the folder's content, in messages
    missing_hint: str   # what a folder without the manifest probably is
    classes_required: bool


COMMITTEE_LAYOUT = Layout(MANIFEST, SCALER_FILE, "committee", "not a committee folder", False)
# The crowd-aware members of a --crowd-member user (trompa_mer.users keeps them in crowd-NNNN):
# the scaler is the committee's at the user's creation, as plain mean/scale arrays.
CROWD_LAYOUT = Layout("crowd.json", "audio_scaler.npz", "crowd members",
                      "not a crowd-member folder; recreate the user", True)


class Standardizer:
    """Training means and scales of the window features (what a StandardScaler keeps).

    Saved as plain arrays, so loading a committee needs no scikit-learn: `.npy` (one 2 x
    features array, mean then scale: np.save writes the same bytes for the same statistics,
    so the shared store keeps one copy across users and rounds) or `.npz` (the crowd layout).
    """

    def __init__(self, mean, scale):
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.scale_ = np.asarray(scale, dtype=np.float64)
        self.n_features_in_ = len(self.mean_)

    def transform(self, X) -> np.ndarray:
        """StandardScaler.transform's arithmetic, bit for bit: a float input keeps its dtype,
        anything else becomes float64; then, on a copy, X -= mean and X /= scale
        with the statistics cast to X's dtype first."""
        X = np.asarray(X)
        X = np.array(X, dtype=X.dtype if X.dtype in (np.float64, np.float32, np.float16) else np.float64, copy=True)
        X -= self.mean_.astype(X.dtype)
        X /= self.scale_.astype(X.dtype)
        return X

    def save(self, path) -> None:
        path = Path(path)
        with atomic.atomic_open(path, "wb") as handle:
            if path.suffix == ".npy":
                np.save(handle, np.vstack([self.mean_, self.scale_]), allow_pickle=False)
            else:
                np.savez(handle, mean=self.mean_, scale=self.scale_)

    @classmethod
    def load(cls, path) -> "Standardizer":
        path = Path(path)
        try:
            if path.suffix == ".npy":
                stacked = np.load(path, allow_pickle=False)
                if stacked.ndim != 2 or stacked.shape[0] != 2:
                    raise ValueError(f"expected a 2 x features array (mean, scale), got shape {stacked.shape}")
                return cls(stacked[0], stacked[1])
            with np.load(path, allow_pickle=False) as data:
                return cls(np.asarray(data["mean"]), np.asarray(data["scale"]))
        except (OSError, ValueError, KeyError) as err:
            raise MERError(f"{path}: not a readable scaler ({err})") from None


def _save_scaler(scaler, path: Path) -> None:
    # always plain arrays (a folder's layout names scaler.npy or, crowd members, .npz); a
    # StandardScaler read from an older folder's scaler.skops is written as its statistics
    Standardizer(scaler.mean_, scaler.scale_).save(path)


def _load_scaler(path: Path):
    return Standardizer.load(path) if path.suffix in (".npy", ".npz") else skops_load(path)


def library_versions() -> dict:
    import sklearn
    import skops
    import xgboost

    from . import __version__

    return {"python": platform.python_version(), "numpy": np.__version__,
            "scikit-learn": sklearn.__version__, "xgboost": xgboost.__version__,
            "skops": skops.__version__, "trompa_mer": __version__}


def check_feature_names(expected, actual, where: str) -> None:
    """Refuse a feature layout that differs from the committee's, naming the first difference."""
    expected, actual = list(expected), list(actual)
    if expected == actual:
        return
    if len(expected) != len(actual):
        raise MERError(f"{where}: expected {len(expected)} feature columns in the committee's "
                       f"layout, got {len(actual)}")
    i = next(i for i, (a, b) in enumerate(zip(expected, actual)) if a != b)
    raise MERError(f"{where}: feature column {i} is {actual[i]!r}, expected {expected[i]!r} "
                   "(feature layout differs from the committee's)")


def check_manifest(manifest: dict, manifest_path) -> None:
    """Refuse a committee manifest that is not a whole committee, before anything in the folder
    is deserialized: the format version known, feature names a non-empty list of distinct
    names, at least one member, each an object with a plain unique name, an algorithm and a
    list of files, the scaler entry one plain file name."""
    if manifest.get("format") != FORMAT_VERSION:
        raise MERError(f"{manifest_path}: field 'format' is {manifest.get('format')!r}, expected "
                       f"{FORMAT_VERSION} (a committee folder written by this version of trompa_mer)")
    names = manifest.get("feature_names")
    if (not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names)
            or len(set(names)) != len(names)):
        raise MERError(f"{manifest_path}: field 'feature_names': expected a non-empty list of distinct "
                       f"feature names")
    scaler = manifest.get("scaler")
    if not isinstance(scaler, str) or not scaler or Path(scaler).name != scaler:
        raise MERError(f"{manifest_path}: field 'scaler' is {scaler!r}, expected the scaler's file name")
    members = manifest.get("members")
    if not isinstance(members, list) or not members:
        raise MERError(f"{manifest_path}: field 'members' is {members!r}, expected a non-empty list of "
                       f"members (a committee without members cannot rank or predict)")
    seen = set()
    for index, entry in enumerate(members):
        if not isinstance(entry, dict):
            raise MERError(f"{manifest_path}: members[{index}]: expected an object, got {entry!r}")
        name = entry.get("name")
        if name in seen:
            raise MERError(f"{manifest_path}: member name {name!r} appears twice")
        seen.add(name)
        files = entry.get("files")
        if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
            raise MERError(f"{manifest_path}: member {name!r}: field 'files' is {files!r}, expected "
                           f"the list of its file names")
        if not isinstance(entry.get("algorithm"), str):
            raise MERError(f"{manifest_path}: member {name!r}: field 'algorithm' is "
                           f"{entry.get('algorithm')!r}, expected the member's algorithm name")
        if scaler in files:
            raise MERError(f"{manifest_path}: field 'scaler' names {scaler}, a file of member {name!r}")


def check_scaler(scaler, n_features: int, where: str) -> None:
    """Refuse a scaler entry that is not feature standardization statistics: mean_ and scale_,
    one finite value per feature, every scale > 0."""
    mean, scale = getattr(scaler, "mean_", None), getattr(scaler, "scale_", None)
    if mean is None or scale is None:
        raise MERError(f"{where}: not a scaler (a {type(scaler).__name__}; expected the standardization "
                       f"statistics of the committee's training windows)")
    mean, scale = np.asarray(mean, dtype=float), np.asarray(scale, dtype=float)
    if mean.shape != (n_features,) or scale.shape != (n_features,):
        raise MERError(f"{where}: the scaler standardizes {mean.size} features, the committee has "
                       f"{n_features} feature names")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise MERError(f"{where}: scaler statistics must be finite with every scale > 0")


def cap_confidence(proba, bound, iterations: int = 60) -> np.ndarray:
    """Soften each row p of `proba` to p ** (1/T) / sum (T >= 1, the smallest that works) so
    its highest probability is at most `bound` (one per row, >= 1/4); rows already within
    their bound are returned unchanged. The ranking of the quadrants is kept."""
    proba = np.array(proba, dtype=np.float64)
    bound = np.maximum(np.asarray(bound, dtype=np.float64), 1.0 / N_CLASSES)
    over = proba.max(axis=1) > bound
    if not over.any():
        return proba
    log_p = np.log(np.clip(proba[over], 1e-300, None))
    target = bound[over]
    lo, hi = np.zeros(len(log_p)), np.full(len(log_p), 30.0)  # log T: T in [1, e^30]

    def softened(log_t):
        z = log_p / np.exp(log_t)[:, None]
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    for _ in range(iterations):
        mid = (lo + hi) / 2
        too_sharp = softened(mid).max(axis=1) > target
        lo = np.where(too_sharp, mid, lo)
        hi = np.where(too_sharp, hi, mid)
    proba[over] = softened(hi)  # hi: always within the bound
    return proba


def _member_width(input_kind: str, n_features: int) -> int | None:
    """The number of columns a member of `input_kind` reads in a committee of n_features."""
    if input_kind == "features":
        return n_features
    if input_kind == "crowd+features":
        from .crowd import N_CROWD

        return N_CROWD + n_features
    if input_kind == "song-stats":
        return 2 * n_features
    return None


def song_means(X, offsets) -> np.ndarray:
    """(songs, features) mean window features; song i's windows are X[offsets[i]:offsets[i+1]].

    float64 sums cast to float32 (the values of Pool.song_mean) without a float64 copy of the
    whole pool (1.2 GB for 10,000 songs x 60 windows).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    sums = np.add.reduceat(np.asarray(X), offsets[:-1], axis=0, dtype=np.float64)
    return (sums / np.diff(offsets)[:, None]).astype(np.float32)


def song_statistics(Z, song_of_window, n_songs: int) -> np.ndarray:
    """(songs, 2 * features) float32: per song the mean, then the standard deviation (population,
    two-pass, in float64), of its windows' standardized features; a song without windows gets
    zeros. Windows may come in any order (`song_of_window` maps each to its song).

    One song at a time: memory stays bounded by a song (a float64 copy of a 10,000-song pool
    would be 1.2 GB), and on 10,000 songs x 60 windows this measured faster than blocked
    reductions (np.add.reduceat over blocks of 16-256 songs: 1.5-5 s against 0.7-1.9 s, under load)."""
    song_of_window = np.asarray(song_of_window, dtype=np.int64)
    out = np.zeros((n_songs, 2 * np.shape(Z)[1]), dtype=np.float32)
    if not len(song_of_window):
        return out
    order = None if np.all(np.diff(song_of_window) >= 0) else np.argsort(song_of_window, kind="stable")
    if order is not None:
        song_of_window = song_of_window[order]
    songs, starts, counts = np.unique(song_of_window, return_index=True, return_counts=True)
    for song, start, count in zip(songs, starts, counts):
        rows = order[start:start + count] if order is not None else slice(start, start + count)
        window = np.array(Z[rows], dtype=np.float64)  # a copy: centred in place below
        mean = window.mean(axis=0)
        window -= mean
        out[song, :len(mean)] = mean
        out[song, len(mean):] = np.sqrt((window * window).mean(axis=0))
    return out


@dataclass
class Songs:
    """A batch of songs as a committee reads them.

    X: raw window features; song_of_window: the index (into song_ids) of each window's song.
    What members of other input kinds read comes beside: `audio` (song id -> samples, for
    audio members), `crowd` ((songs, 6) other listeners' crowd columns, for crowd members).
    `prepared` ({input kind: input}) hands members of a kind an input built by the caller
    instead: the simulator standardizes each listener's windows once and builds the crowd
    rows after each answer itself.
    """

    X: object
    song_of_window: np.ndarray
    song_ids: list
    audio: object = None
    crowd: object = None
    prepared: dict = field(default_factory=dict)

    @classmethod
    def from_pool(cls, pool, audio=None, crowd=None) -> "Songs":
        return cls(pool.X, pool.song_of_window, list(np.asarray(pool.song_ids).tolist()), audio, crowd)

    @classmethod
    def from_windows(cls, X, song_of_window, song_ids=None, audio=None, crowd=None) -> "Songs":
        song_of_window = np.asarray(song_of_window, dtype=np.int64)
        n_songs = len(song_ids) if song_ids is not None else int(song_of_window.max(initial=-1)) + 1
        ids = list(song_ids) if song_ids is not None else list(range(n_songs))
        return cls(X, song_of_window, ids, audio, crowd)

    @classmethod
    def from_offsets(cls, X, offsets, song_ids, **sources) -> "Songs":
        """Songs whose windows are X[offsets[i]:offsets[i+1]]."""
        offsets = np.asarray(offsets, dtype=np.int64)
        return cls(X, np.repeat(np.arange(len(offsets) - 1), np.diff(offsets)), list(song_ids), **sources)

    def __len__(self) -> int:
        return len(self.song_ids)

    @property
    def offsets(self) -> np.ndarray:
        """Song i's windows are X[offsets[i]:offsets[i+1]] (windows grouped by song, in order)."""
        sow = np.asarray(self.song_of_window, dtype=np.int64)
        if sow.size and np.any(np.diff(sow) < 0):
            raise MERError("songs: windows must be grouped by song in song order")
        return np.concatenate([[0], np.cumsum(np.bincount(sow, minlength=len(self)))]).astype(np.int64)

    def window_labels(self, y):
        """One label per window from one label per song (quadrant indices, or Labels)."""
        index = np.asarray(self.song_of_window, dtype=np.int64)
        if isinstance(y, Labels):
            return y[index]
        return np.asarray(y, dtype=np.int64)[index]


def _as_songs(songs_or_X, song_of_window=None, **sources) -> Songs:
    """A Songs batch from a Songs, a Pool, or raw windows (with `song_of_window`; without it
    every window is a song of its own)."""
    if isinstance(songs_or_X, Songs):
        return songs_or_X
    if song_of_window is not None:
        return Songs.from_windows(songs_or_X, song_of_window, **sources)
    if hasattr(songs_or_X, "offsets") and hasattr(songs_or_X, "song_ids"):
        return Songs.from_pool(songs_or_X, **sources)
    return Songs.from_windows(songs_or_X, np.arange(len(songs_or_X)), **sources)


class Committee:
    def __init__(self, members, scaler, feature_names, manifest: dict | None = None,
                 layout: Layout = COMMITTEE_LAYOUT):
        self.members = list(members)  # [(name, member)]
        names = [name for name, _ in self.members]
        if len(set(names)) != len(names):
            raise MERError(f"committee: member names must be unique, got {names}")
        unknown = sorted({m.input_kind for _, m in self.members} - set(INPUT_KINDS))
        if unknown:
            raise MERError(f"committee: members of unknown input kind {unknown} (known: {', '.join(INPUT_KINDS)})")
        unknown = sorted({m.target_kind for _, m in self.members} - set(TARGET_KINDS))
        if unknown:
            raise MERError(f"committee: members of unknown target kind {unknown} (known: {', '.join(TARGET_KINDS)})")
        self.scaler = scaler
        self.feature_names = list(feature_names)
        self.manifest = dict(manifest or {})
        self.layout = layout
        self.parts: list[Committee] = [self]  # several for a joined committee (join)
        # the audio members whose consensus bounds the crowd-aware members' confidence on songs
        # without other listeners (set by listener(); a joined committee has them itself)
        self.evidence: Committee | None = None
        # set by load() and save(): the committee's content as written on disk; cleared by
        # update(), so an in-memory change never reads another committee's cached predictions
        self._saved_digest: str | None = None
        n_in = getattr(scaler, "n_features_in_", len(self.feature_names))
        if n_in != len(self.feature_names):
            raise MERError(f"committee: scaler expects {n_in} features but "
                           f"{len(self.feature_names)} feature names were given")

    # --- introspection -------------------------------------------------------------------
    def algorithms(self) -> list[str]:
        return [member.algorithm for _, member in self.members]

    def names(self) -> list[str]:
        return [name for name, _ in self.members]

    def of_kind(self, *kinds) -> list[int]:
        """Indices of the members whose input kind is one of `kinds`."""
        return [i for i, (_, m) in enumerate(self.members) if m.input_kind in kinds]

    def of_target(self, *kinds) -> list[int]:
        """Indices of the members of the given target kinds ("quadrant", "av")."""
        return [i for i, (_, m) in enumerate(self.members) if m.target_kind in kinds]

    def window_av(self, X_raw) -> np.ndarray:
        """(n_av_members, n_windows, 2): each regression member's (arousal, valence) per window
        (the window-feature regression members, in the order of of_target("av"))."""
        return self._window_av_scaled(self.transform(X_raw))

    def _window_av_scaled(self, Z) -> np.ndarray:
        members = [self.members[i][1] for i in self.of_target("av")]
        if any(m.input_kind != "features" for m in members):
            raise MERError("committee: arousal/valence per window needs window-feature regression members")
        return np.stack([m.predict_av(Z) for m in members]) if members else np.zeros((0, len(Z), 2))

    def song_av(self, songs, song_of_window=None, **sources) -> np.ndarray:
        """(n_av_members, n_songs, 2): each regression member's song (arousal, valence), the
        mean of its windows' (a song without windows: NaN). Standardized windows handed over
        as `songs.prepared["features"]` are used as they are (member_input)."""
        songs = _as_songs(songs, song_of_window, **sources)
        if not self.of_target("av"):
            return np.full((0, len(songs), 2), np.nan)
        windows = self._window_av_scaled(self.member_input("features", songs))
        sow = np.asarray(songs.song_of_window, dtype=np.int64)
        counts = np.bincount(sow, minlength=len(songs)).astype(float)
        out = np.full((len(windows), len(songs), 2), np.nan)
        has = counts > 0
        for row in range(len(windows)):
            for axis in range(2):
                sums = np.bincount(sow, weights=windows[row][:, axis], minlength=len(songs))
                out[row, has, axis] = sums[has] / counts[has]
        return out

    def subset(self, indices) -> "Committee":
        """A committee of some of these members (the same member objects), same scaler."""
        return Committee([self.members[i] for i in indices], self.scaler, self.feature_names,
                         self.manifest, self.layout)

    def listener_members(self) -> list[int]:
        """The members whose mean is the listener's prediction: the crowd-aware members when
        the committee has any (they beat the audio committee by ~.29 weighted F1 offline,
        docs/loop.md), else every member."""
        crowd = self.of_kind("crowd+features")
        return crowd or list(range(len(self.members)))

    def listener(self) -> "Committee":
        """The committee of the listener members (this committee when that is all of them)."""
        chosen = self.listener_members()
        if len(chosen) == len(self.members):
            return self
        listener = self.subset(chosen)
        others = [i for i in range(len(self.members)) if i not in set(chosen)]
        listener.evidence = self.subset(others)
        return listener

    @classmethod
    def join(cls, *parts: "Committee") -> "Committee":
        """One committee of the members of `parts` (same scaler statistics and feature layout);
        each part keeps its own folder layout and manifest for saving (see `parts`)."""
        first = parts[0]
        for part in parts[1:]:
            if part.feature_names != first.feature_names or not (
                    np.array_equal(part.scaler.mean_, first.scaler.mean_)
                    and np.array_equal(part.scaler.scale_, first.scaler.scale_)):
                raise MERError(f"committee: the {part.layout.what} were standardized with other "
                               f"statistics than the {first.layout.what}; recreate the user")
        joined = cls([m for part in parts for m in part.members], first.scaler, first.feature_names,
                     first.manifest, first.layout)
        joined.parts = list(parts)
        return joined

    # --- features ------------------------------------------------------------------------
    def transform(self, X_raw) -> np.ndarray:
        """Standardize raw window features with the committee's training statistics (float32).

        A DataFrame is checked against the committee's feature names; an array by width.
        """
        return self._standardized(X_raw).astype(np.float32)

    def _standardized(self, X_raw) -> np.ndarray:
        """transform() before its float32 rounding: one float64 C-order array."""
        if hasattr(X_raw, "columns"):
            columns = [c for c in X_raw.columns if c != "frameTime"]
            check_feature_names(self.feature_names, columns, "features")
            X_raw = X_raw[columns].to_numpy()
        X = np.asarray(X_raw, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise MERError(f"features: expected {len(self.feature_names)} columns in the "
                           f"committee's layout, got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise MERError("features: contains NaN or infinite values")
        # in place on one C-order copy (fewer temporaries than (X - mean) / scale); C order:
        # the same rows give bit-identical probabilities whatever layout came in
        Z = np.array(X, dtype=np.float64, order="C")
        Z -= self.scaler.mean_
        Z /= self.scaler.scale_
        return Z

    def window_proba(self, X_raw, tree_prefix=None, tree_margins_out=None) -> np.ndarray:
        """(n_feature_members, n_windows, 4): every feature member's window probabilities.

        Members with a linear form (see Member.linear_form) are scored together with one
        matrix product. tree_prefix {member index: (rounds, margins on these rows)} lets tree
        members evaluate only their later rounds; tree_margins_out, a dict, receives every tree
        member's full margins on these rows (for pool_scoring.TreeMarginCache).
        """
        Z = self._standardized(X_raw)
        members = [(i, self.members[i][1]) for i in self.of_kind("features")]
        out = np.empty((len(members), Z.shape[0], N_CLASSES))
        linear = [(row, member, member.linear_form()) for row, (_, member) in enumerate(members)]
        linear = [(row, member, form) for row, member, form in linear if form is not None]
        if linear and Z.shape[0]:
            weights = np.hstack([np.asarray(w, dtype=np.float64) for _, _, (w, _) in linear])
            bias = np.concatenate([np.asarray(b, dtype=np.float64) for _, _, (_, b) in linear])
            # one float64 product for all linear members, on the unrounded standardized rows
            # (float32 would move GNB by ~1e-5; member.predict_proba on transform()'s float32
            # rows agrees to ~1e-7)
            decisions = Z @ weights + bias
            for k, (row, member, _) in enumerate(linear):
                block = decisions[:, k * N_CLASSES:(k + 1) * N_CLASSES]
                out[row] = member.proba_from_log(member.log_proba_from_decision(block))
        done = {row for row, _, _ in linear}
        # trees and any other member see the float32 rows they were trained on
        X = Z.astype(np.float32) if len(done) < len(members) else None
        for row, (i, member) in enumerate(members):
            if row in done:
                continue
            if member.margin_cacheable and len(X):
                margins = member.predict_margin(X, (tree_prefix or {}).get(i))
                if tree_margins_out is not None:
                    tree_margins_out[i] = margins
                out[row] = member.proba_from_log(margins)
            else:
                out[row] = member.predict_proba(X)
        return out

    # --- what each input kind reads ---------------------------------------------------------
    def member_input(self, kind: str, songs: Songs):
        """The input that members of `kind` read for `songs` (one per batch, shared by them)."""
        if kind in songs.prepared:
            return songs.prepared[kind]
        if kind == "features":
            return self.transform(songs.X)
        if kind == "audio":
            if songs.audio is None:
                raise MERError("committee: audio members "
                               f"{[self.members[i][0] for i in self.of_kind('audio')]} need song ids "
                               "and an audio source")
            return SongAudio(list(songs.song_ids), songs.audio)
        if kind == "song-stats":
            Z = songs.prepared["features"] if "features" in songs.prepared else self.transform(songs.X)
            return song_statistics(Z, songs.song_of_window, len(songs))
        if kind == "crowd+features":
            if songs.crowd is None:
                raise MERError("committee: crowd-aware members need the songs' crowd rows")
            crowd = np.asarray(songs.crowd, dtype=np.float64).reshape(len(songs), -1)
            raw = song_means(songs.X, songs.offsets).astype(np.float64)
            if raw.shape[1] != len(self.scaler.mean_):
                raise MERError(f"features: the crowd members expect {len(self.scaler.mean_)} audio "
                               f"columns, got {raw.shape[1]}")
            audio = (raw - self.scaler.mean_) / self.scaler.scale_
            return np.hstack([crowd, audio]).astype(np.float32)
        raise MERError(f"committee: no input for members of kind {kind!r}")

    def song_proba(self, songs, song_of_window=None, tree_prefix=None, tree_margins_out=None,
                   **sources) -> np.ndarray:
        """(n_members, n_songs, 4): every member's probabilities of every song.

        `songs`: a Songs batch, a Pool, or raw windows with `song_of_window` (and optionally
        song_ids=, audio=, crowd=; without song_of_window every window is a song). Window
        members give the mean of a song's window probabilities (a song without windows gets a
        uniform row). tree_prefix and tree_margins_out are passed to window_proba.
        """
        songs = _as_songs(songs, song_of_window, **sources)
        n_songs = len(songs)
        out = np.full((len(self.members), n_songs, N_CLASSES), 1.0 / N_CLASSES)
        window_members = self.of_kind("features")
        if window_members:
            if "features" in songs.prepared:  # standardized by the caller: scored one by one
                Z = songs.prepared["features"]
                windows = [self.members[i][1].predict_proba(Z) for i in window_members]
            else:
                windows = self.window_proba(songs.X, tree_prefix, tree_margins_out)
            song_of_window = np.asarray(songs.song_of_window, dtype=np.int64)
            counts = np.bincount(song_of_window, minlength=n_songs).astype(float)
            has = counts > 0
            for row, i in enumerate(window_members):
                for c in range(N_CLASSES):
                    sums = np.bincount(song_of_window, weights=windows[row][:, c], minlength=n_songs)
                    out[i, has, c] = sums[has] / counts[has]
        for kind in dict.fromkeys(m.input_kind for _, m in self.members):
            if kind == "features":
                continue
            X_in = self.member_input(kind, songs)
            for i in self.of_kind(kind):
                out[i] = self.members[i][1].predict_proba(X_in)
        self._bound_crowd_without_listeners(out, songs)
        return out

    def _bound_crowd_without_listeners(self, out, songs: Songs) -> None:
        """On a song no other listener annotated, a crowd-aware member has only the audio to go
        on: its probabilities are softened (p ** (1/T), the smallest T >= 1) until its highest
        probability is no higher than the highest of the audio members' mean on that song.
        Applies when the committee has (or, as a listener() subset, knows) audio members and
        the crowd rows come from the songs (the simulator's prepared rows are left as they are)."""
        crowd_members = self.of_kind("crowd+features")
        if not crowd_members or songs.crowd is None or "crowd+features" in songs.prepared:
            return
        from .crowd import CROWD_COLUMNS

        crowd = np.asarray(songs.crowd, dtype=np.float64).reshape(len(songs), -1)
        none = np.flatnonzero(crowd[:, CROWD_COLUMNS.index("crowd_none")] > 0.5)
        others = [i for i in range(len(self.members)) if i not in set(crowd_members)]
        evidence = self.subset(others) if others else self.evidence
        if not len(none) or evidence is None:
            return
        offsets = songs.offsets
        rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in none])
        subset = Songs.from_offsets(np.asarray(songs.X)[rows],
                                    np.concatenate([[0], np.cumsum(np.diff(offsets)[none])]),
                                    [songs.song_ids[i] for i in none], audio=songs.audio)
        bound = evidence.song_proba(subset).mean(axis=0).max(axis=1)
        for i in crowd_members:
            out[i, none] = cap_confidence(out[i, none], bound)

    def update(self, songs, y, song_of_window=None, only=None, **sources) -> None:
        """Continue training every member on labeled songs (one label per song; a batch may
        lack quadrants): window members on every window of a song with the song's label.
        `songs` as in song_proba (raw windows alone: one label per window). only: the indices
        of the members to train (the others are left as they are; default every member)."""
        songs = _as_songs(songs, song_of_window, **sources)
        if isinstance(y, Labels):
            labels = y
        else:
            y = np.asarray(y, dtype=np.int64)
            if y.shape != (len(songs),):
                raise MERError(f"committee update: {len(songs)} songs but labels of shape {y.shape}")
            labels = Labels(y)
        if len(labels) != len(songs):
            raise MERError(f"committee update: {len(songs)} songs but {len(labels)} labels")
        for part in self.parts:
            part._saved_digest = None
        self._saved_digest = None
        chosen = range(len(self.members)) if only is None else sorted(set(only))
        for kind in dict.fromkeys(self.members[i][1].input_kind for i in chosen):
            X_in = self.member_input(kind, songs)
            rows = songs.window_labels(labels) if kind == "features" else labels
            for i in self.of_kind(kind):
                if i not in chosen:
                    continue
                member = self.members[i][1]
                # classifiers read the quadrants; regression members the Labels themselves
                member.update(X_in, rows if member.target_kind == "av" else rows.quadrant)

    def copy(self) -> "Committee":
        """An independent copy (members copied with their own `copy` verb); a joined committee
        stays joined, each part with its folder layout."""
        if len(self.parts) > 1:
            return Committee.join(*[part.copy() for part in self.parts])
        twin = Committee([(name, member.copy()) for name, member in self.members], self.scaler,
                         self.feature_names, self.manifest, self.layout)
        return twin

    # --- persistence ---------------------------------------------------------------------
    def save(self, directory, extra_files: dict | None = None, store: BlobStore | None = None) -> Path:
        """Write the committee to a new folder and swap it in place of `directory`.

        `extra_files` ({name: text}, e.g. a model card) are written into the same new folder;
        they are documentation, not part of the checksummed committee. `store`: see write_into.
        """
        if len(self.parts) > 1:
            raise MERError("committee: a joined committee is saved part by part (see users.py)")
        save_new_folder(directory, lambda tmp: self.write_into(tmp, extra_files, store))
        self._saved_digest = content_digest(self.manifest)
        return Path(directory)

    def write_into(self, folder, extra_files: dict | None = None, store: BlobStore | None = None) -> dict:
        """Write the committee's files and manifest into an existing empty `folder`.

        With a shared `store` (checksummed.BlobStore), a file the store already holds is kept
        there only, and a file holding a long run of the bytes its previous version was saved
        from (an XGBoost member's pre-trained rounds) keeps only the rest in the folder; the
        store itself is never written here."""
        folder = Path(folder)
        layout = self.layout
        candidates = {}
        if store is not None:  # what each file was saved from before: its checksum, its blob
            for name, digest in (self.manifest.get("checksums") or {}).items():
                candidates.setdefault(name, []).append(digest)
            for name, spec in (self.manifest.get("stored") or {}).items():
                if isinstance(spec, dict):
                    candidates.setdefault(name, []).append(spec.get("blob"))
        # each file is checksummed (and, with a store, replaced by its reference or part) as soon
        # as it is written: the folder never holds more than one member's whole files, so a
        # retrain needs about one member's size of temporary space, not the whole committee's
        checksums, stored = {}, {}

        def shared(written):
            sums, refs = share_files(folder, written, store, candidates)
            checksums.update(sums)
            stored.update(refs)

        files = [layout.scaler_file]
        _save_scaler(self.scaler, folder / layout.scaler_file)
        shared(files)
        member_entries = []
        previous = {m.get("name"): m for m in self.manifest.get("members", [])}
        for name, member in self.members:
            written = member.save(folder / name)
            shared(written)
            files.extend(written)
            entry = dict(previous.get(name, {}))
            entry.update(name=name, algorithm=member.algorithm, input_kind=member.input_kind,
                         files=written)
            member_entries.append(entry)
        manifest = dict(self.manifest)
        manifest.update(format=FORMAT_VERSION, classes=list(QUADRANTS), feature_names=self.feature_names,
                        scaler=layout.scaler_file, members=member_entries,
                        versions={**manifest.get("versions", {}), **library_versions()})
        if layout is CROWD_LAYOUT:
            from .crowd import CROWD_COLUMNS

            manifest["crowd_columns"] = list(CROWD_COLUMNS)
        manifest = write_manifest(folder, layout.manifest, manifest, files, store, candidates,
                                  shared=(checksums, stored))
        for name, text in (extra_files or {}).items():
            if Path(name).name != name or name in files or name == layout.manifest:
                raise MERError(f"committee: extra file name {name!r} is not a free plain name")
            atomic.write_text(folder / name, text)
        self.manifest = manifest
        return manifest

    @classmethod
    def load(cls, directory, feature_names=None, layout: Layout = COMMITTEE_LAYOUT) -> "Committee":
        """Load and verify a committee folder; `feature_names` (optional) must match its layout."""
        directory = Path(directory)
        if not directory.is_dir():
            raise MERError(f"{directory}: no {layout.what} folder here")
        contents: dict = {}  # the verified bytes of every file: the members are built from these
        manifest = read_manifest(directory, layout.manifest, ("feature_names", "members", "checksums", "scaler"),
                                 layout.what, layout.missing_hint, layout.classes_required,
                                 check=check_manifest, contents=contents)
        manifest_path = directory / layout.manifest
        if feature_names is not None:
            check_feature_names(manifest["feature_names"], feature_names, str(manifest_path))
        with materialized(directory, manifest, contents) as source:
            committee = cls._build(directory, source, manifest, layout)
        committee._saved_digest = content_digest(manifest)
        return committee

    @classmethod
    def _build(cls, directory: Path, source: Path, manifest: dict, layout: Layout) -> "Committee":
        """The committee of a verified manifest, its files read from `source` (a private copy of
        the verified bytes, checksummed.materialized)."""
        manifest_path = directory / layout.manifest
        n_features = len(manifest["feature_names"])
        scaler = _load_scaler(source / manifest["scaler"])
        check_scaler(scaler, n_features, f"{manifest_path}: field 'scaler' ({manifest['scaler']})")
        members = []
        for entry in manifest["members"]:
            name = entry["name"]
            try:
                cls_ = member_class(entry.get("algorithm"))
            except MERError as err:
                raise MERError(f"{manifest_path}: member {name!r}: {err}") from None
            member = cls_.load(source / name)
            expected = _member_width(member.input_kind, n_features)
            if expected is not None and member.n_features is not None and member.n_features != expected:
                raise MERError(f"{directory / name}: member expects {member.n_features} features, "
                               f"committee has {n_features} feature names"
                               f"{' (+ the crowd columns)' if member.input_kind == 'crowd+features' else ''}")
            if entry.get("input_kind", member.input_kind) != member.input_kind:
                raise MERError(f"{manifest_path}: member {name!r}: field 'input_kind' is "
                               f"{entry.get('input_kind')!r}, but a {member.algorithm} member reads "
                               f"{member.input_kind!r}")
            members.append((name, member))
        return cls(members, scaler, manifest["feature_names"], manifest, layout)

    @classmethod
    def saved_digest(cls, directory, layout: Layout = COMMITTEE_LAYOUT):
        """(content digest, number of members) of a saved committee folder, verified as load()
        verifies it (manifest, every file's checksum) but without building any member, or None
        when its predictions are not cacheable (audio members, see content_digest). A ranking
        whose scores are all cached needs no more, and skips importing the members' libraries."""
        directory = Path(directory)
        manifest = read_manifest(directory, layout.manifest, ("feature_names", "members", "checksums", "scaler"),
                                 layout.what, layout.missing_hint, layout.classes_required,
                                 check=check_manifest, contents={})
        if any(m.get("input_kind", "features") == "audio" for m in manifest["members"]):
            return None
        return content_digest(manifest), len(manifest["members"])

    def content_digest(self) -> str | None:
        """sha256 naming what this committee predicts, or None when it is not as saved on disk
        (built in memory, updated since load/save, joined) or reads audio (which may change)."""
        if self.of_kind("audio") or len(self.parts) > 1:
            return None
        return self._saved_digest


def content_digest(manifest: dict) -> str:
    """sha256 of what determines a saved committee's predictions: the checksums of its files,
    its feature layout and member list, and the code version that computes them."""
    from . import __version__

    identity = {"checksums": manifest.get("checksums"), "feature_names": manifest.get("feature_names"),
                "members": [(m.get("name"), m.get("algorithm")) for m in manifest.get("members", [])],
                "format": manifest.get("format"), "trompa_mer": __version__}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
