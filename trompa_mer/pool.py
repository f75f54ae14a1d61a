"""The pool store: a folder of per-song feature CSVs consolidated into float32 tables.

The store is the sharded one of `pool_shards` (`<feats_dir>/.pool_shards/`: shards of a fixed
number of songs, each a checksummed .npy, and a manifest), so a consolidated pool is read
from its shards instead of parsed, a sample reads only the shards holding its songs (each
verified the first time it is read), and a changed folder (a file added, removed, or rewritten:
name, size or modification time) rewrites only the shards of the changed songs.

The single-file store of before (`<feats_dir>/.pool_cache/`: X, offsets, frame_times, song_ids
as .npy and meta.json) is still read when it matches the folder, and converted into shards
(its unchanged songs' rows copied, then removed) when the folder changed or the pool is
consolidated. Nothing is served unverified: meta.json records each array file's sha256 and
its identity on disk when written (inode, size, mtime_ns, ctime_ns). An array file whose
identity is unchanged has not been written to since (any write or replacement changes its
ctime or inode, which no user can set back); one whose identity changed (the folder copied,
restored from a backup) is hashed, and used (its new identity recorded) only when the hash
matches. A file that does not match is one warning naming it, and the pool is rebuilt from the
CSVs (into shards).
"""
from __future__ import annotations

import contextlib
from collections import Counter
import fcntl
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import atomic, cache_files, pool_shards
from .errors import MERError, warn
from .features import FEATURE_NAMES, read_feature_csv

CACHE_NAME = ".pool_cache"
CACHE_VERSION = 2  # 2: every array file checksummed in meta.json
CACHE_ARRAYS = ("X", "offsets", "frame_times", "song_ids")


@dataclass
class Pool:
    song_ids: np.ndarray            # (songs,) str, sorted
    X: np.ndarray                   # (windows, 260) float32, songs in song_ids order
    offsets: np.ndarray             # (songs + 1,) int64: song i is X[offsets[i]:offsets[i+1]]
    frame_times: np.ndarray         # (windows,) float32
    feature_names: list = field(default_factory=lambda: list(FEATURE_NAMES))
    # {CSV file name: why it was left out}: files of the folder that are not readable feature
    # CSVs (truncated, garbled); their songs are not in the pool
    skipped: dict = field(default_factory=dict)
    # (path, identity [inode, size, mtime_ns, ctime_ns], byte offset of the data) of the verified
    # store file X is memory-mapped from (set by load_pool); subset() reads a few songs from it
    # with pread, because touching a memory map maps whole large pages around each song (a
    # sample of 1% of the songs made 90% of the file resident)
    x_source: tuple | None = None
    # the folder listing it was loaded from (set by load_pool; None for a subset)
    listing: dict | None = field(default=None, repr=False)
    # a pool opened from the sharded store (pool_shards): where each song's windows lie; X and
    # frame_times are then pool_shards.LazyRows, read from the shards on demand
    shards: object = field(default=None, repr=False)

    def __post_init__(self):
        self._index = {s: i for i, s in enumerate(self.song_ids.tolist())}
        self._signature = None

    @property
    def signature(self) -> str | None:
        """sha256 of the folder listing it was loaded from (None for a subset): caches of
        predictions on this pool key on it. Hashed on first use: a ranking of a sample never
        needs it, and at 100,000 songs it costs a good part of a second."""
        if self._signature is None and self.listing is not None:
            self._signature = listing_signature(self.listing)
        return self._signature

    def __len__(self) -> int:
        return len(self.song_ids)

    def __contains__(self, song_id) -> bool:
        return song_id in self._index

    @property
    def song_of_window(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.song_ids)), np.diff(self.offsets))

    def index_of(self, song_id) -> int:
        return self._index[song_id]

    def windows(self, song_id) -> np.ndarray:
        i = self._index[song_id]
        return self.X[self.offsets[i]:self.offsets[i + 1]]

    def subset(self, song_ids) -> "Pool":
        """A new in-memory pool holding only `song_ids` (kept in the given order)."""
        song_ids = [s for s in song_ids]
        missing = [s for s in song_ids if s not in self._index]
        if missing:
            raise MERError(f"pool: no features for song {missing[0]!r} ({len(missing)} missing)")
        idx = [self._index[s] for s in song_ids]
        lengths = np.diff(self.offsets)[idx]
        if self.shards is not None:  # the sample's rows read from the shards holding them
            rows = self.shards.reader.read_rows(self.shards.locations(idx))
            return Pool(np.asarray(song_ids, dtype=str), np.ascontiguousarray(rows[:, 1:]),
                        np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                        np.ascontiguousarray(rows[:, 0]), list(self.feature_names))
        rows = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx]) if idx else np.zeros(0, int)
        return Pool(np.asarray(song_ids, dtype=str), self._rows_of_songs(idx, lengths),
                    np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                    np.asarray(self.frame_times[rows]), list(self.feature_names))

    def _rows_of_songs(self, idx, lengths) -> np.ndarray:
        """X's rows of the songs at `idx` (each song's windows in order), read from the store
        file with pread when it is still the verified file (same identity), else copied from X."""
        width = self.X.shape[1]
        if self.x_source is not None and idx:
            path, identity, data_offset = self.x_source
            out = np.empty((int(np.sum(lengths)), width), dtype=np.float32)
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                fd = None
            if fd is not None:
                try:
                    if cache_files.identity(os.fstat(fd)) == list(identity):
                        row_bytes = width * out.itemsize
                        at = 0
                        for i, n in zip(idx, lengths):
                            view = memoryview(out[at:at + n]).cast("B")
                            if os.preadv(fd, [view], data_offset + int(self.offsets[i]) * row_bytes) != len(view):
                                break
                            at += n
                        else:
                            return out
                finally:
                    os.close(fd)
        if not idx:
            return np.zeros((0, width), dtype=self.X.dtype)
        return np.concatenate([self.X[self.offsets[i]:self.offsets[i + 1]] for i in idx])

    @property
    def n_windows(self) -> int:
        return int(self.offsets[-1])

    def song_mean(self) -> np.ndarray:
        """Songs × features: the mean of each song's windows."""
        sums = np.add.reduceat(np.asarray(self.X, dtype=np.float64), self.offsets[:-1], axis=0)
        return (sums / np.diff(self.offsets)[:, None]).astype(np.float32)


