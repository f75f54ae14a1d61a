"""deam_classifier.py --encoder: encoder members trained on the grouped splits of a generated
Emotify-layout corpus and written into the committee."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trompa_mer.datasets import emotify

ROOT = Path(__file__).resolve().parents[1]
TICKS = (["power", "joyful_activation"], ["tension"], ["sadness"], ["calmness", "tenderness"])
TONES = (220.0, 880.0, 440.0, 1760.0)
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_deam_classifier_with_an_encoder(tmp_path, script_env):
    import soundfile

    from trompa_mer import encoder as E
    from trompa_mer import logmel
    from trompa_mer.committee import Committee

    root = tmp_path / "emotify"
    (root / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = ["track id, genre, " + ", ".join(emotify.GEMS) + ", mood, liked"]
    frames = []
    for track in range(1, 13):
        q = track % 4
        t = np.arange(int(3.5 * 16000)) / 16000
        clip = (0.4 * np.sin(2 * np.pi * TONES[q] * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
        soundfile.write(root / "audio" / f"{track}.wav", clip, 16000)
        frames.append(logmel.logmel(clip))
        for _ in range(3):
            lines.append(f"{track}, pop, " + ", ".join("1" if g in TICKS[q] else "0" for g in emotify.GEMS) + ", 3, 1")
    (root / "annotations.csv").write_text("\n".join(lines) + "\n")
    stream = np.concatenate(frames, axis=1)
    E.pretrain("scae", stream, stream[:, :0], tmp_path / "enc", width=1, epochs=1, progress=False, max_batches=1)
    env = dict(script_env, MER_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1",
               MER_COST_NOTE_SECONDS="0")  # every cost note printed, whatever the estimate
    result = subprocess.run(
        [sys.executable, str(ROOT / "deam_classifier.py"), *map(str, ["--emotify", root, "--cache-dir", tmp_path / "cache",
         "-m", "gnb", "-cv", 2, "--test-size", 0.25, "-o", tmp_path / "committee", "--encoder", tmp_path / "enc",
         "--transfer", "full", "--encoder-epochs", 2, "--full-epochs", 1, "--quiet"])],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "encoder members (full" in result.stdout
    committee = Committee.load(tmp_path / "committee")
    assert committee.names() == ["gnb_0", "gnb_1", "encoder_0", "encoder_1"]
    manifest = json.loads((tmp_path / "committee" / "committee.json").read_text())
    test_songs = manifest["splits"]["test_songs"]
    assert len(manifest["encoder_members"]["song_f1_macro"]) == 2 and len(test_songs) == 2
    encoder = dict(committee.members)["encoder_0"]
    assert encoder.transfer == "full" and encoder.input_kind == "audio"
    # the encoder's scores are rows of the same tables as every member algorithm
    f1 = np.mean(manifest["encoder_members"]["song_f1_macro"])
    song_rows = {row[1]: row for row in (line.split() for line in result.stdout.splitlines())
                 if row and row[0] == "song" and len(row) == 14}
    assert list(song_rows) == ["gnb", "majority", "encoder"], result.stdout
    assert float(song_rows["encoder"][-3]) == pytest.approx(f1, abs=5e-4)  # macro F1: mean ± sd
    assert manifest["scores"]["song"]["encoder"]["f1_macro"][0] == pytest.approx(f1)
    card = (tmp_path / "committee" / "README.md").read_text()
    assert f"| song | encoder | " in card and f"{f1:.3f} ± " in card.split("| song | encoder |")[1].splitlines()[0]
    quadrant_rows = [line.split()[0] for line in result.stdout.split("song F1 per quadrant")[1].splitlines()[2:4]]
    assert quadrant_rows == ["gnb", "encoder"], result.stdout
    # cost notes before the long parts (here forced by MER_COST_NOTE_SECONDS=0), from measured rates
    assert "note: about " in result.stderr and "to decode 12 songs and cut their log-mel patches" in result.stderr
    assert "to train 2 encoder members (full) (measured " in result.stderr, result.stderr

    bad = subprocess.run([sys.executable, str(ROOT / "deam_classifier.py"), *map(str, [
                          "--emotify", root, "--cache-dir", tmp_path / "cache", "-m", "gnb", "-cv", 2,
                          "--encoder", tmp_path / "missing", "--quiet"])],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error:") and "encoder.json" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, "refused before any work (no cost note, no decoding)"
