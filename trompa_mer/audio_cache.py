"""Audio for the CNN: 16 kHz mono float32 arrays per song, cached as .npy and memory-mapped.

The CNN member reads its input through an "audio source": any mapping from a song id to a
1-D float32 array at `SAMPLE_RATE` (a plain dict works, which is what the tests use).
`AudioCache` is the on-disk one: it decodes each file once (soundfile), mixes to mono,
resamples with soxr, writes `<cache_dir>/<song_id>.npy` atomically and afterwards returns a
read-only memory map, so a random 3.7 s training chunk reads a few hundred kilobytes instead
of decoding the whole song again.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import MERError
from .finite import check_samples

SAMPLE_RATE = 16000
AUDIO_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff")
DEFAULT_CACHE_NAME = ".audio16k"


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

    `files` maps song ids (lowercase) to audio files. A cache entry is rebuilt when the audio
    file is newer than it, so replacing a song's audio is picked up.
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
        cached = self.cache_path(key)
        if not self._fresh(cached, source):
            self._build(cached, source)
        samples = np.load(cached, mmap_mode="r")
        # every sample is checked once per cache file and process (a cache written before the
        # check may hold NaN); later reads stay a few hundred kilobytes of a memory map
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
        return self.cache_dir / f"{song_id}.npy"

    @staticmethod
    def _fresh(cached: Path, source: Path) -> bool:
        try:
            return cached.stat().st_mtime_ns >= source.stat().st_mtime_ns
        except FileNotFoundError:
            return False

    def _build(self, cached: Path, source: Path) -> None:
        samples = decode_resampled(source, self.sample_rate)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            np.save(tmp, samples, allow_pickle=False)

    def prepare(self, song_ids=None, progress: bool = False) -> int:
        """Decode and cache every song (or the given ones) now; returns how many were built."""
        from tqdm.auto import tqdm

        songs = sorted(self.files) if song_ids is None else [str(s).lower() for s in song_ids]
        built = 0
        for song in tqdm(songs, desc="audio cache", unit="song", disable=not progress):
            if song not in self.files:
                raise MERError(f"song id {song!r}: no audio file for it in the audio folder")
            cached, source = self.cache_path(song), self.files[song]
            if not self._fresh(cached, source):
                self._build(cached, source)
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
                       f"song's audio (the scripts pass MER_AUDIO_DIR and MER_AUDIO_CACHE_DIR)")
    audio_dir = Path(audio_dir).expanduser().resolve()
    if not audio_dir.is_dir():
        raise MERError(f"{audio_dir}: audio folder not found; the committee's audio member(s) "
                       f"{names} read each song's audio (set MER_AUDIO_DIR to a folder "
                       f"with one audio file per song, named <song_id>.<ext>)")
    key = hashlib.sha1(str(audio_dir).encode()).hexdigest()[:12]
    source = AudioCache.from_folder(audio_dir, Path(audio_cache_dir) / f"{audio_dir.name}-{key}")
    missing = [str(s) for s in song_ids if str(s) not in source]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise MERError(f"{audio_dir}: no audio file for song {missing[0]!r}{more}; the committee's "
                       f"audio member(s) {names} need <song_id>.<ext> for every song "
                       f"(set MER_AUDIO_DIR)")
    return source
