"""A committee scored on a whole pool: chunks of songs side by side, and two caches.

pool_song_proba scores the pool in chunks of whole songs, `jobs` threads at a time (numpy and
XGBoost release the GIL). The caches live in the pool folder beside the pool store:
  .song_proba_cache/  a saved committee's song probabilities on the pool (cached_song_proba)
  .tree_margin_cache/ the margins of tree members' leading rounds (TreeMarginCache)
Both are keyed so that any change to what determines the answer is a miss, both are written
atomically, and a miss, a damaged file or a read-only folder only means computing. Nothing is
served unverified: a cache file is named `<key>-<sha256 of its bytes>.npy`, read once, and used
only when those bytes hash to its name; a file that does not (changed or damaged after it was
written) is reported as one warning, removed where possible, and the answer computed again.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from . import atomic
from .committee import Songs
from .errors import warn
from .pool import folder_listing
from .quadrants import N_CLASSES


def pool_song_proba(committee, pool, jobs: int = 1, chunk_windows: int = 60_000,
                    audio_source=None, crowd_rows=None, margin_cache=None) -> np.ndarray:
    """committee.song_proba over the whole pool, in chunks of whole songs, `jobs` at a time.

    Chunks keep the standardized copy and the members' temporaries small (the pool can be
    600,000 windows), and threads run chunks side by side. crowd_rows: (songs, 6) the pool
    songs' crowd rows for crowd-aware members. margin_cache (a TreeMarginCache for this pool):
    tree members start from the cached margins of their leading rounds and evaluate only the
    rest; their full margins are stored for the next version of the member.
    """
    n_songs = len(pool.song_ids)
    offsets = np.asarray(pool.offsets)
    n_windows = int(offsets[-1])
    n_chunks = max(1, int(np.ceil(n_windows / chunk_windows)))
    bounds = np.unique(np.searchsorted(offsets, np.linspace(0, n_windows, n_chunks + 1)).clip(0, n_songs))
    bounds[0], bounds[-1] = 0, n_songs
    pairs = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    prefixes, margins = {}, {}
    if margin_cache is not None:
        for i, (_, member) in enumerate(committee.members):
            if member.margin_cacheable:
                prefixes[i] = margin_cache.lookup(member, n_windows)
                margins[i] = np.empty((n_windows, N_CLASSES), dtype=np.float32)
    song_ids = np.asarray(pool.song_ids).tolist()

    def part(pair):
        a, b = pair
        lo, hi = offsets[a], offsets[b]
        songs = Songs.from_offsets(np.asarray(pool.X[lo:hi]), offsets[a:b + 1] - lo, song_ids[a:b],
                                   audio=audio_source, crowd=None if crowd_rows is None else crowd_rows[a:b])
        prefix = {i: (found[0], found[1][lo:hi]) for i, found in prefixes.items() if found is not None}
        out = {}
        proba = committee.song_proba(songs, tree_prefix=prefix, tree_margins_out=out)
        for i, values in out.items():
            if i in margins:
                margins[i][lo:hi] = values
        return proba

    if jobs > 1 and len(pairs) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=int(jobs)) as executor:
            parts = list(executor.map(part, pairs))
    else:
        parts = [part(pair) for pair in pairs]
    for i, values in margins.items():
        found = prefixes[i]
        if found is None or found[0] < committee.members[i][1].booster.num_boosted_rounds():
            margin_cache.store(committee.members[i][1], values)
    return np.concatenate(parts, axis=1)


# --- cache files verified by the checksum in their name -------------------------------------
def _write_checked(directory: Path, stem: str, array) -> Path:
    """Write `array` atomically as `<directory>/<stem>-<sha256 of the file's bytes>.npy`."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    data = buffer.getvalue()
    path = directory / f"{stem}-{hashlib.sha256(data).hexdigest()}.npy"
    if not path.exists():
        directory.mkdir(exist_ok=True)
        atomic.write_bytes(path, data)
    return path


