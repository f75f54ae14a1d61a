"""Train/held-out splits for pre-training reports and committees, one place for every corpus.

Protocols (each returns window-level (train, test) index arrays plus a description):
- "shuffle": GroupShuffleSplit, `cv` random splits holding out `test_size` of the split groups
  (the committee's historical protocol on Emotify; songs there have no shared artists);
- "kfold": StratifiedGroupKFold, `cv` folds repeated `repeats` times with seeds seed, seed+1, ...
  Every song is held out exactly once per repeat; folds keep the quadrant shares close to the
  corpus'. The honest protocol for corpora where artists repeat (4Q): nothing of a held-out
  song's artist is trained on;
- "paper": StratifiedKFold over songs, not grouped by artist (the protocol behind the published
  4Q figure, Panda et al. 2018), for comparison only: it lets an artist's other songs train.

Groups: `data.split_groups` (the artist, per window) where the corpus has it, else the song.
Stratification uses each group's song-majority quadrant (one label per group, as the splitter
needs one per sample it may not split).
"""
from __future__ import annotations

import numpy as np

from .errors import MERError

PROTOCOLS = ("shuffle", "kfold", "paper")


def split_groups(data) -> tuple[np.ndarray, str]:
    """(group per window, what a group is) for the splits."""
    groups = getattr(data, "split_groups", None)
    if groups is not None:
        return np.asarray(groups).astype(str), "artist"
    return np.asarray(data.groups).astype(str), "song"


def make_splits(data, protocol: str = "shuffle", cv: int = 5, test_size: float = 0.2, seed: int = 1987,
                repeats: int = 1) -> tuple[list, dict]:
    """([(train windows, test windows)], description for reports and the manifest).

    With "kfold" and "paper", split r * cv + k is fold k of repeat r."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, StratifiedKFold

    if protocol not in PROTOCOLS:
        raise MERError(f"--protocol: expected one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if repeats < 1:
        raise MERError(f"--repeats: expected a positive whole number, got {repeats}")
    if protocol == "shuffle" and repeats != 1:
        raise MERError("--repeats: only with --protocol kfold or paper (shuffle draws -cv random splits)")
    y = np.asarray(data.y, dtype=np.int64)
    songs = np.asarray(data.groups).astype(str)
    groups, unit = split_groups(data)
    if protocol == "paper":
        groups, unit = songs, "song"
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise MERError(f"corpus: cross-validation needs at least 2 {unit}s, got {n_groups}")
    description = {"protocol": protocol, "n_splits": cv * repeats, "grouped_by": unit, "seed": seed}
    if protocol == "shuffle":
        splitter = GroupShuffleSplit(n_splits=cv, test_size=test_size, random_state=seed)
        description.update(method="GroupShuffleSplit", test_size=test_size)
        return list(splitter.split(np.zeros(len(y)), y, groups)), description
    if cv > n_groups:
        raise MERError(f"-cv {cv}: more folds than {unit}s ({n_groups})")
    # one row per song: its majority quadrant, its group
    song_ids, first, song_index = np.unique(songs, return_index=True, return_inverse=True)
    votes = np.zeros((len(song_ids), 4))
    np.add.at(votes, (song_index, y), 1)
    song_y = votes.argmax(axis=1)
    song_group = groups[first]
    splits = []
    for r in range(repeats):
        if protocol == "kfold":
            splitter = StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=seed + r)
            folds = splitter.split(np.zeros(len(song_ids)), song_y, song_group)
        else:
            splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed + r)
            folds = splitter.split(np.zeros(len(song_ids)), song_y)
        for train_songs, test_songs in folds:
            held = np.zeros(len(song_ids), dtype=bool)
            held[test_songs] = True
            splits.append((np.flatnonzero(~held[song_index]), np.flatnonzero(held[song_index])))
    description.update(method="StratifiedGroupKFold" if protocol == "kfold" else "StratifiedKFold",
                       folds=cv, repeats=repeats, test_size=round(1.0 / cv, 4))
    return splits, description
