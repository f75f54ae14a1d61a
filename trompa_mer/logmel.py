"""Log-mel front end and 1 s patches for the speech-pretrained encoders (docs/speech_encoders.md).

The input of the language-sensitive MER system (ICASSP 2021): 16 kHz mono, peak-normalised;
STFT with a 1024-sample periodic Hann window inside a 2048-point FFT, hop 512, centred frames
with zero padding (librosa's conventions: `center=True`, `pad_mode="constant"`); magnitude
spectrum (power 1); librosa's 128-band mel filterbank (Slaney scale and area norm); natural
log with a floor of `LOG_FLOOR`. Patches are 128 x 31 frames (about 1 s), one every 15 frames.

The filterbank comes from `librosa.filters.mel`; the STFT is `torch.stft` (torchaudio has no
CPU wheel here). `tests/test_logmel.py` compares the result with `librosa.feature.melspectrogram`.

A *frame stream* is a (n_mels, frames) float32 array: one file's log-mel, or several files'
log-mels concatenated (`FrameStream`). Patches are cut from it by start frame, never copied.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import atomic
from .errors import MERError

SAMPLE_RATE = 16000
N_FFT = 2048
WIN_LENGTH = 1024
HOP_LENGTH = 512
N_MELS = 128
PATCH_FRAMES = 31
PATCH_HOP = 15
LOG_FLOOR = 1e-5  # magnitude floor before the natural log
CACHE_FORMAT = 2  # 2: keyed by the audio files' content, frames checksummed in the index


def settings() -> dict:
    """The front end's settings, as recorded in an encoder's manifest."""
    return {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "win_length": WIN_LENGTH,
            "hop_length": HOP_LENGTH, "n_mels": N_MELS, "mel": "librosa slaney scale+norm",
            "power": 1.0, "log": "natural", "log_floor": LOG_FLOOR, "peak_normalised": True,
            "center": True, "pad_mode": "constant", "patch_frames": PATCH_FRAMES,
            "patch_hop": PATCH_HOP}


@functools.lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    """(n_mels, 1 + n_fft/2) filterbank, librosa's defaults (Slaney scale, area norm)."""
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)


def peak_normalise(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return samples / peak if peak > 0 else samples.copy()


def mel_magnitude(samples: np.ndarray, normalise: bool = True) -> np.ndarray:
    """Mel-filtered magnitude spectrogram (n_mels, frames) of 16 kHz samples (float32)."""
    import torch

    x = peak_normalise(samples) if normalise else np.asarray(samples, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise MERError(f"audio: expected a non-empty 1-D array of samples, got shape {x.shape}")
    wave = torch.from_numpy(np.ascontiguousarray(x))
    with torch.no_grad():
        spec = torch.stft(wave, N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH,
                          window=torch.hann_window(WIN_LENGTH), center=True, pad_mode="constant",
                          return_complex=True).abs()
        mel = torch.from_numpy(mel_basis()) @ spec
    return mel.numpy()


def logmel(samples: np.ndarray) -> np.ndarray:
    """Peak-normalised natural-log mel magnitudes, (n_mels, frames) float32."""
    return np.log(np.maximum(mel_magnitude(samples), LOG_FLOOR)).astype(np.float32)


def patch_starts(n_frames: int, hop: int = PATCH_HOP, length: int = PATCH_FRAMES) -> np.ndarray:
    """Start frames of the patches of a stream: every `hop` frames while a whole patch fits;
    one patch at 0 (padded) when the stream is shorter than a patch."""
    if n_frames <= length:
        return np.zeros(1, dtype=np.int64)
    return np.arange(0, n_frames - length + 1, hop, dtype=np.int64)


def take_patches(frames: np.ndarray, starts, length: int = PATCH_FRAMES) -> np.ndarray:
    """(len(starts), n_mels, length) float32; frames past the end are the log floor."""
    frames = np.asarray(frames)
    starts = np.asarray(starts, dtype=np.int64)
    if frames.shape[1] >= length and (starts.size == 0 or starts.max() + length <= frames.shape[1]):
        index = starts[:, None] + np.arange(length)[None, :]
        return np.ascontiguousarray(frames[:, index].transpose(1, 0, 2), dtype=np.float32)
    out = np.full((len(starts), frames.shape[0], length), np.log(LOG_FLOOR), dtype=np.float32)
    for i, s in enumerate(starts):
        piece = frames[:, s:s + length]
        out[i, :, :piece.shape[1]] = piece
    return out


def patches(samples: np.ndarray) -> np.ndarray:
    """All patches of one song/file, (n_patches, n_mels, PATCH_FRAMES)."""
    frames = logmel(samples)
    return take_patches(frames, patch_starts(frames.shape[1]))


# --- folders of audio: decoded once, log-mel cached --------------------------------------------
@dataclass
class FrameStream:
    """Several files' log-mel frames concatenated: `frames` (n_mels, total), `names` and
    `offsets` (file i is frames[:, offsets[i]:offsets[i+1]])."""

    frames: np.ndarray
    names: list
    offsets: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[1])

    def seconds(self) -> float:
        return self.n_frames * HOP_LENGTH / SAMPLE_RATE

    def file_frames(self, i: int) -> np.ndarray:
        return self.frames[:, self.offsets[i]:self.offsets[i + 1]]

    def select(self, indices) -> "FrameStream":
        """The files at `indices`, concatenated in that order."""
        parts = [self.file_frames(int(i)) for i in indices]
        lengths = [p.shape[1] for p in parts]
        frames = np.concatenate(parts, axis=1) if parts else np.zeros((N_MELS, 0), np.float32)
        return FrameStream(frames, [self.names[int(i)] for i in indices],
                           np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))

    @staticmethod
    def concat(streams) -> "FrameStream":
        streams = list(streams)
        frames = np.concatenate([s.frames for s in streams], axis=1)
        names = [n for s in streams for n in s.names]
        lengths = [np.diff(s.offsets) for s in streams]
        offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int64)
        return FrameStream(frames, names, offsets)


