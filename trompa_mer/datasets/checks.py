"""Checks every loaded corpus passes before anything is trained on it (issue 23, item 7).

`check_corpus(data, dataset, paths, needs_av)` is called once, where pretrain.run has loaded
a corpus with any loader, so a new loader gets it without doing anything:

- **all four quadrants**: a committee's members are trained to tell Q1..Q4 apart; labels that
  collapse to fewer classes (the usual cause: arousal/valence on a 1..9 or 0..1 scale read as
  if on -1..1, so every song is "positive" and lands in Q1) would give a committee that
  predicts one class whatever it hears. Refused, naming the classes found and, when the
  labels file's arousal/valence values are all >= 0, the flag that was probably missed.
- **arousal/valence for regression members**: a generic corpus read without `--scale` has
  quadrant labels only, even when its labels file has arousal/valence columns; the refusal
  says that `--scale` was probably missed.
"""
from __future__ import annotations

import numpy as np

from ..errors import MERError
from ..quadrants import N_CLASSES, QUADRANTS


def _labels_av(paths: dict):
    """(labels path, arousal values, valence values) of a generic corpus' labels file when it
    has numeric arousal/valence columns, else None."""
    import pandas as pd

    from .generic import read_table

    path = paths.get("labels")
    if not path:
        return None
    try:
        table = read_table(path)
    except MERError:
        return None
    if not {"arousal", "valence"} <= set(table.columns):
        return None
    a = pd.to_numeric(table["arousal"], errors="coerce").to_numpy(dtype=np.float64)
    v = pd.to_numeric(table["valence"], errors="coerce").to_numpy(dtype=np.float64)
    return path, a, v


def scale_hint(paths: dict) -> str:
    """'; ...' naming --scale when the labels file's arousal/valence look like a 0..1 or 1..9
    scale (every value >= 0), else ''."""
    if paths.get("scale"):
        return ""
    found = _labels_av(paths)
    if found is None:
        return ""
    path, a, v = found
    values = np.concatenate([a, v])
    values = values[np.isfinite(values)]
    if not values.size or values.min() < 0:
        return ""
    guess = "1..9" if values.max() > 1 else "0..1"
    return (f"; the arousal/valence values of {path} are all >= 0 (largest {values.max():g}), which "
            f"looks like a {guess} scale read as -1..1: --scale {guess} was probably missed")


def check_corpus(data, dataset: str, paths: dict, needs_av: bool = False) -> None:
    """MERError (one line) when the corpus' labels have fewer than 4 quadrants, or when
    regression members need arousal/valence that the corpus was loaded without."""
    if needs_av and getattr(data, "av", None) is None and dataset == "generic" and _labels_av(paths):
        raise MERError(f"{paths['labels']}: regression members need arousal/valence targets; this labels "
                       "file has 'arousal' and 'valence' columns but was read as quadrant labels only "
                       "because no scale was given: --scale (0..1, 1..9 or -1..1, the scale of its "
                       "values) was probably missed")
    y = np.asarray(data.y, dtype=np.int64)
    present = np.unique(y)
    if len(present) < N_CLASSES:
        counts = ", ".join(f"{QUADRANTS[q]} {int((y == q).sum())}" for q in present) or "none"
        missing = ", ".join(QUADRANTS[q] for q in range(N_CLASSES) if q not in present)
        raise MERError(f"{dataset} corpus: its labels give {len(present)} of the 4 quadrants (windows: "
                       f"{counts}; none in {missing}); a committee trained on it could never predict "
                       f"the others{scale_hint(paths) if dataset == 'generic' else ''}")