def _read_checked(path: Path, what: str):
    """The array in cache file `path`, read once and checked against the sha256 in its name;
    None (with a warning naming the file, which is removed) when it does not match or is not
    a readable array; None quietly when it vanished."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    expected = path.stem.rsplit("-", 1)[-1]
    problem = None
    if hashlib.sha256(data).hexdigest() != expected:
        problem = "does not match the checksum in its name (changed or damaged after it was written)"
    else:
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError) as err:
            problem = f"is not a readable array ({err})"
    warn(f"{path}: cache file of {what} {problem}; not used, recomputed")
    with contextlib.suppress(OSError):
        path.unlink()
    return None


def _any_npy(directory: Path) -> bool:
    """Whether `directory` holds any .npy file (False when it is missing or unreadable)."""
    try:
        with os.scandir(directory) as entries:
            return any(entry.name.endswith(".npy") for entry in entries)
    except OSError:
        return False


def _candidates(directory: Path, stem: str) -> list:
    try:
        return sorted(directory.glob(f"{stem}-*.npy"))
    except OSError:
        return []


# --- cached song probabilities of a committee on a pool -----------------------------------
SONG_PROBA_CACHE = ".song_proba_cache"
SONG_PROBA_CACHE_KEEP = 8  # files kept per pool folder, least recently used go first


def cached_song_proba(committee, feats_dir, song_ids, compute, listing: dict | None = None):
    """`compute()` ((n_members, n_songs, 4) song probabilities of `committee` on the pool in
    `feats_dir`), read from a cache file when the same committee already scored the same pool.

    A saved committee folder is immutable (checksummed in committee.json) and the pool folder
    is identified as the pool cache does (name, size and mtime of every CSV), so the key
    (committee digest + pool listing + song order) changes whenever either does. The file,
    `<key>-<sha256 of its bytes>.npy`, is written atomically beside the pool cache
    (`<feats_dir>/.song_proba_cache/`) and served only when its bytes match that checksum (else
    a warning and a recompute); a read-only pool folder, or a committee with no digest (see
    Committee.content_digest), just computes. compute=None only looks: the cached array or
    None. listing: the pool folder's listing as the pool was opened with (Pool.listing), so
    the folder is not listed twice.
    """
    digest = committee.content_digest()
    if digest is None:
        return None if compute is None else compute()
    return _cached_by_digest(digest, len(committee.members), feats_dir, song_ids, compute, listing)


def saved_song_proba(committee_dir, feats_dir, song_ids, listing: dict | None = None):
    """The cached song probabilities of the saved committee in `committee_dir` on the pool, or
    None: cached_song_proba's lookup keyed from the folder's verified manifest alone (no member
    is built, so their libraries are not imported)."""
    from .committee import Committee

    saved = Committee.saved_digest(committee_dir)
    if saved is None:
        return None
    return _cached_by_digest(saved[0], saved[1], feats_dir, song_ids, None, listing)


# the JSON text of the last pool listing keyed: a ranking looks its committee's scores up twice
# (from the saved manifest, then from the loaded committee) with the same listing, and at
# 100,000 songs encoding it costs about a quarter of a second each time
_listing_json: tuple = (None, "")


def song_proba_key(digest, listing: dict, song_ids) -> str:
    """The cache key of a committee's (`digest`) scores of `song_ids` on a pool folder
    (`listing`): the sha256 of json.dumps({"committee", "pool", "songs"}, sort_keys=True),
    assembled from the parts' JSON (the same text, the listing's encoded once per listing)."""
    global _listing_json
    if _listing_json[0] is not listing:
        _listing_json = (listing, json.dumps(listing, sort_keys=True))
    text = (f'{{"committee": {json.dumps(digest)}, "pool": {_listing_json[1]}, '
            f'"songs": {json.dumps([str(s) for s in song_ids])}}}')
    return hashlib.sha256(text.encode()).hexdigest()


def _cached_by_digest(digest, n_members, feats_dir, song_ids, compute, listing):
    feats_dir = Path(feats_dir)
    cache_dir = feats_dir / SONG_PROBA_CACHE
    if compute is None and not _any_npy(cache_dir):
        return None  # nothing cached on this pool: no key to compute (the listing's encoding)
    if listing is None:
        listing = folder_listing(feats_dir)
    key = song_proba_key(digest, listing, song_ids)
    expected_shape = (n_members, len(song_ids), N_CLASSES)
    for path in _candidates(cache_dir, key):
        cached = _read_checked(path, "song probabilities")
        if cached is not None and cached.shape == expected_shape and cached.dtype == np.float64 \
                and np.all(np.isfinite(cached)):
            # recently used: kept longest (the default committee's scores, read by every new
            # user, would otherwise go after eight retrains' entries and be recomputed)
            with contextlib.suppress(OSError):
                os.utime(path)
            return cached
    if compute is None:
        return None
    proba = np.asarray(compute(), dtype=np.float64)
    try:
        _write_checked(cache_dir, key, proba)
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
    only means computing. Files live in `<feats_dir>/.tree_margin_cache/` as
    `r<rounds>-<key>-<sha256 of the file>.npy`, written atomically and read whole: one whose
    bytes do not match its name is a warning and a recompute. The least recently used beyond
    TREE_MARGIN_CACHE_KEEP are removed.
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

    def _stem(self, member, rounds: int) -> str:
        digest = hashlib.sha256(self.context.encode() + member.leading_rounds_bytes(rounds)).hexdigest()
        return f"r{rounds:05d}-{digest}"

    def lookup(self, member, n_windows: int):
        """(rounds, (n_windows, 4) float32 margins, verified) of the longest cached leading part
        of `member`, or None."""
        total = member.booster.num_boosted_rounds()
        try:
            cached_rounds = {int(p.name[1:6]) for p in self.dir.glob("r[0-9][0-9][0-9][0-9][0-9]-*.npy")}
        except OSError:
            return None
        for rounds in sorted((r for r in cached_rounds if 0 < r <= total), reverse=True):
            for path in _candidates(self.dir, self._stem(member, rounds)):
                margins = _read_checked(path, "tree margins")
                if margins is not None and margins.shape == (n_windows, N_CLASSES) and margins.dtype == np.float32:
                    with contextlib.suppress(OSError):
                        os.utime(path)  # recently used: kept longest
                    return rounds, margins
        return None

    def store(self, member, margins) -> None:
        stem = self._stem(member, member.booster.num_boosted_rounds())
        try:
            if not _candidates(self.dir, stem):
                _write_checked(self.dir, stem, np.ascontiguousarray(margins, dtype=np.float32))
            files = sorted(self.dir.glob("r*.npy"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
            for stale in files[TREE_MARGIN_CACHE_KEEP:]:
                stale.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only or full pool folder: no cache, same answers
