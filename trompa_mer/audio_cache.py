"""Audio for the CNN: 16 kHz mono float32 arrays per song, cached as .npy and memory-mapped.

The CNN member reads its input through an "audio source": any mapping from a song id to a
1-D float32 array at `SAMPLE_RATE` (a plain dict works, which is what the tests use).
`AudioCache` is the on-disk one: it decodes each file once (soundfile), mixes to mono,
resamples with soxr, writes `<cache_dir>/<song_id>-<tag>.npy` atomically and afterwards returns
a read-only memory map, so a random 3.7 s training chunk reads a few hundred kilobytes instead
of decoding the whole song again.

An entry belongs to one source file and is trusted only as far as it is checked (issue 23):
  - its name carries a tag of the source's resolved path, so two folders (X/clips, Y/clips)
    sharing a cache folder never read each other's audio;
  - its record `<song_id>-<tag>.json` (written last) holds the source's identity on disk
    [inode, size, mtime_ns, ctime_ns] and sha256, the sample rate, and the entry's own sha256
    and identity. A source whose identity changed is hashed: other content (a file replaced,
    even with its old size and times) is decoded again, the same content is reused;
  - the entry is opened once and used only when it is the file recorded (its identity) or its
    bytes match the recorded sha256 (trompa_mer.cache_files); otherwise one warning naming it,
    and the song is decoded again.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from . import atomic, cache_files
from .atomic import atomic_path
from .errors import MERError, warn
from .finite import check_samples

SAMPLE_RATE = 16000
AUDIO_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff")
DEFAULT_CACHE_NAME = ".audio16k"
RECORD_VERSION = 1


def decode_resampled(path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode an audio file to mono float32 at `sample_rate` (soundfile + soxr)."""
    import soundfile
    import soxr

    path = Path(path)
    try:
        samples, native_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, TypeError) as err:
        raise MERError(f"{path}: cannot decode audio ({err})") from None
    if samples.shape[0] == 0:
        raise MERError(f"{path}: audio has no samples, expected at least one")
    check_samples(samples, path)
    mono = samples.mean(axis=1, dtype=np.float32)
    if native_rate != sample_rate:
        # soxr's default "HQ" quality; resampling is never hand-written here.
        mono = soxr.resample(mono, native_rate, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _song_id(path: Path) -> str:
    return path.stem.lower()


class AudioCache(Mapping):
    """Song id -> 16 kHz mono float32 array (read-only memory map), backed by .npy files.

    `files` maps song ids (lowercase) to audio files. A cache entry belongs to one source file
    (its resolved path, identity and sha256; see the module's docstring): replacing a song's
    audio, whatever its times, is picked up, and an entry that fails its checksum is decoded
    again with a warning.
    """

    def __init__(self, files: Mapping[str, os.PathLike | str], cache_dir, sample_rate: int = SAMPLE_RATE):
        self.files = {str(k).lower(): Path(v) for k, v in files.items()}
        self.cache_dir = Path(cache_dir)
        self.sample_rate = int(sample_rate)
        self._checked: set = set()   # (song, cache file mtime) whose samples were found finite

    @classmethod
    def from_folder(cls, audio_dir, cache_dir=None, sample_rate: int = SAMPLE_RATE,
                    extensions=AUDIO_EXTENSIONS) -> "AudioCache":
        """All audio files directly in `audio_dir`; song id = lowercase file stem.

        `cache_dir` defaults to `<audio_dir>/.audio16k` (pass one when the audio folder is
        read-only).
        """
        audio_dir = Path(audio_dir)
        if not audio_dir.is_dir():
            raise MERError(f"{audio_dir}: audio folder not found, expected a folder of audio files")
        wanted = {e.lower() for e in extensions}
        files: dict[str, Path] = {}
        for path in sorted(audio_dir.iterdir()):
            if not path.is_file() or path.suffix.lower() not in wanted:
                continue
            song = _song_id(path)
            if song in files:
                raise MERError(f"{path}: song id {song!r} also used by {files[song].name}; "
                               "expected one audio file per song id")
            files[song] = path
        if not files:
            raise MERError(f"{audio_dir}: no audio files found, expected files ending in "
                           + ", ".join(sorted(wanted)))
        if cache_dir is None:
            cache_dir = audio_dir / DEFAULT_CACHE_NAME
        return cls(files, cache_dir, sample_rate)

    # --- Mapping ---------------------------------------------------------------------------
    def __getitem__(self, song_id) -> np.ndarray:
        key = str(song_id).lower()
        source = self.files.get(key)
        if source is None:
            raise KeyError(song_id)
        samples = self._cached(key, source)
        if samples is None:
            self._build(key, source)
            samples = self._cached(key, source)
            if samples is None:  # the source changed while it was decoded: use a fresh decode
                return decode_resampled(source, self.sample_rate)  # (checked finite there)
        # every sample is checked once per cache entry and process (an entry written before the
        # check may hold NaN); later reads stay a few hundred kilobytes of a memory map
        cached = self.cache_path(key)
        stamp = (key, cached.stat().st_mtime_ns)
        if stamp not in self._checked:
            check_samples(samples, f"{cached} (16 kHz cache of {source})")
            self._checked.add(stamp)
        return samples

    def __iter__(self):
        return iter(sorted(self.files))

    def __len__(self) -> int:
        return len(self.files)

    def __contains__(self, song_id) -> bool:
        return str(song_id).lower() in self.files

    def __repr__(self) -> str:
        return f"AudioCache({len(self.files)} songs, cache={self.cache_dir})"

    # --- cache -------------------------------------------------------------------------------
    def cache_path(self, song_id: str) -> Path:
        """The entry of `song_id`'s audio file: `<song_id>-<tag of its resolved path>.npy`."""
        source = Path(self.files[str(song_id).lower()]).resolve()
        tag = hashlib.sha256(str(source).encode()).hexdigest()[:16]
        return self.cache_dir / f"{str(song_id).lower()}-{tag}.npy"

    def source_digest(self, song_id) -> str:
        """sha256 of the song's audio file as its verified cache entry records it (the entry is
        built first when needed): what the decoded audio depends on."""
        key = str(song_id).lower()
        self[key]
        record = self._record(self.cache_path(key))
        if record is None:  # decoded without an entry (the source kept changing)
            return cache_files.sha256_path(self.files[key])
        return record["source_sha256"]

    @staticmethod
    def _record(entry: Path):
        try:
            record = json.loads(entry.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def _cached(self, key: str, source: Path):
        """The verified entry of `key` (memory-mapped), or None (missing, stale or failed its
        check, which is also a warning)."""
        entry = self.cache_path(key)
        record = self._record(entry)
        if record is None or record.get("version") != RECORD_VERSION or record.get("sample_rate") != self.sample_rate:
            return None
        resolved = Path(source).resolve()
        try:
            source_identity = cache_files.identity(os.stat(resolved))
        except OSError:
            return None  # decoding says what is wrong with the file
        changed = {}
        if record.get("source") != str(resolved) or record.get("source_stat") != source_identity:
            if record.get("source_sha256") != cache_files.sha256_path(resolved):
                return None  # other audio: decode it
            changed["source_stat"] = source_identity
        try:
            samples, refreshed = cache_files.open_npy(entry, record, mmap=True)
        except cache_files.Unverified as err:
            warn(f"{entry}: decoded audio of {source} {err}; not used, decoded again")
            return None
        if samples.ndim != 1 or samples.dtype != np.float32:
            warn(f"{entry}: decoded audio of {source} is not 1-D float32 samples; not used, decoded again")
            return None
        if refreshed is not None:
            changed["stat"] = refreshed
        if changed:  # verified by content: remember the new identities (best effort)
            with contextlib.suppress(OSError):
                atomic.write_json(entry.with_suffix(".json"), dict(record, **changed))
        return samples

    def _build(self, key: str, source: Path) -> None:
        resolved = Path(source).resolve()
        before = cache_files.identity(os.stat(resolved)) if resolved.exists() else None
        source_sha256 = cache_files.sha256_path(resolved) if before is not None else None
        samples = decode_resampled(source, self.sample_rate)
        if before is None or cache_files.identity(os.stat(resolved)) != before:
            return  # changed while it was read: nothing is recorded for it
        entry = self.cache_path(key)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(entry) as tmp:
            np.save(tmp, samples, allow_pickle=False)
        atomic.write_json(entry.with_suffix(".json"), {
            "version": RECORD_VERSION, "source": str(resolved), "source_stat": before,
            "source_sha256": source_sha256, "sample_rate": self.sample_rate, **cache_files.record_of(entry)})

    def is_cached(self, song_id) -> bool:
        """Whether the song has a verified cache entry (reading it decodes nothing)."""
        key = str(song_id).lower()
        return key in self.files and self._cached(key, self.files[key]) is not None

    def prepare(self, song_ids=None, progress: bool = False) -> int:
        """Decode and cache every song (or the given ones) now; returns how many were built."""
        from tqdm.auto import tqdm

        songs = sorted(self.files) if song_ids is None else [str(s).lower() for s in song_ids]
        built = 0
        for song in tqdm(songs, desc="audio cache", unit="song", disable=not progress):
            if song not in self.files:
                raise MERError(f"song id {song!r}: no audio file for it in the audio folder")
            source = self.files[song]
            if self._cached(song, source) is None:
                self._build(song, source)
                built += 1
        return built


def get_audio(audio_source: Mapping, song_id) -> np.ndarray:
    """The song's samples from any audio source, with a clear error when it is missing."""
    try:
        samples = audio_source[song_id]
    except KeyError:
        where = f" in {audio_source!r}" if isinstance(audio_source, AudioCache) else ""
        raise MERError(f"song id {song_id!r}: no audio for it{where}; "
                       "expected an audio file named <song_id>.<ext>") from None
    samples = np.asarray(samples)
    if samples.ndim != 1 or samples.size == 0:
        raise MERError(f"song id {song_id!r}: audio must be a non-empty 1-D array of "
                       f"{SAMPLE_RATE} Hz samples, got shape {samples.shape}")
    return samples


def pool_audio_source(audio_dir, audio_cache_dir, song_ids, readers) -> "AudioCache":
    """An AudioCache over `audio_dir` holding every song of `song_ids`, for the members named
    in `readers` (for messages). Decoded 16 kHz copies go to a subfolder of `audio_cache_dir`
    named after the audio folder, so two audio folders never share cache files."""
    import hashlib

    names = ", ".join(readers)
    if audio_dir is None or audio_cache_dir is None:
        raise MERError(f"audio folder: not given; the committee's audio member(s) {names} read each "
                       f"song's audio (the scripts pass MER_AUDIO_DIR and MER_AUDIO_CACHE_DIR; "
                       f"docs/loop.md)")
    audio_dir = Path(audio_dir).expanduser().resolve()
    if not audio_dir.is_dir():
        raise MERError(f"{audio_dir}: audio folder not found; the committee's audio member(s) "
                       f"{names} read each song's audio (set MER_AUDIO_DIR, default "
                       f"<MER_DATA_DIR>/audio, to a folder with one audio file per song, named "
                       f"<song_id>.<ext>; docs/loop.md)")
    key = hashlib.sha1(str(audio_dir).encode()).hexdigest()[:12]
    source = AudioCache.from_folder(audio_dir, Path(audio_cache_dir) / f"{audio_dir.name}-{key}")
    missing = [str(s) for s in song_ids if str(s) not in source]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise MERError(f"{audio_dir}: no audio file for song {missing[0]!r}{more}; the committee's "
                       f"audio member(s) {names} need <song_id>.<ext> for every song "
                       f"(set MER_AUDIO_DIR, default <MER_DATA_DIR>/audio; docs/loop.md)")
    return source
