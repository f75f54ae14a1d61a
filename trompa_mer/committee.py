"""A committee: members + the feature scaler + `committee.json`, loaded and saved as one folder.

Folder layout:
  committee.json        manifest: members (name, algorithm, input kind, files), feature names,
                        classes, provenance (corpus, label mapping, splits, scores, command),
                        library versions, sha256 of every other file
  scaler.skops          StandardScaler fitted on the committee's training windows
  <member>.<ext>, <member>.json   one model file + metadata per member (see members.py)

Loading verifies every checksum and the feature layout and refuses a mismatch with a MERError
naming the file. Saving writes a new folder and swaps it in, so a reader never sees half a
committee.

Feature members see standardized window rows; song probabilities are the mean of a song's
window probabilities. Audio members (`input_kind == "audio"`, the CNN) are asked per song:
`predict_proba_songs(song_ids, audio_source)` and `update_songs(song_ids, y, audio_source)`;
their rows are joined to the feature members' rows by song id.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np

from . import atomic
from .errors import MERError
from .members import member_class, skops_dump, skops_load
from .quadrants import N_CLASSES, QUADRANTS

MANIFEST = "committee.json"
SCALER_FILE = "scaler.skops"
FORMAT_VERSION = 1


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


class Committee:
    def __init__(self, members, scaler, feature_names, manifest: dict | None = None):
        self.members = list(members)  # [(name, member)]
        names = [name for name, _ in self.members]
        if len(set(names)) != len(names):
            raise MERError(f"committee: member names must be unique, got {names}")
        self.scaler = scaler
        self.feature_names = list(feature_names)
        self.manifest = dict(manifest or {})
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

    def _feature_members(self):
        return [(i, m) for i, (_, m) in enumerate(self.members)
                if getattr(m, "input_kind", "features") == "features"]

    def _audio_members(self):
        return [(i, m) for i, (_, m) in enumerate(self.members)
                if getattr(m, "input_kind", "features") == "audio"]

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
        member's full margins on these rows (for TreeMarginCache).
        """
        Z = self._standardized(X_raw)
        members = self._feature_members()
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
            if hasattr(member, "predict_margin") and len(X):
                margins = member.predict_margin(X, (tree_prefix or {}).get(i))
                if tree_margins_out is not None:
                    tree_margins_out[i] = margins
                out[row] = member.proba_from_log(margins)
            else:
                out[row] = member.predict_proba(X)
        return out

    def song_proba(self, pool_or_X_raw, song_of_window=None, song_ids=None,
                   audio_source=None, tree_prefix=None, tree_margins_out=None) -> np.ndarray:
        """(n_members, n_songs, 4): mean of each song's window probabilities per member.

        Pass a Pool (X, song_of_window, song_ids) or raw windows with `song_of_window`
        (song index per window; songs without windows get uniform rows). Audio members need
        `song_ids` (taken from the pool) and an `audio_source` they understand. tree_prefix and
        tree_margins_out are passed to window_proba.
        """
        if song_of_window is None:
            pool = pool_or_X_raw
            X_raw, song_of_window = pool.X, pool.song_of_window
            song_ids = pool.song_ids if song_ids is None else song_ids
        else:
            X_raw = pool_or_X_raw
        song_of_window = np.asarray(song_of_window, dtype=np.int64)
        n_songs = len(song_ids) if song_ids is not None else int(song_of_window.max(initial=-1)) + 1
        out = np.full((len(self.members), n_songs, N_CLASSES), 1.0 / N_CLASSES)
        feature_members = self._feature_members()
        if feature_members:
            windows = self.window_proba(X_raw, tree_prefix, tree_margins_out)
            counts = np.bincount(song_of_window, minlength=n_songs).astype(float)
            has = counts > 0
            for row, (i, _) in enumerate(feature_members):
                for c in range(N_CLASSES):
                    sums = np.bincount(song_of_window, weights=windows[row, :, c], minlength=n_songs)
                    out[i, has, c] = sums[has] / counts[has]
        audio_members = self._audio_members()
        if audio_members:
            if song_ids is None or audio_source is None:
                raise MERError("committee: audio members "
                               f"{[self.members[i][0] for i, _ in audio_members]} need song ids "
                               "and an audio source")
            for i, member in audio_members:
                out[i] = member.predict_proba_songs(list(song_ids), audio_source)
        return out

    def update(self, X_raw, y, song_ids=None, song_y=None, audio_source=None) -> None:
        """Continue training every member on a labeled batch (it may lack quadrants).

        Feature members get the windows (X_raw, y); audio members get the songs
        (song_ids, song_y) read through `audio_source`.
        """
        self._saved_digest = None
        X = self.transform(X_raw)
        y = np.asarray(y, dtype=np.int64)
        for _, member in self._feature_members():
            member.update(X, y)
        audio_members = self._audio_members()
        if audio_members:
            if song_ids is None or song_y is None or audio_source is None:
                raise MERError("committee: audio members need song ids, song labels and an "
                               "audio source to update")
            for _, member in audio_members:
                member.update_songs(list(song_ids), np.asarray(song_y, dtype=np.int64), audio_source)

    # --- persistence ---------------------------------------------------------------------
    def save(self, directory, extra_files: dict | None = None) -> Path:
        """Write the committee to a new folder and swap it in place of `directory`.

        `extra_files` ({name: text}, e.g. a model card) are written into the same new folder;
        they are documentation, not part of the checksummed committee.
        """
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
        try:
            files = [SCALER_FILE]
            skops_dump(self.scaler, tmp / SCALER_FILE)
            member_entries = []
            previous = {m.get("name"): m for m in self.manifest.get("members", [])}
            for name, member in self.members:
                written = member.save(tmp / name)
                files.extend(written)
                entry = dict(previous.get(name, {}))
                entry.update(name=name, algorithm=member.algorithm,
                             input_kind=getattr(member, "input_kind", "features"), files=written)
                member_entries.append(entry)
            manifest = dict(self.manifest)
            manifest.update(
                format=FORMAT_VERSION,
                classes=list(QUADRANTS),
                feature_names=self.feature_names,
                scaler=SCALER_FILE,
                members=member_entries,
                versions={**manifest.get("versions", {}), **library_versions()},
                checksums={f: sha256_file(tmp / f) for f in files},
            )
            atomic.write_json(tmp / MANIFEST, manifest)
            for name, text in (extra_files or {}).items():
                if Path(name).name != name or name in files or name == MANIFEST:
                    raise MERError(f"committee: extra file name {name!r} is not a free plain name")
                atomic.write_text(tmp / name, text)
            self.manifest = manifest
            atomic.replace_dir(tmp, directory)
            self._saved_digest = content_digest(manifest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    @classmethod
    def load(cls, directory, feature_names=None) -> "Committee":
        """Load and verify a committee folder; `feature_names` (optional) must match its layout."""
        directory = Path(directory)
        atomic.recover_dir(directory)
        manifest_path = directory / MANIFEST
        if not directory.is_dir():
            raise MERError(f"{directory}: no committee folder here")
        if not manifest_path.exists():
            raise MERError(f"{manifest_path}: missing (not a committee folder)")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise MERError(f"{manifest_path}: not valid JSON ({err})") from None
        for field in ("feature_names", "members", "checksums", "scaler"):
            if field not in manifest:
                raise MERError(f"{manifest_path}: field {field!r} missing")
        if manifest.get("classes", list(QUADRANTS)) != list(QUADRANTS):
            raise MERError(f"{manifest_path}: field 'classes' is {manifest.get('classes')}, "
                           f"expected {list(QUADRANTS)}")
        checksums = manifest["checksums"]
        listed = {manifest["scaler"]} | {f for m in manifest["members"] for f in m.get("files", [])}
        unlisted = sorted(listed - set(checksums))
        if unlisted:
            raise MERError(f"{manifest_path}: field 'checksums' has no entry for {unlisted[0]}")
        for name, digest in checksums.items():
            path = directory / name
            if Path(name).name != name:
                raise MERError(f"{manifest_path}: file name {name!r} must not contain a folder")
            if not path.exists():
                raise MERError(f"{path}: listed in {MANIFEST} but missing")
            if sha256_file(path) != digest:
                raise MERError(f"{path}: checksum does not match {MANIFEST} "
                               "(the file was changed or damaged after the committee was saved)")
        if feature_names is not None:
            check_feature_names(manifest["feature_names"], feature_names, str(manifest_path))
        scaler = skops_load(directory / manifest["scaler"])
        members = []
        for entry in manifest["members"]:
            name = entry.get("name")
            if not name or Path(name).name != name:
                raise MERError(f"{manifest_path}: member name {name!r} is not a plain name")
            member = member_class(entry.get("algorithm")).load(directory / name)
            n_features = getattr(member, "n_features", None)
            if getattr(member, "input_kind", "features") == "features" and \
                    n_features != len(manifest["feature_names"]):
                raise MERError(f"{directory / name}: member expects {n_features} features, "
                               f"committee has {len(manifest['feature_names'])}")
            members.append((name, member))
        committee = cls(members, scaler, manifest["feature_names"], manifest)
        committee._saved_digest = content_digest(manifest)
        return committee

    def content_digest(self) -> str | None:
        """sha256 naming what this committee predicts, or None when it is not as saved on disk
        (built in memory, or updated since load/save) or reads audio (which may change)."""
        if self._audio_members():
            return None
        return self._saved_digest


# --- cached song probabilities of a committee on a pool -----------------------------------
SONG_PROBA_CACHE = ".song_proba_cache"
SONG_PROBA_CACHE_KEEP = 8  # files kept per pool folder: the default committee + recent retrains


def content_digest(manifest: dict) -> str:
    """sha256 of what determines a saved committee's predictions: the checksums of its files,
    its feature layout and member list, and the code version that computes them."""
    from . import __version__

    identity = {"checksums": manifest.get("checksums"), "feature_names": manifest.get("feature_names"),
                "members": [(m.get("name"), m.get("algorithm")) for m in manifest.get("members", [])],
                "format": manifest.get("format"), "trompa_mer": __version__}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def cached_song_proba(committee, feats_dir, song_ids, compute) -> np.ndarray:
    """`compute()` ((n_members, n_songs, 4) song probabilities of `committee` on the pool in
    `feats_dir`), read from a cache file when the same committee already scored the same pool.

    A saved committee folder is immutable (checksummed in committee.json) and the pool folder
    is identified as the pool cache does (name, size and mtime of every CSV), so the key
    (committee digest + pool listing + song order) changes whenever either does. The file is
    written atomically beside the pool cache (`<feats_dir>/.song_proba_cache/`); a read-only
    pool folder, or a committee with no digest (see Committee.content_digest), just computes.
    """
    from .pool import _listing  # the pool cache's own signature of the folder

    digest = committee.content_digest()
    if digest is None:
        return compute()
    feats_dir = Path(feats_dir)
    key = hashlib.sha256(json.dumps({"committee": digest, "pool": _listing(feats_dir),
                                     "songs": [str(s) for s in song_ids]},
                                    sort_keys=True).encode()).hexdigest()
    cache_dir = feats_dir / SONG_PROBA_CACHE
    path = cache_dir / f"{key}.npy"
    expected_shape = (len(committee.members), len(song_ids), N_CLASSES)
    try:
        cached = np.load(path)
        if cached.shape == expected_shape and np.all(np.isfinite(cached)):
            return cached
    except (OSError, ValueError):
        pass  # missing or damaged: compute and rewrite
    proba = np.asarray(compute(), dtype=np.float64)
    try:
        with atomic.atomic_open(path, "wb") as handle:
            np.save(handle, proba)
        old = sorted(cache_dir.glob("*.npy"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for stale in old[SONG_PROBA_CACHE_KEEP:]:
            stale.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only pool folder: no cache, same answer
    return proba


# --- cached margins of tree members' leading rounds on a pool ---------------------------------
TREE_MARGIN_CACHE = ".tree_margin_cache"
TREE_MARGIN_CACHE_KEEP = 24  # files per pool folder, least recently used go first


class TreeMarginCache:
    """Per-window margins of tree (XGBoost) members' leading rounds on one pool, on disk.

    A retrain appends rounds to an XGBoost member and never changes its earlier trees, so every
    later version of a pre-trained member (any user, any round) can start from the pre-trained
    member's margins on the pool and evaluate only the new rounds: 10 new rounds instead of
    110. An entry is keyed by the exact bytes of the leading rounds (UBJSON), the scaler's
    statistics and the pool's listing signature, so a change to any of them is a miss; a miss
    or a damaged file only means computing. Files live in `<feats_dir>/.tree_margin_cache/`,
    written atomically; the least recently used beyond TREE_MARGIN_CACHE_KEEP are removed.
    """

    def __init__(self, feats_dir, scaler, pool_signature: str):
        from . import __version__

        self.dir = Path(feats_dir) / TREE_MARGIN_CACHE
        context = hashlib.sha256()
        for part in (pool_signature.encode(), __version__.encode(),
                     np.asarray(scaler.mean_, dtype=np.float64).tobytes(),
                     np.asarray(scaler.scale_, dtype=np.float64).tobytes()):
            context.update(part)
        self.context = context.hexdigest()

    def _path(self, member, rounds: int) -> Path:
        digest = hashlib.sha256(self.context.encode() + member.leading_rounds_bytes(rounds)).hexdigest()
        return self.dir / f"r{rounds:05d}-{digest}.npy"

    def lookup(self, member, n_windows: int):
        """(rounds, memory-mapped (n_windows, 4) margins) of the longest cached leading part of
        `member`, or None."""
        total = member.booster.num_boosted_rounds()
        try:
            cached_rounds = {int(p.name[1:6]) for p in self.dir.glob("r[0-9][0-9][0-9][0-9][0-9]-*.npy")}
        except OSError:
            return None
        for rounds in sorted((r for r in cached_rounds if 0 < r <= total), reverse=True):
            path = self._path(member, rounds)
            try:
                margins = np.load(path, mmap_mode="r")
            except (OSError, ValueError):
                continue
            if margins.shape == (n_windows, N_CLASSES) and margins.dtype == np.float32:
                with contextlib.suppress(OSError):
                    os.utime(path)  # recently used: kept longest
                return rounds, margins
        return None

    def store(self, member, margins) -> None:
        path = self._path(member, member.booster.num_boosted_rounds())
        try:
            if not path.exists():
                self.dir.mkdir(exist_ok=True)
                with atomic.atomic_open(path, "wb") as handle:
                    np.save(handle, np.ascontiguousarray(margins, dtype=np.float32))
            files = sorted(self.dir.glob("r*.npy"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
            for stale in files[TREE_MARGIN_CACHE_KEEP:]:
                stale.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only or full pool folder: no cache, same answers