def folder_listing(feats_dir: Path) -> dict:
    """{file name: [size, mtime_ns]} of the CSVs in the folder: the cache's signature."""
    out = {}
    with os.scandir(feats_dir) as entries:
        for entry in entries:
            if entry.name.lower().endswith(".csv") and entry.is_file():
                st = entry.stat()
                out[entry.name] = [st.st_size, st.st_mtime_ns]
    return out


def listing_signature(listing: dict) -> str:
    """sha256 of the listing in name order, one `name NUL size NUL mtime_ns LF` record per file
    (unambiguous: a name holds no NUL, and the numbers no LF). Cheaper than sorted JSON, which
    took a second of every step at 100,000 songs."""
    import hashlib

    records = "".join(f"{name}\0{listing[name][0]}\0{listing[name][1]}\n" for name in sorted(listing))
    return hashlib.sha256(records.encode("utf-8", "surrogateescape")).hexdigest()


def _read_cache(cache: Path, mmap: bool, reported: set | None = None):
    """(meta, Pool) of the cache, or None: quietly when there is none (or of another version
    or layout), with one warning per file (`reported` collects them) when an array file does
    not match its checksum."""
    meta_path = cache / "meta.json"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("version") != CACHE_VERSION or meta.get("feature_names") != FEATURE_NAMES:
            return None
        records = meta.get("files") or {}
    except (OSError, ValueError, json.JSONDecodeError, AttributeError):
        return None
    arrays, refreshed = {}, {}
    for name in CACHE_ARRAYS:
        path = cache / f"{name}.npy"
        try:
            arrays[name], identity = cache_files.open_npy(path, records.get(name), mmap and name == "X")
        except (cache_files.Unverified, OSError) as err:
            reason = str(err) if isinstance(err, cache_files.Unverified) else f"cannot be read ({err})"
            if reported is None or str(path) not in reported:
                warn(f"{path}: pool cache file {reason}; not used, the pool is rebuilt from the CSVs")
                if reported is not None:
                    reported.add(str(path))
            return None
        if identity is not None:
            refreshed[name] = identity
    x_source = None
    if isinstance(arrays["X"], np.memmap) and arrays["X"].dtype == np.float32:
        x_stat = refreshed.get("X") or (records.get("X") or {}).get("stat")
        if x_stat is not None:
            x_source = (str(cache / "X.npy"), list(x_stat), int(arrays["X"].offset))
    if refreshed:  # verified by content: remember the new identities (best effort)
        with contextlib.suppress(OSError):
            files = {k: dict(v, stat=refreshed.get(k, v.get("stat"))) for k, v in records.items()}
            atomic.write_json(meta_path, dict(meta, files=files), indent=None)
    return meta, Pool(arrays["song_ids"].astype(str), arrays["X"], arrays["offsets"], arrays["frame_times"],
                      skipped=dict(meta.get("skipped", {})), x_source=x_source)


