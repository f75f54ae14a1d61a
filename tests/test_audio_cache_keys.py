"""Issue 23 items 5 and 6 for the decoded-audio cache (trompa_mer.audio_cache.AudioCache).

The cache was keyed by the folder's base name and file times: pre-training on Y/clips after
X/clips (same base name, same file names, Y's files older than X's cache) trained on X's
audio, and an edited cache entry was used as found. An entry now belongs to one source file
(its resolved path in the entry's name, its identity and sha256 in the entry's record) and
is itself checked against the sha256 in that record before it is used."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from trompa_mer.audio_cache import SAMPLE_RATE, AudioCache

ROOT = Path(__file__).resolve().parents[1]
OLD = 10**18  # a time long before the cache was written (a folder restored from an archive)


def _tone(seconds: float, hz: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _folder(folder: Path, hz: float, seconds=3.0, n=4, old=False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = folder / f"utt{i:02d}.wav"
        soundfile.write(path, _tone(seconds + 0.5 * i, hz + 100 * i), SAMPLE_RATE)
        if old:
            os.utime(path, ns=(OLD + i, OLD + i))
    return folder


def _dominant_hz(samples) -> float:
    samples = np.asarray(samples, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[spectrum.argmax()])


def _pretrain(audio: Path, out: Path, cache: Path):
    return subprocess.run([sys.executable, str(ROOT / "pretrain_encoder.py"), "--method", "scae",
                           "--audio", str(audio), "--width", "1", "--epochs", "1", "--seed", "3",
                           "--out", str(out), "--cache-dir", str(cache), "--quiet"],
                          cwd=out.parent, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.mark.slow
def test_pretraining_on_a_second_folder_of_the_same_name_reads_its_own_audio(tmp_path):
    """pretrain_encoder.py on Y/clips after X/clips, one cache folder: Y's own audio."""
    x = _folder(tmp_path / "X" / "clips", hz=300.0, seconds=3.0)
    y = _folder(tmp_path / "Y" / "clips", hz=2000.0, seconds=5.0, old=True)
    cache = tmp_path / "cache"
    first = _pretrain(x, tmp_path / "out_x", cache)
    assert first.returncode == 0, first.stderr
    shared = _pretrain(y, tmp_path / "out_y", cache)
    assert shared.returncode == 0, shared.stderr
    alone = _pretrain(y, tmp_path / "out_y_alone", tmp_path / "cache_y_alone")
    assert alone.returncode == 0, alone.stderr
    got = json.loads((tmp_path / "out_y" / "encoder.json").read_text())
    expected = json.loads((tmp_path / "out_y_alone" / "encoder.json").read_text())
    # what was trained on: Y's durations and Y's spectra (band statistics of its frames)
    assert got["data"]["folders"][0]["seconds_train"] == expected["data"]["folders"][0]["seconds_train"]
    assert got["normalisation"] == expected["normalisation"]
    assert shared.stderr.strip() == ""


def test_two_folders_of_one_name_sharing_a_cache_folder_each_get_their_audio(tmp_path):
    x = _folder(tmp_path / "X" / "clips", hz=300.0)
    y = _folder(tmp_path / "Y" / "clips", hz=2000.0, old=True)
    cache = tmp_path / "cache" / "audio16k-clips"
    assert AudioCache.from_folder(x, cache).prepare() == 4
    assert AudioCache.from_folder(y, cache).prepare() == 4  # not X's entries
    assert abs(_dominant_hz(AudioCache.from_folder(x, cache)["utt00"]) - 300) < 3
    assert abs(_dominant_hz(AudioCache.from_folder(y, cache)["utt00"]) - 2000) < 3
    assert abs(_dominant_hz(AudioCache.from_folder(x, cache)["utt00"]) - 300) < 3
    assert AudioCache.from_folder(x, cache).prepare() == 0  # each folder's entries kept side by side
    assert AudioCache.from_folder(y, cache).prepare() == 0


