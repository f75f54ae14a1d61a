"""The 4Q corpus: loading (labels, artists, cached features), refusals, and the real corpus."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, shared_path
from trompa_mer.datasets import fourq
from trompa_mer.errors import MERError

SONGS = [("MT01", "Q1", "Ann"), ("MT02", "Q2", "ann "), ("MT03", "Q3", "Bob"), ("MT04", "Q4", ""),
         ("MT05", "Q1", "Cy"), ("MT06", "Q2", "Dee"), ("MT07", "Q3", "Eve"), ("MT08", "Q4", "Fay")]


def _corpus(tmp_path, songs=SONGS, seconds=2.0, annotations=None, metadata=None):
    root = tmp_path / "4q"
    (root / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    for i, (song, _, _) in enumerate(songs):
        tone = 0.3 * np.sin(2 * np.pi * (110 * (i + 1)) * t) + 0.05 * rng.normal(size=t.size)
        sf.write(root / "audio" / f"{song}.wav", tone.astype(np.float32), sr)
    (root / "annotations.csv").write_text(
        annotations if annotations is not None else "Song,Quadrant\n" + "".join(f"{s},{q}\n" for s, q, _ in songs))
    (root / "metadata.csv").write_text(
        metadata if metadata is not None else
        "Song,Artist,Title,Quadrant\n" + "".join(f"{s},{a},t,{q}\n" for s, q, a in songs))
    return root


def test_labels_artists_and_windows(tmp_path):
    root = _corpus(tmp_path)
    data = fourq.load_4q(root, tmp_path / "cache", progress=False)
    songs, first = np.unique(data.groups, return_index=True)
    assert songs.tolist() == [s.lower() for s, _, _ in SONGS]
    assert data.y[first].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    # artists case-folded and stripped: MT01 and MT02 share one; an empty artist is a group of its own
    artist = dict(zip(data.groups[first], data.split_groups[first]))
    assert artist["mt01"] == artist["mt02"] == "ann"
    assert artist["mt04"] not in set(artist.values()) - {artist["mt04"]}
    assert len(set(artist.values())) == 7
    assert data.X.shape[1] == 260 and len(data.X) == len(data.y) == len(data.split_groups)
    # extracted once: a second load reads the cache (no extraction, same windows)
    again = fourq.load_4q(root, tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(again.X, data.X)


def test_the_feature_cache_follows_the_audio_folder(tmp_path):
    """Another folder (same base name, fewer clips) never reuses the first folder's features."""
    root = _corpus(tmp_path)
    full = fourq.load_4q(root, tmp_path / "cache", progress=False)
    other = _corpus(tmp_path / "other", songs=SONGS[:4])
    part = fourq.load_4q(other, tmp_path / "cache", progress=False)
    assert np.unique(part.groups).tolist() == ["mt01", "mt02", "mt03", "mt04"]
    assert len(part.y) < len(full.y)
    # a clip replaced in place is extracted anew
    sf.write(other / "audio" / "MT01.wav", np.zeros(8000, dtype=np.float32), 16000)
    changed = fourq.load_4q(other, tmp_path / "cache", progress=False)
    assert (changed.groups == "mt01").sum() < (part.groups == "mt01").sum()


def test_the_corpus_signature_follows_the_content_not_the_copy(tmp_path):
    """The same clips copied again (new modification times) or elsewhere keep their caches; a
    clip with other bytes of the same size, or renamed, does not."""
    import os
    import shutil

    from trompa_mer.datasets.corpus_cache import folder_signature

    root = _corpus(tmp_path)
    first = folder_signature(root / "audio")
    assert len(first) == 12 and int(first, 16) >= 0  # the cache folder names' 12 hex digits
    os.utime(root / "audio" / "MT01.wav", ns=(1, 1))
    copy = shutil.copytree(root / "audio", tmp_path / "elsewhere" / "audio")
    assert folder_signature(root / "audio") == first == folder_signature(copy)
    clip = copy / "MT02.wav"
    data = bytearray(clip.read_bytes())
    data[-1] ^= 1
    clip.write_bytes(bytes(data))
    changed = folder_signature(copy)
    assert changed != first
    clip.rename(copy / "MT22.wav")
    assert folder_signature(copy) not in (first, changed)


