"""Committee members on a pretrained music tagger's song embeddings (docs/pretraining.md, "4Q").

A song's embedding is the musicnn MSD tagger's 200-unit penultimate layer (trompa_mer.musicnn),
its mean and then its standard deviation over the clip's 3-s patches: 400 numbers. Why this
front end: on 4Q's artist-grouped 5 × 3 protocol a logistic regression on it alone scores song
macro F1 .73, against .64-.67 for members on the IS13 window features; the tagger learned from
a million commercial songs what the 778 clips cannot teach (genre, instrumentation, "sad",
"happy", "mellow" among its 50 tags).

`MusicnnMember` (`algorithm = "musicnn"`, `input_kind = "audio"`, X = `members.SongAudio`):
a logistic regression by SGD (`SONG_SGD_PARAMS`, update = partial_fit) on the standardized
embeddings, like the song-statistics members. It reads audio the way the CNN and encoder
members do (the scripts' MER_AUDIO_DIR); the tagger itself is frozen, so a song is embedded
once: `embed` keeps every embedding in a verified cache file keyed by the sha256 of the
song's audio file (or samples) and the embedding's signature (weights and code).
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import os
from pathlib import Path

import numpy as np

from . import atomic, cache_files
from .errors import MERError, warn
from .members import SGDMember, SongAudio, SongStatistics

EMBEDDING_SIZE = 400
CACHE_PREFIX = "musicnn"


def song_embedding(samples: np.ndarray) -> np.ndarray:
    """(400,) float32: the penultimate layer's mean, then its standard deviation, over patches."""
    from . import musicnn

    penultimate = musicnn.patch_outputs(samples)["penultimate"]
    return np.concatenate([penultimate.mean(axis=0), penultimate.std(axis=0)]).astype(np.float32)


@functools.lru_cache(maxsize=1)
def embedding_signature() -> str:
    """Changes whenever an embedding can change: the weights' bytes and the code computing it."""
    from . import audio_cache, musicnn

    digest = hashlib.sha256(Path(musicnn.WEIGHTS).read_bytes())
    for function in (audio_cache.decode_resampled, musicnn.log_mel, musicnn.patches, musicnn.build_network,
                     musicnn.patch_outputs, song_embedding):
        digest.update(inspect.getsource(function).encode())
    return digest.hexdigest()[:12]


def _audio_file(source, song_id):
    files = getattr(source, "files", None)
    return None if files is None else files.get(str(song_id).lower())


_digests: dict = {}  # resolved path -> [identity, sha256]: a file is hashed once while unchanged
_embeddings: dict = {}  # (signature, audio sha256) -> embedding, for every member of a committee
SOURCES_INDEX = "sources.json"  # the cache folder's record of _digests, kept across processes


def _content_key(source, song_id) -> tuple[str, np.ndarray | None]:
    """(sha256 of the song's audio, its samples when they had to be read for it).

    An audio file's sha256 is reused while the file's identity (inode, size, mtime, ctime) is
    the one recorded with it: any write or replacement changes that identity (the same rule as
    the verified caches, trompa_mer.cache_files), so a ranking over a large pool does not hash
    every audio file again in every process."""
    path = _audio_file(source, song_id)
    if path is not None:
        resolved = str(Path(path).resolve())
        identity = cache_files.identity(os.stat(resolved))
        known = _digests.get(resolved)
        if not known or known[0] != identity:
            _digests[resolved] = [identity, cache_files.sha256_path(resolved)]
        return _digests[resolved][1], None
    from .audio_cache import get_audio

    samples = np.ascontiguousarray(get_audio(source, song_id), dtype=np.float32)
    return "samples-" + hashlib.sha256(samples.tobytes()).hexdigest(), samples


def cache_folder(source, cache_dir=None) -> Path | None:
    """Where `source`'s embeddings are kept: `cache_dir`, else beside its decoded audio."""
    base = cache_dir if cache_dir is not None else getattr(source, "cache_dir", None)
    return None if base is None else Path(base) / f"{CACHE_PREFIX}-{embedding_signature()}"


def _read_cached(entry: Path):
    record = _record(entry)
    if record is None:
        return None
    try:
        vector, _ = cache_files.open_npy(entry, record)
    except cache_files.Unverified as err:
        warn(f"{entry}: song embedding {err}; not used, computed again")
        return None
    if vector.shape != (EMBEDDING_SIZE,) or vector.dtype != np.float32 or not np.isfinite(vector).all():
        warn(f"{entry}: song embedding is not {EMBEDDING_SIZE} finite float32 numbers; not used, computed again")
        return None
    return vector


