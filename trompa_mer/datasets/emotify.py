"""Emotify: 400 music clips with listeners' GEMS ticks -> window features + quadrant labels.

Audio (`<root>/audio/<track_id>.mp3`) is turned into window features with the project's
extractor, in parallel, cached under `<cache_dir>/emotify-<extractor>-<folder>/feats/`
(`corpus_cache.corpus_features`: a changed extractor, another audio folder or a changed clip
never reuses stale features). Every window of a track carries its track's label.

GEMS categories are not arousal/valence, so the label scheme is a modelling choice
(`LABEL_SCHEMES`, compared by cross-validation in docs/pretraining.md):
- "argmax": each tick votes for a quadrant (amazement, joyful activation, power -> Q1;
  tension -> Q2; sadness -> Q3; calmness, tenderness, nostalgia, solemnity -> Q4); a track's
  label is the quadrant with most votes (ties to the lower quadrant). Badly imbalanced.
- "av-zero": each category is placed on the arousal-valence circle (`GEMS_AV`); a track's
  position is the mean over all its ticks; quadrant by sign.
- "av-median": as av-zero, but each axis is centered at the corpus median of the track
  positions first, which balances the classes (the default).

Regression targets (`track_targets`, `load_emotify(...).av`, static only): for the a/v schemes,
the positions whose signs give the labels, each axis divided by its largest absolute value over
the corpus (docs/regression.md); "argmax" has none (`av` is None).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import MERError
from ..quadrants import quadrant_from_av
from .corpus_cache import corpus_features
from .generic import LabeledWindows, windows_with_av
from .scales import unit_by_max_abs
from .targets import check_targets

GEMS = ("amazement", "solemnity", "tenderness", "nostalgia", "calmness", "power",
        "joyful_activation", "tension", "sadness")
GEMS_QUADRANT = {"amazement": 0, "joyful_activation": 0, "power": 0, "tension": 1, "sadness": 2,
                 "calmness": 3, "tenderness": 3, "nostalgia": 3, "solemnity": 3}
# (arousal, valence) of each GEMS category on the circumplex, as in the pre-training issue.
GEMS_AV = {"joyful_activation": (0.7, 0.8), "amazement": (0.5, 0.6), "power": (0.8, 0.3),
           "tension": (0.6, -0.6), "sadness": (-0.5, -0.7), "nostalgia": (-0.4, -0.1),
           "solemnity": (-0.2, -0.1), "tenderness": (-0.4, 0.6), "calmness": (-0.7, 0.4)}
LABEL_SCHEMES = ("av-median", "av-zero", "argmax")
SCHEME_DESCRIPTIONS = {
    "argmax": "each GEMS tick votes for a quadrant (amazement, joyful_activation, power -> Q1; "
              "tension -> Q2; sadness -> Q3; calmness, tenderness, nostalgia, solemnity -> Q4); "
              "a track's label is the quadrant with most votes (ties to the lower quadrant)",
    "av-zero": "each GEMS category is placed on the arousal-valence circle (gems_av); a track's "
               "position is the mean over all listeners' ticks; quadrant by the signs of arousal "
               "and valence (0 counts as positive)",
    "av-median": "each GEMS category is placed on the arousal-valence circle (gems_av); a track's "
                 "position is the mean over all listeners' ticks; each axis is centered at the "
                 "corpus median of the track positions, then quadrant by sign (0 counts as positive)",
}
DEFAULT_SCHEME = "av-median"


def read_ticks(annotations_csv) -> pd.DataFrame:
    """Tracks x GEMS categories: the number of listeners who ticked each category."""
    path = Path(annotations_csv)
    if not path.is_file():
        raise MERError(f"{path}: Emotify annotations not found")
    table = pd.read_csv(path, skipinitialspace=True)
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in ("track id", *GEMS) if c not in table.columns]
    if missing:
        raise MERError(f"{path}: missing column {missing[0]!r} (expected Emotify's annotations.csv)")
    ticks = table[list(GEMS)].apply(pd.to_numeric, errors="coerce")
    if ticks.isna().any().any():
        raise MERError(f"{path}: GEMS columns must hold 0/1 ticks")
    ticks.index = [str(t).strip().lower() for t in table["track id"]]
    return ticks.groupby(level=0).sum()


def track_av(ticks: pd.DataFrame) -> pd.DataFrame:
    """Mean (arousal, valence) of each track's ticks on the GEMS circle; tracks without ticks dropped."""
    total = ticks.sum(axis=1)
    ticks = ticks[total > 0]
    total = total[total > 0]
    coords = np.array([GEMS_AV[c] for c in ticks.columns])
    av = ticks.to_numpy(dtype=float) @ coords / total.to_numpy()[:, None]
    return pd.DataFrame(av, index=ticks.index, columns=["arousal", "valence"])