def test_a_file_replaced_with_the_same_size_and_time_is_decoded_again(tmp_path):
    folder = _folder(tmp_path / "clips", hz=440.0, n=1)
    path = folder / "utt00.wav"
    cache = AudioCache.from_folder(folder, tmp_path / "cache")
    assert abs(_dominant_hz(cache["utt00"]) - 440) < 3
    st = path.stat()
    replacement = tmp_path / "replacement.wav"
    soundfile.write(replacement, _tone(3.0, 1500.0), SAMPLE_RATE)
    assert replacement.stat().st_size == st.st_size
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, path)  # as `cp -p` or an archive restore would leave it
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert abs(_dominant_hz(AudioCache.from_folder(folder, tmp_path / "cache")["utt00"]) - 1500) < 3


def test_an_unchanged_file_is_served_from_the_cache_memory_mapped(tmp_path, monkeypatch):
    from trompa_mer import audio_cache

    folder = _folder(tmp_path / "clips", hz=440.0, n=2)
    assert AudioCache.from_folder(folder, tmp_path / "cache").prepare() == 2
    decoded = []
    real = audio_cache.decode_resampled
    monkeypatch.setattr(audio_cache, "decode_resampled", lambda *a, **k: decoded.append(a) or real(*a, **k))
    cache = AudioCache.from_folder(folder, tmp_path / "cache")
    assert cache.prepare() == 0
    samples = cache["utt01"]
    assert isinstance(samples, np.memmap) and decoded == []
    # the folder moved (another resolved path): decoded again for its new place
    os.rename(folder, tmp_path / "moved")
    assert AudioCache.from_folder(tmp_path / "moved", tmp_path / "cache").prepare() == 2


@pytest.mark.parametrize("edit", ["values", "in place, old times"])
def test_an_edited_cache_entry_is_a_warning_and_a_new_decode(tmp_path, edit):
    folder = _folder(tmp_path / "clips", hz=440.0, n=1)
    cache = AudioCache.from_folder(folder, tmp_path / "cache")
    expected = np.array(cache["utt00"])
    (entry,) = (tmp_path / "cache").glob("utt00*.npy")
    if edit == "values":
        np.save(entry, np.zeros_like(expected))
    else:  # the same file, its last sample changed, its times set back: its ctime moved
        st = entry.stat()
        with open(entry, "r+b") as handle:
            handle.seek(-4, os.SEEK_END)
            handle.write(np.float32(0.75).tobytes())
        os.utime(entry, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.warns(UserWarning, match="utt00.*does not match"):
        got = AudioCache.from_folder(folder, tmp_path / "cache")["utt00"]
    np.testing.assert_array_equal(got, expected)


# --- the log-mel frames cached per folder (logmel.folder_stream, pretrain_encoder.py) ---------
def test_log_mel_frames_follow_a_file_replaced_with_the_same_size_and_time(tmp_path):
    from trompa_mer import logmel

    folder = _folder(tmp_path / "clips", hz=440.0, n=2)
    before = logmel.folder_stream(folder, tmp_path / "cache")
    path = folder / "utt01.wav"
    st = path.stat()
    replacement = tmp_path / "replacement.wav"
    soundfile.write(replacement, _tone(3.5, 3000.0), SAMPLE_RATE)
    assert replacement.stat().st_size == st.st_size
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, path)
    after = logmel.folder_stream(folder, tmp_path / "cache")
    expected = logmel.logmel(AudioCache.from_folder(folder, tmp_path / "fresh")["utt01"])
    assert after.names == ["utt00", "utt01"]
    np.testing.assert_array_equal(after.file_frames(1), expected)
    assert not np.array_equal(after.frames, before.frames)


def test_edited_log_mel_frames_are_a_warning_and_a_recompute(tmp_path):
    from trompa_mer import logmel

    folder = _folder(tmp_path / "clips", hz=440.0, n=2)
    expected = np.array(logmel.folder_stream(folder, tmp_path / "cache").frames)
    (frames_file,) = (tmp_path / "cache").glob("logmel-clips-*.npy")
    np.save(frames_file, np.zeros_like(expected))
    with pytest.warns(UserWarning, match="logmel-clips-.*does not match"):
        got = logmel.folder_stream(folder, tmp_path / "cache")
    np.testing.assert_array_equal(got.frames, expected)
    np.testing.assert_array_equal(logmel.folder_stream(folder, tmp_path / "cache").frames, expected)