def _record(entry: Path):
    try:
        return atomic.read_json_object(entry.with_suffix(".json"))
    except (MERError, OSError):
        return None


def _write_cached(entry: Path, vector: np.ndarray) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_path(entry) as tmp:
            np.save(tmp, vector, allow_pickle=False)
        atomic.write_json(entry.with_suffix(".json"), cache_files.record_of(entry))
    except (OSError, MERError) as err:  # a cache that cannot be written costs time, not results
        warn(f"{entry}: song embedding not cached ({err})")


def embed(song_ids, source, cache_dir=None, progress: bool = False) -> np.ndarray:
    """(songs, 400) float32 embeddings of `song_ids`' audio from `source` (song id -> 16 kHz
    samples; an AudioCache's files are decoded directly, without writing 16 kHz copies)."""
    from tqdm.auto import tqdm

    from .audio_cache import decode_resampled
    from .finite import check_arrays

    signature = embedding_signature()
    folder = cache_folder(source, cache_dir)
    index_before = {}
    if folder is not None:
        index_before = _read_index(folder)
        for path, entry in index_before.items():
            _digests.setdefault(path, entry)
    out = np.empty((len(song_ids), EMBEDDING_SIZE), dtype=np.float32)
    for row, song_id in enumerate(tqdm(list(song_ids), desc="musicnn embeddings", unit="song",
                                       disable=not progress)):
        digest, samples = _content_key(source, song_id)
        vector = _embeddings.get((signature, digest))
        entry = None if folder is None else folder / f"{digest[:40]}.npy"
        if vector is None and entry is not None:
            vector = _read_cached(entry)
        if vector is None:
            if samples is None:  # an audio file: decoded here, no 16 kHz copy written
                samples = decode_resampled(_audio_file(source, song_id))
            vector = song_embedding(samples)
            check_arrays([vector], f"song {song_id!r}: musicnn embedding")
            if entry is not None:
                _write_cached(entry, vector)
        _embeddings[(signature, digest)] = vector
        out[row] = vector
    if folder is not None:
        known = {p: _digests[p] for p in (str(Path(_audio_file(source, s)).resolve()) for s in song_ids
                                          if _audio_file(source, s) is not None)}
        if any(index_before.get(p) != entry for p, entry in known.items()):
            _write_index(folder, {**index_before, **known})
    return out


def _read_index(folder: Path) -> dict:
    """path -> [identity, sha256] recorded in the cache folder (entries of another shape are
    dropped: the file is re-hashed)."""
    try:
        index = atomic.read_json_object(folder / SOURCES_INDEX)
    except (MERError, OSError):
        return {}
    return {p: e for p, e in index.items()
            if isinstance(e, list) and len(e) == 2 and isinstance(e[0], list) and isinstance(e[1], str)}


def _write_index(folder: Path, index: dict) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic.write_json(folder / SOURCES_INDEX, index, indent=None)
    except (OSError, MERError) as err:
        warn(f"{folder / SOURCES_INDEX}: not written ({err}); the audio files are hashed again next time")


class MusicnnMember(SongStatistics, SGDMember):
    """Logistic regression by SGD on a song's musicnn embedding (see the module docstring)."""

    algorithm = "musicnn"
    input_kind = "audio"

    def __init__(self, temperature: float = 1.0, params: dict | None = None, seed: int = 1987):
        from . import hyperparameters

        super().__init__(temperature, dict(hyperparameters.SONG_SGD_PARAMS if params is None else params), seed)

    @staticmethod
    def _rows(X):
        if isinstance(X, SongAudio):
            return embed(X.song_ids, X.source)
        rows = np.asarray(X)
        if rows.ndim != 2 or rows.shape[1] != EMBEDDING_SIZE:
            raise MERError(f"musicnn member: reads audio (input kind 'audio'): expected SongAudio(song ids, "
                           f"audio source) or ({EMBEDDING_SIZE}-column embeddings), got {type(X).__name__}")
        return rows

    def fit(self, X, y, sample_weight=None):
        return super().fit(self._rows(X), y, sample_weight)

    def update(self, X, y):
        return super().update(self._rows(X), y)

    def predict_proba(self, X) -> np.ndarray:
        return super().predict_proba(self._rows(X))

    def _extra_meta(self) -> dict:
        return {**super()._extra_meta(), "embedding": {"front_end": "musicnn MSD (trompa_mer.musicnn)",
                                                       "signature": embedding_signature(),
                                                       "size": EMBEDDING_SIZE}}