def scheme_av(ticks: pd.DataFrame, scheme: str) -> pd.DataFrame:
    """The (arousal, valence) whose signs give an a/v scheme's quadrants: the track positions
    (av-zero), centered at the corpus median of each axis (av-median)."""
    if scheme not in ("av-zero", "av-median"):
        raise MERError(f"label scheme: {scheme!r} has no arousal/valence targets "
                       f"(expected av-zero or av-median)")
    av = track_av(ticks)
    if scheme == "av-median":
        av = av - av.median()
    return av


def track_labels(annotations_csv, scheme: str = DEFAULT_SCHEME) -> pd.Series:
    """Track id -> quadrant index under a label scheme."""
    if scheme not in LABEL_SCHEMES:
        raise MERError(f"label scheme: expected one of {', '.join(LABEL_SCHEMES)}, got {scheme!r}")
    ticks = read_ticks(annotations_csv)
    if scheme == "argmax":
        votes = np.zeros((len(ticks), 4))
        for category, quadrant in GEMS_QUADRANT.items():
            votes[:, quadrant] += ticks[category].to_numpy()
        keep = votes.sum(axis=1) > 0
        return pd.Series(votes[keep].argmax(axis=1).astype(np.int64), index=ticks.index[keep])
    av = scheme_av(ticks, scheme)
    return pd.Series(quadrant_from_av(av["arousal"], av["valence"]), index=av.index)


def track_targets(annotations_csv, scheme: str = DEFAULT_SCHEME) -> pd.DataFrame:
    """Track id -> (arousal, valence) regression targets on -1..1 for an a/v scheme: the
    scheme's positions (`scheme_av`, whose signs are `track_labels`) with each axis divided by
    its largest absolute value over the corpus (`scales.unit_by_max_abs`; signs, hence
    quadrants, unchanged). "argmax" has no a/v targets: MERError."""
    if scheme not in LABEL_SCHEMES:
        raise MERError(f"label scheme: expected one of {', '.join(LABEL_SCHEMES)}, got {scheme!r}")
    av = scheme_av(read_ticks(annotations_csv), scheme)
    return pd.DataFrame({axis: unit_by_max_abs(av[axis], f"{annotations_csv}: {axis} ({scheme})")
                         for axis in ("arousal", "valence")}, index=av.index)


def emotify_features(root, cache_dir, jobs: int = 1, progress: bool = True) -> Path:
    """Extract (or reuse) the window features of every Emotify clip; returns the feature folder
    (cached per extractor and per audio folder: `corpus_cache.corpus_features`)."""
    audio = Path(root) / "audio"
    if not audio.is_dir():
        raise MERError(f"{audio}: Emotify audio folder not found")
    return corpus_features("emotify", audio, cache_dir, jobs, progress)


def load_emotify(root, cache_dir, scheme: str = DEFAULT_SCHEME, jobs: int = 1,
                 progress: bool = True, targets: str = "static") -> LabeledWindows:
    from ..features import FEATURE_NAMES
    from ..pool import load_pool

    check_targets(targets, "Emotify", available=("static",))
    root = Path(root)
    labels = track_labels(root / "annotations.csv", scheme)
    pool = load_pool(emotify_features(root, cache_dir, jobs, progress), progress=progress, jobs=jobs)
    known = np.isin(pool.song_ids, labels.index.to_numpy())
    if not known.any():
        raise MERError(f"{root}: no clip in audio/ has annotations in annotations.csv")
    song_of_window = pool.song_of_window
    rows = known[song_of_window]
    groups = pool.song_ids[song_of_window[rows]].astype(str)
    X = np.asarray(pool.X[rows], dtype=np.float32)
    if scheme == "argmax":
        return LabeledWindows(X, labels.loc[groups].to_numpy(dtype=np.int64), groups, list(FEATURE_NAMES))
    av = track_targets(root / "annotations.csv", scheme)
    return windows_with_av(X, av.loc[groups].to_numpy(), groups, list(FEATURE_NAMES))
