"""The 4Q audio emotion dataset (Panda, Malheiro & Paiva 2018): commercial 30-s clips with
perceived-emotion quadrants -> window features, quadrant labels, and the artist of each song.

Layout (`../shared/data/4q`): `audio/<Song>.mp3`, `annotations.csv` (Song, Quadrant Q1..Q4),
`metadata.csv` (Song, Artist, ...). Song ids compare lowercased, as everywhere in the project.

Audio becomes window features through the project's extractor, cached once per corpus folder
(`corpus_cache.corpus_features`). Every window carries its song's quadrant. The artist is the
unit that must not leak between training and held-out songs (111 artists have several clips):
`split_groups` holds it per window, and pre-training splits by it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MERError
from ..quadrants import parse_quadrant
from .corpus_cache import corpus_features, folder_signature
from .generic import LabeledWindows
from .tables import read_csv_table

CORPUS = {"name": "4Q audio emotion dataset",
          "clips": "30-s AllMusic samples of commercial songs, many genres, mono 22.05 kHz",
          "labels": "perceived emotion: AllMusic mood tags mapped to quadrants through Warriner's "
                    "arousal/valence norms, manually validated",
          "licence": "research use (see the corpus)",
          "citation": "Panda, Malheiro & Paiva, IEEE Transactions on Affective Computing, 2018"}


def _column(table, path, name: str, expected: str) -> list[str]:
    columns = {str(c).strip().lower(): c for c in table.columns}
    if name.lower() not in columns:
        raise MERError(f"{path}: missing column {name!r} (expected {expected})")
    return [("" if v is None or v != v else str(v)).strip() for v in table[columns[name.lower()]]]


def _song_rows(path, noun: str, value: str, once: str = ""):
    """(row number, song as written, song id, the `value` cell) of every row of a Song-keyed
    table; an empty song or a song listed twice is refused (`once` explains why, if given)."""
    expected = f"4Q {Path(path).name} with columns Song, {value}"
    table = read_csv_table(path, expected, noun=noun)
    songs, values = _column(table, path, "Song", expected), _column(table, path, value, expected)
    seen = set()
    for row, (song, cell) in enumerate(zip(songs, values), start=2):
        if not song:
            raise MERError(f"{path}: row {row}: field 'Song' is empty")
        key = song.lower()
        if key in seen:
            raise MERError(f"{path}: row {row}: song {song!r} is listed twice{once}")
        seen.add(key)
        yield row, song, key, cell
    if not seen:
        raise MERError(f"{path}: no songs (expected {expected})")


def read_quadrants(path) -> dict[str, int]:
    """annotations.csv -> {song id (lowercase): quadrant index}; one row per song."""
    return {key: parse_quadrant(quadrant, f"{path}: row {row} (song {song!r}): field 'Quadrant'")
            for row, song, key, quadrant in _song_rows(path, "annotations", "Quadrant", " (one quadrant per song)")}


def read_artists(path, songs) -> dict[str, str]:
    """metadata.csv -> {song id: artist (case-folded, spaces collapsed)} for every song in `songs`;
    a song whose artist is empty (3 in the corpus) is a split group of its own."""
    # an unknown artist cannot be matched to any other song: the song is a group of its own
    out = {key: " ".join(artist.casefold().split()) or f"(no artist: {key})"
           for _, _, key, artist in _song_rows(path, "metadata", "Artist")}
    missing = sorted(set(songs) - set(out))
    if missing:
        raise MERError(f"{path}: no row for annotated song {missing[0]!r}"
                       + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                       + " (every annotated song needs its artist)")
    return {song: out[song] for song in songs}


def load_4q(root, cache_dir, jobs: int = 1, progress: bool = True) -> LabeledWindows:
    """Window features of every annotated clip, its quadrant per window, split groups = artists."""
    from ..features import FEATURE_NAMES, find_audio, song_id_from_path
    from ..pool import load_pool

    root = Path(root)
    if not root.is_dir():
        raise MERError(f"{root}: 4Q folder not found (expected audio/, annotations.csv, metadata.csv; "
                       "--fourq DIR)")
    labels = read_quadrants(root / "annotations.csv")
    audio = root / "audio"
    if not audio.is_dir():
        raise MERError(f"{audio}: 4Q audio folder not found")
    present = {song_id_from_path(p) for p in find_audio(audio)}
    without = sorted(set(labels) - present)
    if without:
        raise MERError(f"{root / 'annotations.csv'}: annotated song {without[0]!r} has no audio in {audio}"
                       + (f" (and {len(without) - 1} more)" if len(without) > 1 else ""))
    artists = read_artists(root / "metadata.csv", labels)
    pool = load_pool(corpus_features("4q", audio, cache_dir, jobs, progress), progress=progress, jobs=jobs)
    song_ids = np.asarray(pool.song_ids).astype(str)
    lost = sorted(set(labels) - set(song_ids.tolist()))
    if lost:
        raise MERError(f"{audio}: no features for annotated song {lost[0]!r} (its audio could not be "
                       "decoded or extracted)")
    known = np.isin(song_ids, list(labels))
    rows = known[pool.song_of_window]
    groups = song_ids[pool.song_of_window[rows]]
    y = np.array([labels[s] for s in groups], dtype=np.int64)
    split_groups = np.array([artists[s] for s in groups])
    from ..audio_cache import AudioCache

    # the clips' audio, for members that read it (their embeddings are cached under cache_dir;
    # the 16 kHz copies are never written for them)
    clips = AudioCache.from_folder(audio, Path(cache_dir) / f"4q-audio-{folder_signature(audio)}")
    return LabeledWindows(np.asarray(pool.X[rows], dtype=np.float32), y, groups, list(FEATURE_NAMES),
                          split_groups=split_groups, audio=clips)