@pytest.mark.parametrize("case, annotations, metadata, message", [
    ("no audio", "Song,Quadrant\nMT01,Q1\nMT99,Q2\n", None,
     r"annotations.csv: annotated song 'mt99' has no audio in .*audio"),
    ("unknown quadrant", "Song,Quadrant\nMT01,Q1\nMT02,Q5\n", None,
     r"annotations.csv: row 3 \(song 'MT02'\): field 'Quadrant': expected one of Q1, Q2, Q3, Q4, got 'Q5'"),
    ("listed twice", "Song,Quadrant\nMT01,Q1\nmt01,Q1\n", None,
     r"annotations.csv: row 3: song 'mt01' is listed twice"),
    ("no quadrant column", "Song,Mood\nMT01,happy\n", None, r"annotations.csv: missing column 'Quadrant'"),
    ("no artist column", None, "Song,Title\nMT01,x\n", r"metadata.csv: missing column 'Artist'"),
    ("song without metadata", None, "Song,Artist\nMT01,Ann\n", r"metadata.csv: no row for annotated song 'mt02'"),
])
def test_bad_corpus_is_refused_by_the_script(tmp_path, case, annotations, metadata, message):
    root = _corpus(tmp_path, annotations=annotations, metadata=metadata)
    out = tmp_path / "committee"
    result = subprocess.run([sys.executable, str(ROOT / "deam_classifier.py"), "--dataset", "4q", "--fourq", str(root),
                             "--cache-dir", str(tmp_path / "cache"), "-cv", "2", "-m", "sgd", "-o", str(out),
                             "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 1, (case, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    import re

    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()


def test_cross_validated_on_artist_folds_end_to_end(tmp_path):
    """deam_classifier.py --dataset 4q: k-fold by artist by default, the report names it, the
    committee keeps the first repeat's members and records its held-out songs."""
    root = _corpus(tmp_path)
    out = tmp_path / "committee"
    result = subprocess.run([sys.executable, str(ROOT / "deam_classifier.py"), "--dataset", "4q", "--fourq", str(root),
                             "--cache-dir", str(tmp_path / "cache"), "-cv", "2", "--repeats", "2", "-m", "sgd,song-sgd",
                             "-o", str(out), "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "2 folds x 2 repeats grouped by artist (StratifiedGroupKFold)" in result.stdout
    assert "song F1 per quadrant" in result.stdout and "committee song confusion" in result.stdout
    import json

    manifest = json.loads((out / "committee.json").read_text())
    assert [m["name"] for m in manifest["members"]] == ["sgd_0", "sgd_1", "song-sgd_0", "song-sgd_1"]
    held = manifest["splits"]["test_songs"]
    assert sorted(held[0] + held[1]) == sorted(s.lower() for s, _, _ in SONGS)
    assert manifest["splits"]["grouped_by"] == "artist" and manifest["corpus"]["name"] == fourq.CORPUS["name"]


@pytest.mark.slow
def test_real_4q_corpus(tmp_path):
    root = shared_path("4q", "audio").parent
    quadrants = fourq.read_quadrants(root / "annotations.csv")
    assert np.bincount(list(quadrants.values()), minlength=4).tolist() == [194, 194, 196, 194]
    artists = fourq.read_artists(root / "metadata.csv", quadrants)
    assert len(artists) == 778
    counts = np.unique(list(artists.values()), return_counts=True)[1]
    # ../shared/data/README.md counts 586 artists, 111 with several clips: that includes the
    # empty artist of 3 clips, which here are 3 groups of one (an unknown artist matches nothing)
    assert len(counts) == 585 + 3 and (counts > 1).sum() == 110


def test_read_quadrants_errors_name_the_file(tmp_path):
    path = tmp_path / "annotations.csv"
    path.write_text("Song,Quadrant\n,Q1\n")
    with pytest.raises(MERError, match=r"annotations.csv: row 2: field 'Song' is empty"):
        fourq.read_quadrants(path)
    with pytest.raises(MERError, match="4Q folder not found"):
        fourq.load_4q(tmp_path / "missing", tmp_path / "cache", progress=False)


def test_member_study_scores_compositions_as_the_committee_is_scored(tmp_path):
    """experiments/fourq_members.py: a composition's score is computed exactly as pre-training
    scores its committee (same splits, tempered mean), and the script runs end to end."""
    import importlib.util

    from trompa_mer import pretrain

    root = _corpus(tmp_path)
    data = fourq.load_4q(root, tmp_path / "cache", progress=False)
    report, _ = pretrain.pretrain(data, ["sgd", "song-sgd"], cv=2, protocol="kfold", repeats=2, seed=5,
                                  build_committee=False, progress=False, keep_predictions=True)
    spec = importlib.util.spec_from_file_location("fourq_members", ROOT / "experiments" / "fourq_members.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    mean, sd, temps = study.composition_scores(report, ["sgd", "song-sgd"])
    assert (mean, sd) == tuple(report["song"]["committee"]["f1_macro"])
    assert temps == report["temperatures"]
    alone, _, _ = study.composition_scores(report, ["sgd"])
    assert alone == report["song"]["sgd"]["f1_macro"][0]

    env = dict(__import__("os").environ, MER_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / "fourq_members.py"), "--fourq", str(root),
                             "-m", "sgd,song-sgd", "-cv", "2", "--repeats", "1", "--quiet"],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("committee compositions")))
    assert len(lines[start + 1:]) == 3 and all("±" in line for line in lines[start + 1:])


@pytest.mark.parametrize("text, message", [
    ("Song,Quadrant\nMT01,Q1\nMT02,Q5\n",
     r"annotations.csv: row 3 \(song 'MT02'\): field 'Quadrant': expected one of Q1, Q2, Q3, Q4, got 'Q5'"),
    ("Song,Quadrant\nMT01,Q1\nmt01,Q2\n", r"annotations.csv: row 3: song 'mt01' is listed twice"),
    ("Song,Quadrant\n", r"annotations.csv: no songs \(expected 4Q annotations.csv with columns Song, Quadrant\)"),
    ("Name,Quadrant\nMT01,Q1\n", r"annotations.csv: missing column 'Song' \(expected 4Q annotations.csv"),
])
def test_read_quadrants_refusals_in_process(tmp_path, text, message):
    path = tmp_path / "annotations.csv"
    path.write_text(text)
    with pytest.raises(MERError, match=message):
        fourq.read_quadrants(path)


def test_read_quadrants_and_artists_values(tmp_path):
    path = tmp_path / "annotations.csv"
    path.write_text("song,quadrant\n MT01 , q3 \nMT02,4\n")  # header and cells as people write them
    assert fourq.read_quadrants(path) == {"mt01": 2, "mt02": 3}
    meta = tmp_path / "metadata.csv"
    meta.write_text("Song,Artist\nMT01,  The   Beatles \nMT02,\nMT03,Other\n")
    artists = fourq.read_artists(meta, {"mt01": 2, "mt02": 3})
    assert artists == {"mt01": "the beatles", "mt02": "(no artist: mt02)"}  # only the annotated songs
    meta.write_text("Song,Artist\nMT01,A\nmt01,B\n")
    with pytest.raises(MERError, match=r"metadata.csv: row 3: song 'mt01' is listed twice"):
        fourq.read_artists(meta, {"mt01": 0})
    meta.write_text("Song,Artist\nMT01,A\n")
    with pytest.raises(MERError, match=r"metadata.csv: no row for annotated song 'mt02' \(and 1 more\)"):
        fourq.read_artists(meta, {"mt01": 0, "mt02": 1, "mt03": 2})


def test_reader_messages_word_for_word(tmp_path):
    """Every refusal of the 4Q readers in full (which file, which field, what was expected)."""
    import re

    ann, meta = tmp_path / "annotations.csv", tmp_path / "metadata.csv"
    expect_ann = "(expected 4Q annotations.csv with columns Song, Quadrant)"
    expect_meta = "(expected 4Q metadata.csv with columns Song, Artist)"
    quadrants = lambda: fourq.read_quadrants(ann)  # noqa: E731
    artists = lambda: fourq.read_artists(meta, {"mt01": 0})  # noqa: E731
    cases = [  # (file, its text or None for no file, call, the whole message after "<file>: ")
        (ann, None, quadrants, f"annotations file not found {expect_ann}"),
        (meta, None, artists, f"metadata file not found {expect_meta}"),
        (ann, "Song,Mood\nMT01,x\n", quadrants, f"missing column 'Quadrant' {expect_ann}"),
        (ann, "Name,Quadrant\nMT01,Q1\n", quadrants, f"missing column 'Song' {expect_ann}"),
        (meta, "Name,Artist\nMT01,A\n", artists, f"missing column 'Song' {expect_meta}"),
        (meta, "Song,Title\nMT01,A\n", artists, f"missing column 'Artist' {expect_meta}"),
        (meta, "Song,Artist\nMT01,A\n", lambda: fourq.read_artists(meta, {"mt01": 0, "mt02": 1}),
         "no row for annotated song 'mt02' (every annotated song needs its artist)"),
        (ann, "Song,Quadrant\nMT01,Q1\nmt01,Q1\n", quadrants,
         "row 3: song 'mt01' is listed twice (one quadrant per song)"),
        (meta, "Song,Artist\nMT01,A\nMT01,A\n", artists, "row 3: song 'MT01' is listed twice"),
    ]
    for path, text, call, message in cases:
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)
        with pytest.raises(MERError, match=f"^{re.escape(f'{path}: {message}')}$"):
            call()
