"""The four arousal/valence quadrants and label parsing.

Q1 (+arousal, +valence), Q2 (+a, -v), Q3 (-a, -v), Q4 (-a, +v); a value of exactly 0 counts as
positive. Quadrants are always encoded Q1..Q4 -> 0..3, never re-encoded per batch.
"""
from __future__ import annotations

import numpy as np

from .errors import MERError

QUADRANTS = ("Q1", "Q2", "Q3", "Q4")
N_CLASSES = len(QUADRANTS)
CLASSES = np.arange(N_CLASSES)


def quadrant_from_av(arousal, valence) -> np.ndarray:
    """Quadrant indices (0..3) from arousal and valence values (scalars or arrays)."""
    a = np.asarray(arousal, dtype=float) >= 0
    v = np.asarray(valence, dtype=float) >= 0
    # Q1: a+ v+ -> 0, Q2: a+ v- -> 1, Q3: a- v- -> 2, Q4: a- v+ -> 3
    return np.where(a, np.where(v, 0, 1), np.where(v, 3, 2)).astype(np.int64)


def parse_quadrant(value, where: str = "label") -> int:
    """Parse 'Q1'..'Q4' (any case), 1..4 or '1'..'4' into 0..3; MERError otherwise."""
    if isinstance(value, (bool, np.bool_)):
        raise MERError(f"{where}: expected one of Q1, Q2, Q3, Q4, got {value!r}")
    if isinstance(value, (int, np.integer)) and 1 <= int(value) <= 4:
        return int(value) - 1
    if isinstance(value, str):
        text = value.strip().upper()
        if text.startswith("Q"):
            text = text[1:]
        if text in ("1", "2", "3", "4"):
            return int(text) - 1
    raise MERError(f"{where}: expected one of Q1, Q2, Q3, Q4, got {value!r}")


def quadrant_name(index: int) -> str:
    return QUADRANTS[int(index)]


class Labels:
    """Labels of a batch of rows: a quadrant per row and, where it is known, (arousal, valence).

    Classifier members read `quadrant`; regression members (target kind "av") read both and
    train on `av` where it is given (a listener's own values, a corpus' annotations). `av` is
    (n, 2) float64 in -1..1 with NaN rows where only the quadrant is known. Where `av` is
    given, `quadrant` is its quadrant (quadrant_from_av), so the two never disagree.
    """

    def __init__(self, quadrant, av=None, where: str = "labels", names=None):
        """`where` (a file) and `names` (one per row, e.g. song ids) only make the errors name
        the place and the row."""
        quadrant = np.asarray(quadrant)
        if quadrant.ndim != 1 or (quadrant.size and (not np.issubdtype(quadrant.dtype, np.integer)
                                                     or quadrant.min() < 0 or quadrant.max() >= N_CLASSES)):
            raise MERError(f"labels: expected quadrant indices 0..3 (one per row), got {quadrant[:5]!r}")
        if av is None:
            av = np.full((len(quadrant), 2), np.nan)
        av = np.asarray(av, dtype=np.float64)
        if av.shape != (len(quadrant), 2):
            raise MERError(f"labels: {len(quadrant)} rows but arousal/valence of shape {av.shape}")
        partial = np.isnan(av).any(axis=1) & ~np.isnan(av).all(axis=1)
        if partial.any() or np.isinf(av).any():
            raise MERError("labels: arousal and valence must be given together as finite numbers")
        given = ~np.isnan(av[:, 0])

        def row(i) -> str:
            return f"song {names[i]!r}" if names is not None else f"row {i}"

        outside = np.flatnonzero(given & (np.abs(av).max(axis=1) > 1 + 1e-9))
        if outside.size:
            i = outside[0]
            raise MERError(f"{where}: {row(i)}: arousal and valence must lie in -1..1, got "
                           f"({av[i, 0]:g}, {av[i, 1]:g})")
        disagree = np.flatnonzero(given & (quadrant_from_av(av[:, 0], av[:, 1]) != quadrant))
        if disagree.size:
            raise MERError(f"{where}: {row(disagree[0])}: its quadrant disagrees with its arousal/valence")
        self.quadrant = quadrant.astype(np.int64)
        self.av = av

    @classmethod
    def from_av(cls, av) -> "Labels":
        """Rows of (arousal, valence) in -1..1, every row given."""
        av = np.asarray(av, dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(av).all():
            raise MERError("labels: arousal/valence targets contain NaN or infinite values")
        return cls(quadrant_from_av(av[:, 0], av[:, 1]), av)

    @classmethod
    def coerce(cls, y) -> "Labels":
        """Labels as they are, quadrant indices (n,), or (n, 2) arousal/valence values."""
        if isinstance(y, Labels):
            return y
        y = np.asarray(y)
        if y.ndim == 2:
            return cls.from_av(y)
        return cls(y)

    @property
    def has_av(self) -> np.ndarray:
        """(n,) bool: rows with arousal and valence given."""
        return ~np.isnan(self.av[:, 0])

    def __len__(self) -> int:
        return len(self.quadrant)

    def __getitem__(self, index) -> "Labels":
        twin = Labels.__new__(Labels)
        twin.quadrant = self.quadrant[index]
        twin.av = self.av[index]
        return twin

    def __repr__(self) -> str:
        return f"Labels({len(self)} rows, {int(self.has_av.sum())} with arousal/valence)"
