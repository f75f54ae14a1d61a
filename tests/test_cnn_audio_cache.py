"""The 16 kHz audio cache the CNN reads (generated audio files, plus one real Emotify clip)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile

import settings
from trompa_mer.audio_cache import SAMPLE_RATE, AudioCache, get_audio
from trompa_mer.errors import MERError


def write_tone(path, freq=440.0, seconds=1.5, sr=22050, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    tone = 0.5 * np.sin(2 * np.pi * freq * t)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    soundfile.write(str(path), data, sr)


def dominant_hz(samples, sr=SAMPLE_RATE):
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return np.fft.rfftfreq(len(samples), 1 / sr)[spectrum.argmax()]


def test_cache_resamples_to_16k_mono_and_memory_maps(tmp_path):
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    write_tone(audio_dir / "Song_A.wav", freq=440, sr=22050, channels=2)
    write_tone(audio_dir / "b.flac", freq=1000, sr=44100, seconds=2.0)
    (audio_dir / "notes.txt").write_text("not audio")
    cache = AudioCache.from_folder(audio_dir, cache_dir=tmp_path / "cache")
    assert list(cache) == ["b", "song_a"] and len(cache) == 2 and "SONG_A" in cache

    a = cache["song_a"]
    assert isinstance(a, np.memmap) and a.dtype == np.float32 and a.ndim == 1
    assert abs(len(a) - 1.5 * SAMPLE_RATE) <= 2
    assert abs(dominant_hz(np.asarray(a)) - 440) < 2
    assert abs(dominant_hz(np.asarray(cache["b"])) - 1000) < 2
    entry = cache.cache_path("song_a")  # <song id>-<tag of the source's path>.npy + its record
    assert entry.exists() and entry.parent == tmp_path / "cache" and entry.name.startswith("song_a-")
    assert entry.with_suffix(".json").exists()


def test_cache_is_reused_until_the_audio_changes(tmp_path):
    write_tone(tmp_path / "x.wav", freq=440)
    cache = AudioCache.from_folder(tmp_path, cache_dir=tmp_path / "c")
    assert cache.prepare() == 1
    assert cache.prepare() == 0  # fresh: nothing rebuilt
    cached = cache.cache_path("x")
    write_tone(tmp_path / "x.wav", freq=880)
    later = cached.stat().st_mtime_ns + 10**9
    os.utime(tmp_path / "x.wav", ns=(later, later))
    assert abs(dominant_hz(np.asarray(cache["x"])) - 880) < 2


def test_cache_errors_are_one_line(tmp_path):
    with pytest.raises(MERError, match="audio folder not found"):
        AudioCache.from_folder(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MERError, match="no audio files"):
        AudioCache.from_folder(empty)
    dup = tmp_path / "dup"
    dup.mkdir()
    write_tone(dup / "a.wav")
    write_tone(dup / "A.flac")
    with pytest.raises(MERError, match="song id 'a'"):
        AudioCache.from_folder(dup)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.wav").write_bytes(b"RIFF nonsense")
    cache = AudioCache.from_folder(bad, cache_dir=tmp_path / "c2")
    with pytest.raises(MERError, match="broken.wav: cannot decode"):
        cache["broken"]
    with pytest.raises(MERError, match="'nope'"):
        get_audio(cache, "nope")
    with pytest.raises(MERError, match="1-D"):
        get_audio({"s": np.zeros((2, 3))}, "s")


def test_real_emotify_clip_decodes(tmp_path):
    clip = settings.SHARED_DATA_DIR / "emotify" / "audio" / "1.mp3"
    if not clip.exists():
        pytest.skip(f"real data not found at {clip}")
    cache = AudioCache({"1": clip}, tmp_path)
    samples = cache["1"]
    # The clips are the first 30 s of each excerpt.
    assert 29 * SAMPLE_RATE < len(samples) < 31 * SAMPLE_RATE
    assert np.isfinite(samples).all() and np.abs(samples).max() > 0.01