def folder_key(audio_dir, source) -> str:
    """Cache key: the folder's resolved path, each audio file's name and content (its sha256, as
    the verified decoded-audio cache `source` records it) and the front end's settings."""
    audio_dir = Path(audio_dir).resolve()
    listing = [(song, source.files[song].name, source.source_digest(song)) for song in source]
    blob = json.dumps([str(audio_dir), listing, settings(), CACHE_FORMAT]).encode()
    return hashlib.sha1(blob).hexdigest()[:16]


def folder_audio(audio_dir, cache_dir):
    """The folder's audio as an `AudioCache` (nothing decoded yet); decoded audio goes to
    `<cache_dir>/audio16k-<name>/`."""
    from .audio_cache import AudioCache

    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise MERError(f"{audio_dir}: audio folder not found, expected a folder of audio files")
    return AudioCache.from_folder(audio_dir, Path(cache_dir) / f"audio16k-{audio_dir.name}")


def n_frames_of(n_samples: int) -> int:
    """Log-mel frames of `n_samples` 16 kHz samples (centred frames: 1 + n // hop)."""
    return 1 + int(n_samples) // HOP_LENGTH


def folder_stream(audio_dir, cache_dir, progress: bool = False, songs=None) -> FrameStream:
    """The log-mel frames of every audio file in `audio_dir` (or of the song ids `songs` only:
    the others are never decoded), sorted by song id, computed once and cached in
    `<cache_dir>/logmel-<name>-<key>.npy` + `.json` (the key: folder_key, over the files used;
    the index records the frames file's sha256, checked before the frames are used: a file
    that does not match is a warning and a recompute); decoded audio goes to
    `<cache_dir>/audio16k-<name>/` (trompa_mer.audio_cache, each entry tied to its source)."""
    from tqdm.auto import tqdm

    from . import cache_files
    from .audio_cache import AudioCache
    from .cost import RateNote

    audio_dir = Path(audio_dir)
    source = folder_audio(audio_dir, cache_dir)
    if songs is not None:
        unknown = [str(s) for s in songs if str(s) not in source]
        if unknown:
            raise MERError(f"{audio_dir}: no audio file for song id {unknown[0]!r}, expected <song_id>.<ext>")
        source = AudioCache({str(s).lower(): source.files[str(s).lower()] for s in songs}, source.cache_dir)
    todo = [song for song in source if not source.is_cached(song)]
    note = RateNote(len(todo), f"to decode {len(todo)} audio files of {audio_dir.name}", "file")
    for song in tqdm(todo, desc=f"decoding {audio_dir.name}", unit="file", disable=not progress):
        source.prepare([song])
        note.tick()
    key = folder_key(audio_dir, source)
    base = Path(cache_dir) / f"logmel-{audio_dir.name}-{key}"
    frames_path, index_path = base.with_suffix(".npy"), base.with_suffix(".json")
    if frames_path.is_file() and index_path.is_file():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            if index.get("key") == key:
                frames, _ = cache_files.open_npy(frames_path, index.get("frames"), mmap=True)
                if frames.shape == (N_MELS, index["offsets"][-1]):
                    return FrameStream(np.asarray(frames), list(index["names"]),
                                       np.asarray(index["offsets"], dtype=np.int64))
        except cache_files.Unverified as err:
            from .errors import warn

            warn(f"{frames_path}: cached log-mel frames {err}; not used, computed again")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # rebuilt below
    names, parts = [], []
    for song in tqdm(list(source), desc=f"log-mel {audio_dir.name}", unit="file", disable=not progress):
        samples = np.asarray(source[song], dtype=np.float32)
        if samples.size < WIN_LENGTH:
            continue  # shorter than one window: nothing to learn from
        names.append(song)
        parts.append(logmel(samples))
    if not parts:
        raise MERError(f"{audio_dir}: no audio file long enough (at least {WIN_LENGTH} samples "
                       f"at {SAMPLE_RATE} Hz), expected speech or music recordings")
    offsets = np.concatenate([[0], np.cumsum([p.shape[1] for p in parts])]).astype(np.int64)
    frames = np.concatenate(parts, axis=1).astype(np.float32)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(frames_path) as tmp:
        np.save(tmp, frames, allow_pickle=False)
    atomic.write_json(index_path, {"key": key, "folder": str(audio_dir.resolve()), "names": names,
                                   "offsets": offsets.tolist(), "settings": settings(),
                                   "frames": cache_files.record_of(frames_path)})
    return FrameStream(frames, names, offsets)


def source_stream(song_ids, audio_source, progress: bool = False, desc: str = "log-mel") -> FrameStream:
    """Log-mel frames of songs from any audio source (song id -> 16 kHz samples), uncached."""
    from tqdm.auto import tqdm

    from .audio_cache import get_audio

    parts = [logmel(get_audio(audio_source, s)) for s in tqdm(list(song_ids), desc=desc, unit="song",
                                                                disable=not progress)]
    offsets = np.concatenate([[0], np.cumsum([p.shape[1] for p in parts])]).astype(np.int64)
    frames = np.concatenate(parts, axis=1) if parts else np.zeros((N_MELS, 0), np.float32)
    return FrameStream(frames.astype(np.float32), [str(s) for s in song_ids], offsets)


def band_stats(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-mel-band mean and standard deviation (floored at 1e-3) of a frame stream."""
    frames = np.asarray(frames, dtype=np.float64)
    return (frames.mean(axis=1).astype(np.float32),
            np.maximum(frames.std(axis=1), 1e-3).astype(np.float32))