@contextlib.contextmanager
def _locked(feats_dir: Path):
    # One rebuild at a time per folder; a second process waits, then finds the fresh cache.
    # The lock lives in the temp folder so a read-only pool folder can still be read.
    key = str(feats_dir.resolve()).replace(os.sep, "_")
    lock_path = Path(tempfile.gettempdir()) / f"trompa_mer_pool{key[-120:]}.lock"
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_song(path: Path):
    """(windows, frame times), or the reason the file is not a readable feature CSV."""
    try:
        table = read_feature_csv(path)
    except MERError as err:
        reason = str(err)
        return reason[len(f"{path}: "):] if reason.startswith(f"{path}: ") else reason
    return (table[FEATURE_NAMES].to_numpy(dtype=np.float32),
            table["frameTime"].to_numpy(dtype=np.float32))


def _warn_skipped(feats_dir: Path, pool: Pool) -> None:
    for name, reason in sorted(pool.skipped.items()):
        warn(f"{feats_dir / name}: skipped, not a readable feature CSV ({reason}); its song is left "
             f"out of the pool until the file is extracted again")


def open_pool(feats_dir) -> Pool:
    """The pool the loop's steps read: load_pool with a refusal that names the setting to fix
    when the folder is missing or holds no feature CSVs."""
    feats_dir = Path(feats_dir)
    if not feats_dir.is_dir():
        raise MERError(f"{feats_dir}: pool folder of feature CSVs not found (set MER_FEATS_DIR "
                       f"or run extract_features.py into it)")
    pool = load_pool(feats_dir)
    if len(pool.song_ids) == 0:
        raise MERError(f"{feats_dir}: the pool holds no feature CSVs")
    return pool


def load_pool(feats_dir, cache: bool = True, progress: bool = False, jobs: int = 1, mmap: bool = True,
              verify: bool = False) -> Pool:
    """The pool of `feats_dir/*.csv`, from its sharded store (pool_shards) when the folder has
    not changed; a changed folder refreshes the store (only the shards of changed songs are
    rewritten). A single-file store of before (.pool_cache) that matches the folder is read as
    it is; when the folder changed it is converted (its unchanged songs' rows copied into
    shards, then removed). verify (extract_features.py --consolidate): check every shard
    against the manifest, rebuilding one that does not match from the CSVs."""
    feats_dir = Path(feats_dir)
    if not feats_dir.is_dir():
        raise MERError(f"{feats_dir}: feature pool folder not found")
    listing = folder_listing(feats_dir)
    if not listing:
        raise MERError(f"{feats_dir}: no feature CSVs in the pool folder")
    cache_dir = feats_dir / CACHE_NAME
    store_dir = feats_dir / pool_shards.STORE_NAME
    reported: set = set()
    if cache and not verify:
        manifest = pool_shards.read_manifest(store_dir)
        if manifest is not None and manifest["listing"] == listing:
            return _sharded(feats_dir, store_dir, manifest, listing, mmap)
        if manifest is None:
            hit = _read_cache(cache_dir, mmap, reported)
            if hit is not None and hit[0]["listing"] == listing:
                hit[1].listing = listing
                _warn_skipped(feats_dir, hit[1])
                return hit[1]
    with _locked(feats_dir):
        listing = folder_listing(feats_dir)
        pool = None
        if cache:
            manifest = pool_shards.read_manifest(store_dir)
            if manifest is not None and manifest["listing"] == listing and not verify:
                return _sharded(feats_dir, store_dir, manifest, listing, mmap)
            old = _read_cache(cache_dir, mmap=True, reported=reported) if manifest is None else None
            if not os.access(feats_dir, os.W_OK):
                pool = _build(feats_dir, listing, old, progress, jobs)  # a read-only folder: from memory
            else:
                manifest = pool_shards.refresh(feats_dir, store_dir, listing, manifest, old,
                                               lambda paths: _read_songs(paths, jobs), progress, verify)
                for path in (cache_dir, cache_dir.with_name(CACHE_NAME + ".old")):
                    shutil.rmtree(path, ignore_errors=True)  # converted
                return _sharded(feats_dir, store_dir, manifest, listing, mmap)
        else:
            pool = _build(feats_dir, listing, None, progress, jobs)
        pool.listing = listing
    _warn_skipped(feats_dir, pool)
    if len(pool.song_ids) == 0:
        raise MERError(f"{feats_dir}: none of the {len(listing)} feature CSVs in the pool folder is readable")
    return pool


