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
