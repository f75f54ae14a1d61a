"""The sharded pool store (issue 22 item 3): the pool's windows in shards of a fixed number of
songs, each a memory-mappable .npy checksummed in one manifest, refreshed shard by shard.

Layout, in `<feats_dir>/.pool_shards/`:
  manifest.json      {"version": 1, "feature_names": [...260 names], "shard_songs": 1024,
                      "listing": {CSV name: [size, mtime_ns]} (the folder it was built from),
                      "skipped": {CSV name: why it is not in the pool},
                      "next": the number the next shard file gets (names are never reused),
                      "retired": [shard files the previous manifest named, this one not: kept
                                  until the next refresh for steps still reading them],
                      "shards": {"shard-00000.npy": {"csvs": [CSV names, in row order],
                                 "lengths": [windows of each], "sha256": ..., "stat": [inode, size,
                                 mtime_ns, ctime_ns]}, ...}}
  shard-00000.npy    float32 (windows of its songs, 261): column 0 frameTime, then the 260
                     features in FEATURE_NAMES order; its songs' windows one after the other
A shard holds at most `shard_songs` songs. Refreshing (load_pool when the folder changed, or
extract_features.py --consolidate) rewrites only the shards holding a changed or removed song,
and puts new songs into the newest shard while it has room, then into new shards. A rewritten
shard is a new file (the next number): the manifest is written (atomically) after every new
shard is in place and names only complete files, and the files it no longer names are removed
one refresh later, so a killed refresh leaves the previous manifest and every file it names,
and a step that opened the previous manifest can still read its shards.

Reading: the manifest is parsed when the pool is opened; a shard is verified the first time a
step reads from it (cache_files.open_npy: its identity on disk unchanged since the manifest
recorded it, or its sha256 recomputed and compared), never before, so a sample of 500 songs
verifies the shards holding them and no other. A shard that does not match is an error naming
the file and what the manifest expected; extract_features.py --consolidate rebuilds it from
the CSVs.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path

import numpy as np

from . import atomic, cache_files
from .errors import MERError, warn
from .features import FEATURE_NAMES

STORE_NAME = ".pool_shards"
MANIFEST = "manifest.json"
VERSION = 1
SHARD_SONGS = 1024  # ≈ 64 MB per shard at 60 windows a song; MER_POOL_SHARD_SONGS overrides


def shard_songs_setting() -> int:
    """Songs per shard for shards written now (MER_POOL_SHARD_SONGS, default SHARD_SONGS)."""
    text = os.environ.get("MER_POOL_SHARD_SONGS", "").strip()
    if not text:
        return SHARD_SONGS
    if not text.isdigit() or int(text) < 1:
        raise MERError(f"MER_POOL_SHARD_SONGS={text!r}: expected a positive whole number of songs per shard")
    return int(text)
SHARD_NAME = re.compile(r"shard-\d{5,}\.npy")
WIDTH = len(FEATURE_NAMES) + 1


def shard_name(number: int) -> str:
    return f"shard-{number:05d}.npy"


def read_manifest(store_dir: Path):
    """The manifest (dict) of the store, or None when there is none (or of another version or
    feature layout, or unreadable: the store is then rebuilt)."""
    path = store_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = atomic.read_json_object(path)
    except (MERError, OSError):
        return None
    if manifest.get("version") != VERSION or manifest.get("feature_names") != FEATURE_NAMES:
        return None
    shards = manifest.get("shards")
    if not isinstance(shards, dict) or not isinstance(manifest.get("listing"), dict):
        return None
    for name, record in shards.items():
        if (not SHARD_NAME.fullmatch(name) or not isinstance(record, dict)
                or not isinstance(record.get("csvs"), list) or not isinstance(record.get("lengths"), list)
                or len(record["csvs"]) != len(record["lengths"])):
            return None
    return manifest


class ShardReader:
    """The shards of one manifest: each verified on first use, read by song."""

    def __init__(self, store_dir: Path, manifest: dict, feats_dir: Path):
        self.store_dir = Path(store_dir)
        self.manifest = manifest
        self.feats_dir = Path(feats_dir)
        self.names = sorted(manifest["shards"])
        self._open = {}        # shard index -> (memmap, identity, data offset)
        self._refreshed = {}   # shard name -> identity verified by content (a copied folder)

    def shard(self, k: int):
        """(memmap, identity, data offset) of shard k, verified the first time."""
        if k not in self._open:
            name = self.names[k]
            record = self.manifest["shards"][name]
            path = self.store_dir / name
            try:
                array, refreshed = cache_files.open_npy(path, record, mmap=True)
            except cache_files.Unverified as err:
                raise MERError(f"{path}: pool shard {err}: {MANIFEST} expects sha256 {record.get('sha256')} "
                               f"holding {len(record['csvs'])} songs ({sum(record['lengths'])} windows); "
                               f"rebuild it from the CSVs: extract_features.py --consolidate {self.feats_dir}") from None
            except OSError as err:
                raise MERError(f"{path}: pool shard cannot be read ({err.strerror or err}); rebuild it from "
                               f"the CSVs: extract_features.py --consolidate {self.feats_dir}") from None
            rows = int(sum(record["lengths"]))
            if array.dtype != np.float32 or array.shape != (rows, WIDTH):
                raise MERError(f"{path}: pool shard holds a {array.dtype} array of shape {array.shape}, "
                               f"{MANIFEST} expects float32 ({rows}, {WIDTH}); rebuild it from the CSVs: "
                               f"extract_features.py --consolidate {self.feats_dir}")
            identity = refreshed if refreshed is not None else record.get("stat")
            if refreshed is not None:
                self._refreshed[name] = refreshed
            self._open[k] = (array, list(identity), int(array.offset))
        return self._open[k]

    def read_rows(self, locations) -> np.ndarray:
        """(windows, 261) float32: the rows of each (shard, first row, windows) in order, read
        with pread from each shard file while it is the verified file (same identity), else
        copied from its memory map."""
        locations = list(locations)
        total = int(sum(n for _, _, n in locations))
        out = np.empty((total, WIDTH), dtype=np.float32)
        row_bytes = WIDTH * out.itemsize
        fds = {}
        try:
            at = 0
            for k, start, n in locations:
                array, identity, offset = self.shard(k)
                if k not in fds:
                    fd = None
                    with contextlib.suppress(OSError):
                        fd = os.open(self.store_dir / self.names[k], os.O_RDONLY)
                        if cache_files.identity(os.fstat(fd)) != identity:
                            os.close(fd)
                            fd = None
                    fds[k] = fd
                fd = fds[k]
                view = memoryview(out[at:at + n]).cast("B")
                if fd is None or os.preadv(fd, [view], offset + int(start) * row_bytes) != len(view):
                    out[at:at + n] = array[start:start + n]
                at += n
        finally:
            for fd in fds.values():
                if fd is not None:
                    os.close(fd)
        return out


class LazyRows:
    """A pool's X (or frame times) over the shards, read on demand: a slice of windows reads
    the shards holding them; anything else (np.asarray, fancy indexing) reads the whole pool
    into memory once."""

    def __init__(self, pool_index, columns):
        self._index = pool_index      # _ShardIndex
        self._columns = columns       # slice(1, None) for X, 0 for frame times
        n = int(pool_index.offsets[-1])
        self.shape = (n, WIDTH - 1) if isinstance(columns, slice) else (n,)
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, lo: int, hi: int) -> np.ndarray:
        return self._index.rows(lo, hi)[:, self._columns]

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)) and -self.shape[0] <= key < self.shape[0]:
            at = int(key) % self.shape[0]
            return self.rows(at, at + 1)[0]
        if isinstance(key, slice) and key.step in (None, 1):
            lo, hi, _ = key.indices(self.shape[0])
            return self.rows(lo, max(lo, hi))
        if isinstance(key, tuple) and key and isinstance(key[0], slice) and key[0].step in (None, 1):
            lo, hi, _ = key[0].indices(self.shape[0])
            return self.rows(lo, max(lo, hi))[(slice(None), *key[1:])]
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        whole = self._index.whole()[:, self._columns]
        whole = np.ascontiguousarray(whole)
        return whole if dtype is None else whole.astype(dtype, copy=False)


class _ShardIndex:
    """Where each song of the pool (sorted order) lies: its shard, first row and windows."""

    def __init__(self, reader: ShardReader, offsets, shard_of, row_of):
        self.reader = reader
        self.offsets = offsets
        self.shard_of = shard_of
        self.row_of = row_of
        self._whole = None

    def locations(self, idx):
        lengths = np.diff(self.offsets)
        return [(int(self.shard_of[i]), int(self.row_of[i]), int(lengths[i])) for i in idx]

    def rows(self, lo: int, hi: int) -> np.ndarray:
        if self._whole is not None:
            return self._whole[lo:hi]
        if hi <= lo:
            return np.zeros((0, WIDTH), dtype=np.float32)
        a = int(np.searchsorted(self.offsets, lo, side="right")) - 1
        b = int(np.searchsorted(self.offsets, hi, side="left"))
        got = self.reader.read_rows(self.locations(range(a, b)))
        start = lo - int(self.offsets[a])
        return got[start:start + (hi - lo)]

    def whole(self) -> np.ndarray:
        if self._whole is None:
            self._whole = self.rows(0, int(self.offsets[-1]))
        return self._whole


def open_store(store_dir: Path, manifest: dict, feats_dir: Path):
    """(song_ids sorted, offsets, _ShardIndex) of a manifest."""
    reader = ShardReader(store_dir, manifest, feats_dir)
    csvs, lengths, shard_of, row_of = [], [], [], []
    for k, name in enumerate(reader.names):
        record = manifest["shards"][name]
        n = [int(x) for x in record["lengths"]]
        csvs.extend(record["csvs"])
        lengths.extend(n)
        shard_of.extend([k] * len(n))
        row_of.extend(np.concatenate([[0], np.cumsum(n)[:-1]]).tolist() if n else [])
    ids = np.asarray([c[:-4].lower() for c in csvs], dtype=str)
    order = np.argsort(ids, kind="stable")
    lengths = np.asarray(lengths, dtype=np.int64)[order]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    index = _ShardIndex(reader, offsets, np.asarray(shard_of, dtype=np.int64)[order],
                        np.asarray(row_of, dtype=np.int64)[order])
    return ids[order], offsets, index


def refresh(feats_dir: Path, store_dir: Path, listing: dict, old_manifest, old_single, read_songs,
            progress: bool = False, verify: bool = False, shard_songs: int | None = None) -> dict:
    """Bring the store in line with the folder `listing`, rewriting only the shards that hold
    a changed or removed song (and the newest shard when new songs fill it), and return the
    manifest written. old_manifest: the store's manifest or None; old_single: (meta, Pool) of
    the single-file store of before, whose rows of unchanged songs are copied instead of
    parsing their CSVs (the conversion), or None. read_songs(names) -> [(X, times) or reason].
    verify: check every kept shard's content against the manifest (by identity, else hashed),
    rebuilding one that does not match from the CSVs (extract_features.py --consolidate)."""
    from tqdm import tqdm

    shard_songs = shard_songs_setting() if shard_songs is None else int(shard_songs)
    seen = {}
    for c in sorted(listing):
        if seen.setdefault(c[:-4].lower(), c) != c:
            raise MERError(f"{feats_dir}: song id {c[:-4].lower()!r} appears in more than one CSV (ids are "
                           f"case-insensitive)")
    store_dir.mkdir(exist_ok=True)
    manifest = old_manifest if old_manifest is not None else {}
    old_listing = manifest.get("listing", {})
    shards = dict(manifest.get("shards", {}))
    number = int(manifest.get("next", 0))
    if not shards:  # a new store: no number below one a previous manifest may still name
        number = max([number] + [int(p.name[6:-4]) + 1 for p in store_dir.glob("shard-*.npy")
                                 if SHARD_NAME.fullmatch(p.name)])
    reader = ShardReader(store_dir, {"shards": dict(shards)}, feats_dir) if shards else None
    placed = set()
    dirty = {}  # shard name -> [(csv, rows or None = read it)], rebuilt
    for k, name in enumerate(sorted(shards)):
        record = shards[name]
        keep = [c for c in record["csvs"] if c in listing]
        unchanged = [c for c in keep if old_listing.get(c) == listing[c]]
        intact = True
        if verify or len(unchanged) != len(record["csvs"]):
            try:
                reader.shard(k)
            except MERError as err:
                warn(f"{err}; rebuilt from the CSVs" if verify else str(err))
                intact = False
        if name in reader._refreshed:  # verified by its content (a copied folder): its identity now
            shards[name] = record = dict(record, stat=reader._refreshed[name])
        if intact and len(unchanged) == len(record["csvs"]):
            placed.update(record["csvs"])
            continue
        lengths = dict(zip(record["csvs"], record["lengths"]))
        starts = dict(zip(record["csvs"], np.concatenate([[0], np.cumsum(record["lengths"])[:-1]]).tolist()))
        dirty[name] = [(c, (k, starts[c], lengths[c]) if (intact and c in unchanged) else None) for c in keep]
        placed.update(keep)
    # an unreadable CSV stays skipped until it changes (it is not read again)
    skipped = {c: why for c, why in manifest.get("skipped", {}).items()
               if c in listing and old_listing.get(c) == listing[c] and c not in placed}
    new = [c for c in sorted(listing, key=lambda c: c[:-4].lower()) if c not in placed and c not in skipped]
    # new songs go into the shards rewritten anyway while they have room, then into the newest
    # shard while it has room, then into new shards
    newest = max(shards) if shards else None
    room = sum(max(0, shard_songs - len(e)) for e in dirty.values())
    if newest is not None and len(new) > room and newest not in dirty and len(shards[newest]["csvs"]) < shard_songs:
        k = sorted(shards).index(newest)
        record = shards[newest]
        starts = np.concatenate([[0], np.cumsum(record["lengths"])[:-1]]).tolist()
        dirty[newest] = [(c, (k, s, n)) for c, s, n in zip(record["csvs"], starts, record["lengths"])]
    groups = list(dirty.items())
    rest = list(new)
    for i, (name, entries) in enumerate(groups):
        room = shard_songs - len(entries)
        if room > 0 and rest:
            groups[i] = (name, entries + [(c, None) for c in rest[:room]])
            rest = rest[room:]
    while rest:
        groups.append((None, [(c, None) for c in rest[:shard_songs]]))
        rest = rest[shard_songs:]
    single_index = None
    if old_single is not None:
        single_meta, single_pool = old_single
        single_index = (single_meta.get("listing", {}), single_pool)
    written = {}
    total = sum(len(e) for _, e in groups)
    bar = tqdm(total=total, desc="consolidating pool", unit="song", disable=not progress, file=sys.stderr)
    try:
        for old_name, entries in groups:
            parts, csvs = [], []
            todo = []
            for c, loc in entries:
                if loc is not None:
                    parts.append(reader.read_rows([loc]))
                    csvs.append(c)
                    continue
                sid = c[:-4].lower()
                if single_index is not None and single_index[0].get(c) == listing[c] and sid in single_index[1]:
                    pool = single_index[1]
                    i = pool.index_of(sid)
                    lo, hi = int(pool.offsets[i]), int(pool.offsets[i + 1])
                    block = np.empty((hi - lo, WIDTH), dtype=np.float32)
                    block[:, 0] = pool.frame_times[lo:hi]
                    # read with pread from the verified file (not through its memory map, which
                    # would leave the whole old store resident by the end of the conversion)
                    block[:, 1:] = pool._rows_of_songs([i], [hi - lo])
                    parts.append(block)
                    csvs.append(c)
                    continue
                todo.append(len(parts))
                parts.append(None)
                csvs.append(c)
            read = read_songs([feats_dir / csvs[j] for j in todo]) if todo else []
            for j, got in zip(todo, read):
                if isinstance(got, str):
                    skipped[csvs[j]] = got
                else:
                    X, times = got
                    block = np.empty((len(X), WIDTH), dtype=np.float32)
                    block[:, 0] = times
                    block[:, 1:] = X
                    parts[j] = block
            keep = [(c, p) for c, p in zip(csvs, parts) if p is not None]
            bar.update(len(entries))
            if old_name is not None:
                shards.pop(old_name, None)
            if not keep:
                continue
            order = sorted(range(len(keep)), key=lambda j: keep[j][0][:-4].lower())
            keep = [keep[j] for j in order]
            name = shard_name(number)
            number += 1
            data = np.concatenate([p for _, p in keep])
            with atomic.atomic_path(store_dir / name) as tmp:
                np.save(tmp, data)
            written[name] = {"csvs": [c for c, _ in keep], "lengths": [len(p) for _, p in keep],
                             **cache_files.record_of(store_dir / name)}
            del data, parts, keep
    finally:
        bar.close()
    shards.update(written)
    # the shards the previous manifest named and this one does not are "retired": kept until
    # the next refresh, so a step that opened the previous manifest can still read them
    retired = sorted(set(manifest.get("shards", {})) - set(shards))
    result = {"version": VERSION, "feature_names": FEATURE_NAMES, "shard_songs": int(shard_songs),
              "listing": listing, "skipped": skipped, "next": number, "shards": shards, "retired": retired}
    atomic.write_json(store_dir / MANIFEST, result, indent=None)
    for path in store_dir.iterdir():  # files neither manifest names (and temporaries of a killed write)
        if path.name != MANIFEST and path.name not in shards and path.name not in retired:
            with contextlib.suppress(OSError):
                path.unlink()
    return result