def _read_songs(paths, jobs: int):
    if jobs > 1 and len(paths) > 1:
        from joblib import Parallel, delayed

        return Parallel(n_jobs=jobs)(delayed(_read_song)(p) for p in paths)
    return [_read_song(p) for p in paths]


def _sharded(feats_dir: Path, store_dir: Path, manifest: dict, listing: dict, mmap: bool) -> Pool:
    """The pool of a sharded store's manifest: X read from the shards on demand (mmap), or
    read whole into memory (mmap=False)."""
    ids, offsets, index = pool_shards.open_store(store_dir, manifest, feats_dir)
    X, times = pool_shards.LazyRows(index, slice(1, None)), pool_shards.LazyRows(index, 0)
    if not mmap:
        X, times, index = np.asarray(X), np.asarray(times), None
    pool = Pool(ids, X, offsets, times, skipped=dict(manifest.get("skipped", {})), listing=listing, shards=index)
    _warn_skipped(feats_dir, pool)
    if len(pool.song_ids) == 0:
        raise MERError(f"{feats_dir}: none of the {len(listing)} feature CSVs in the pool folder is readable")
    return pool


def _build(feats_dir: Path, listing: dict, old, progress: bool, jobs: int) -> Pool:
    from joblib import Parallel, delayed
    from tqdm import tqdm

    names = sorted(listing)
    song_ids = [n[:-4].lower() for n in names]
    dupes = [s for s, n in Counter(song_ids).items() if n > 1]
    if dupes:
        raise MERError(f"{feats_dir}: song id {sorted(dupes)[0]!r} appears in more than one CSV (ids are case-insensitive)")
    reuse = {}
    if old is not None:
        old_meta, old_pool = old
        for name in names:
            if old_meta["listing"].get(name) == listing[name] and name[:-4].lower() in old_pool:
                sid = name[:-4].lower()
                i = old_pool.index_of(sid)
                sl = slice(old_pool.offsets[i], old_pool.offsets[i + 1])
                reuse[name] = (np.asarray(old_pool.X[sl]), np.asarray(old_pool.frame_times[sl]))
    todo = [n for n in names if n not in reuse]
    read = Parallel(n_jobs=jobs)(delayed(_read_song)(feats_dir / n)
                                 for n in tqdm(todo, desc="consolidating pool", unit="song",
                                               disable=not progress, file=sys.stderr))
    parts = dict(reuse)
    parts.update(zip(todo, read))
    skipped = {n: parts.pop(n) for n in todo if isinstance(parts[n], str)}
    order = [i for i in np.argsort(np.asarray(song_ids, dtype=str), kind="stable") if names[i] in parts]
    ordered = [names[i] for i in order]
    X = np.concatenate([parts[n][0] for n in ordered]) if ordered else np.zeros((0, len(FEATURE_NAMES)), np.float32)
    times = np.concatenate([parts[n][1] for n in ordered]) if ordered else np.zeros(0, np.float32)
    lengths = [len(parts[n][0]) for n in ordered]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Pool(np.asarray([song_ids[i] for i in order], dtype=str), X, offsets, times, skipped=skipped)


def _write_cache(feats_dir: Path, cache_dir: Path, listing: dict, pool: Pool) -> None:
    """The single-file store of before (write_single_file_store: tests and benchmarks)."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{CACHE_NAME}.tmp-", dir=feats_dir))
    except OSError:
        return  # a read-only pool folder: work from memory, no cache
    try:
        np.save(tmp / "X.npy", np.ascontiguousarray(pool.X, dtype=np.float32))
        np.save(tmp / "offsets.npy", pool.offsets)
        np.save(tmp / "frame_times.npy", pool.frame_times)
        np.save(tmp / "song_ids.npy", pool.song_ids.astype(str))
        files = {name: cache_files.record_of(tmp / f"{name}.npy") for name in CACHE_ARRAYS}
        atomic.write_json(tmp / "meta.json", {"version": CACHE_VERSION, "listing": listing,
                                              "feature_names": FEATURE_NAMES, "skipped": pool.skipped,
                                              "files": files},
                          indent=None)
        atomic.replace_dir(tmp, cache_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_single_file_store(feats_dir) -> None:
    """Write the folder's single-file store of before (.pool_cache), removing the sharded store:
    what a pool consolidated before the sharded store has on disk (tests and benchmarks of
    reading, and converting, an old store)."""
    feats_dir = Path(feats_dir)
    listing = folder_listing(feats_dir)
    pool = _build(feats_dir, listing, None, False, 1)
    shutil.rmtree(feats_dir / pool_shards.STORE_NAME, ignore_errors=True)
    _write_cache(feats_dir, feats_dir / CACHE_NAME, listing, pool)
