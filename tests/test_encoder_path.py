"""Issue 24, item 6: the encoder path as a user runs it.

pretrain_encoder.py --max-files-per-folder / --hours-per-folder decode only the files they use
(counted by the decoded-audio cache entries written), cost notes before long work (estimated
from a measured rate; quiet for small runs), and the cost-note arithmetic on a fake clock."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def write_folder(folder: Path, n: int, seconds: float = 2.0, sr: int = 22050) -> Path:
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        t = np.arange(int(seconds * sr)) / sr
        clip = 0.4 * np.sin(2 * np.pi * (200 + 90 * i) * t) + 0.05 * rng.standard_normal(t.size)
        soundfile.write(folder / f"utt{i:02d}.wav", clip.astype(np.float32), sr)
    return folder


def run(args, cwd, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MER_")}
    environ.update(OMP_NUM_THREADS="1", **env)
    return subprocess.run([sys.executable, str(ROOT / "pretrain_encoder.py"), *map(str, args)],
                          cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)


def decoded(cache: Path, folder: str) -> list:
    """Song ids with a decoded-audio cache entry (one per decoded file)."""
    return sorted(p.name.rsplit("-", 1)[0] for p in (cache / f"audio16k-{folder}").glob("*.npy"))


def chosen_order(n: int, seed: int) -> list:
    """The seeded order the selection documents: a permutation of the sorted song ids."""
    return [f"utt{i:02d}" for i in np.random.default_rng(seed).permutation(n)]


def test_max_files_decodes_only_the_files_it_trains_on(tmp_path):
    folder = write_folder(tmp_path / "speech", 12)
    cache = tmp_path / "cache"
    result = run(["--method", "scae", "--audio", folder, "--max-files-per-folder", 3, "--width", 1,
                  "--epochs", 1, "--seed", 5, "--out", tmp_path / "enc", "--cache-dir", cache, "--quiet"],
                 tmp_path)
    assert result.returncode == 0, result.stderr
    assert decoded(cache, "speech") == sorted(chosen_order(12, 5)[:3]), "only the 3 chosen files decoded"
    manifest = json.loads((tmp_path / "enc" / "encoder.json").read_text())
    (summary,) = manifest["data"]["folders"]
    assert summary["files_available"] == 12
    assert summary["files_train"] + summary["files_heldout"] == 3
    (index,) = cache.glob("logmel-speech-*.json")
    assert json.loads(index.read_text())["names"] == sorted(chosen_order(12, 5)[:3])
    # a small run says nothing about its cost
    assert "note:" not in result.stderr, result.stderr


def test_hours_decode_the_kept_files_and_at_most_one_more(tmp_path):
    # 2 s files at 22.05 kHz -> 32,000 samples at 16 kHz -> 63 log-mel frames each; 5 s of
    # audio is 156.25 frames: two files fit (126), the third would pass (189)
    folder = write_folder(tmp_path / "speech", 10)
    cache = tmp_path / "cache"
    result = run(["--method", "scae", "--audio", folder, "--hours-per-folder", 5 / 3600, "--width", 1,
                  "--epochs", 1, "--seed", 2, "--out", tmp_path / "enc", "--cache-dir", cache, "--quiet"],
                 tmp_path)
    assert result.returncode == 0, result.stderr
    order = chosen_order(10, 2)
    assert decoded(cache, "speech") == sorted(order[:3]), "the 2 kept files and the one that did not fit"
    manifest = json.loads((tmp_path / "enc" / "encoder.json").read_text())
    (summary,) = manifest["data"]["folders"]
    assert summary["files_train"] + summary["files_heldout"] == 2
    assert summary["seconds_train"] + summary["seconds_heldout"] == pytest.approx(2 * 63 * 512 / 16000, abs=0.11)
    # the same command again reuses the cache: nothing more decoded, the same data (resumes)
    again = run(["--method", "scae", "--audio", folder, "--hours-per-folder", 5 / 3600, "--width", 1,
                 "--epochs", 2, "--seed", 2, "--out", tmp_path / "enc", "--cache-dir", cache, "--quiet"],
                tmp_path)
    assert again.returncode == 0, again.stderr
    assert decoded(cache, "speech") == sorted(order[:3])
    assert len((tmp_path / "enc" / "log.csv").read_text().splitlines()) == 3


def test_cost_notes_before_decoding_and_training(tmp_path):
    folder = write_folder(tmp_path / "speech", 8)
    result = run(["--method", "scae", "--audio", folder, "--max-files-per-folder", 7, "--width", 1,
                  "--epochs", 2, "--batch-size", 4, "--out", tmp_path / "enc", "--cache-dir", tmp_path / "cache",
                  "--quiet"], tmp_path, MER_COST_NOTE_SECONDS="0")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: about ")]
    assert any("to decode the chosen audio files of speech" in n and "s per file over the first 3 of 7 files" in n
               for n in notes), result.stderr
    # 7 files of 2 s (6 trained, 1 held out) -> 6 x 63 frames -> 24 patches -> 6 batches of 4;
    # the first batch (warm-up) is left out of the rate
    assert any("to pre-train (2 epochs of 6 batches on cpu)" in n
               and re.search(r"per batch over (item 2|items 2-[34]) of 6 batches x 2\)", n) for n in notes), result.stderr
    bad = run(["--method", "scae", "--audio", folder, "--out", tmp_path / "x"], tmp_path,
              MER_COST_NOTE_SECONDS="soon")
    assert bad.returncode != 0 and "MER_COST_NOTE_SECONDS" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_rate_note_arithmetic(monkeypatch, capsys):
    from trompa_mer import cost

    clock = iter(np.arange(0.0, 1000.0, 0.5))  # half a second per call
    monkeypatch.setattr(cost.time, "perf_counter", lambda: float(next(clock)))
    monkeypatch.setattr(cost, "THRESHOLD_S", 60.0)
    # started at t=0; after 3 items t=1.5: 0.5 s per item, 197 more: 98.5 s -> "2 min"
    note = cost.RateNote(200, "to test", "item")
    for _ in range(10):
        note.tick()
    err = capsys.readouterr().err
    assert err.count("note:") == 1 and "note: about 2 min more to test" in err
    assert "0.5 s per item over the first 3 of 200 items" in err
    assert note.estimate_s == pytest.approx(100.0)
    # 20 items: 8.5 s to go, below the threshold: quiet
    quiet = cost.RateNote(20, "to test", "item")
    for _ in range(20):
        quiet.tick()
    assert capsys.readouterr().err == ""
    # ... unless the memory estimate is large
    heavy = cost.RateNote(20, "to cut", "song", bytes_per_item=2e8)
    for _ in range(3):
        heavy.tick()
    assert "about 4.0 GB in memory" in capsys.readouterr().err
    # repeats: 100 batches x 5 epochs, measured on the first 3 batches: 248.5 s to go
    epochs = cost.RateNote(100, "to train", "batch", repeats=5)
    for _ in range(3):
        epochs.tick()
    err = capsys.readouterr().err
    assert "note: about 4 min more to train" in err and "over the first 3 of 100 batches x 5)" in err
    assert epochs.estimate_s == pytest.approx(250.0)
    # warm-up: the first item is left out of the rate (it would count 100 s here)
    slow_start = cost.RateNote(200, "to warm", "batch", warmup=1)
    clock_value = [0.0]
    monkeypatch.setattr(cost.time, "perf_counter", lambda: clock_value[0])
    slow_start.started = 0.0
    for step in (100.0, 0.5, 0.5, 0.5):
        clock_value[0] += step
        slow_start.tick()
    err = capsys.readouterr().err
    assert "0.5 s per batch over items 2-4 of 200 batches)" in err and "about 2 min more to warm" in err
    assert slow_start.estimate_s == pytest.approx(100.0)


def test_cost_note_formats_and_boundaries(monkeypatch, capsys):
    import io

    from trompa_mer import cost

    assert [cost.minutes(s) for s in (0.2, 1.4, 89, 90, 7199, 7200, 9000)] == \
        ["1 s", "1 s", "89 s", "2 min", "120 min", "2.0 h", "2.5 h"]
    assert [cost.plural(u) for u in ("file", "song", "batch", "pass", "box", "dish", "member")] == \
        ["files", "songs", "batches", "passes", "boxes", "dishes", "members"]
    assert cost.gigabytes(2.46e9) == "2.5 GB"
    buffer = io.StringIO()
    cost.say("note: x", buffer)
    cost.say("note: y")
    assert buffer.getvalue() == "note: x\n" and capsys.readouterr().err == "note: y\n"
    monkeypatch.setattr(cost, "THRESHOLD_S", 60.0)
    cost.configure(None)
    assert cost.THRESHOLD_S == 60.0
    cost.configure(5)
    assert cost.THRESHOLD_S == 5.0 and isinstance(cost.THRESHOLD_S, float)

    now = [0.0]
    monkeypatch.setattr(cost.time, "perf_counter", lambda: now[0])

    def run(note, steps):
        for step in steps:
            now[0] += step
            note.tick()
        return capsys.readouterr().err

    cost.configure(60)
    # exactly at the threshold: said (0.5 s per item, 60 s to go after the 3rd of 123)
    assert "note: about 60 s more to a (measured 0.5 s per item over the first 3 of 123 items)" in run(
        cost.RateNote(123, "to a"), [0.5, 0.5, 0.5])
    assert run(cost.RateNote(122, "to b"), [0.5, 0.5, 0.5]) == ""  # 59.5 s: quiet
    # the measurement waits for 3 items or 2 s, whichever first
    assert "over the first 2 of" in run(cost.RateNote(200, "to c"), [1, 1, 1])
    assert "over the first 3 of" in run(cost.RateNote(400, "to d"), [0.5, 0.5, 0.5, 0.5])
    # the last item is never a note (the work is over); nor a second note
    assert run(cost.RateNote(3, "to e", min_items=3, min_seconds=1000), [100, 100, 100]) == ""
    twice = cost.RateNote(1000, "to f")
    assert run(twice, [1, 1, 1]).count("note:") == 1 and run(twice, [5] * 5) == ""
    # repeats below 1 count as 1, warm-up below 0 as none
    odd = cost.RateNote(500, "to g", repeats=0, warmup=-2)
    assert "over the first 3 of 500 items)" in run(odd, [0.5] * 3) and odd.estimate_s == pytest.approx(250)
    # memory: the whole estimate from set_bytes, said at 1 GiB even when the time is short
    small = cost.RateNote(10, "to h")
    small.set_bytes(cost.MEMORY_NOTE_BYTES)
    assert "about 1.1 GB in memory" in run(small, [0.01, 0.01, 0.01])
    below = cost.RateNote(10, "to i")
    below.set_bytes(cost.MEMORY_NOTE_BYTES - 1)
    assert run(below, [0.01, 0.01, 0.01]) == ""
    per_item = cost.RateNote(10, "to j", bytes_per_item=cost.MEMORY_NOTE_BYTES / 10)
    assert "GB in memory" in run(per_item, [0.01, 0.01, 0.01]) and per_item.total_bytes == cost.MEMORY_NOTE_BYTES
    # the last item is never a note, even with a large memory estimate
    last = cost.RateNote(3, "to l", min_seconds=1000)
    last.set_bytes(10 * cost.MEMORY_NOTE_BYTES)
    assert run(last, [1, 1, 1]) == ""
    # one item measured (min_items=1, or a slow item after the warm-up): "item N"
    assert "over the first 1 of 100 items)" in run(cost.RateNote(100, "to m", min_items=1, min_seconds=100), [1])
    assert "3 s per batch over item 2 of 100 batches x 2)" in run(
        cost.RateNote(100, "to n", "batch", repeats=2, warmup=1), [50, 3])
    # repeats: 10 x 2 = 20 items, the note still comes at the 12th (past 10 / 2 and 10)
    late = cost.RateNote(10, "to o", repeats=2, warmup=11)
    assert "over item 12 of 10 items x 2)" in run(late, [0] * 11 + [100])
    # a note to a given file
    out = io.StringIO()
    run(cost.RateNote(1000, "to k", file=out), [1, 1, 1])
    assert out.getvalue().startswith("note: about 17 min more to k")
