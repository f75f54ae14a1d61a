"""The one place where arousal/valence annotations are brought to -1..1 (docs/regression.md,
"Targets and scales").

Every loader declares the scale its corpus publishes (`SCALES`) and maps it linearly onto
-1..1 with `to_unit`: the scale's low end goes to -1, its middle to 0, its high end to 1, so
the sign of a mapped value (and with it the quadrant) is its side of the scale's midpoint.
Values outside the declared range by more than `TOLERANCE` of its width are refused (they
mean the wrong scale was declared); values within the tolerance are clipped. Emotify has no
published scale: `unit_by_max_abs` divides each axis by its largest absolute value over the
corpus.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import MERError

SCALES = {"0..1": (0.0, 1.0), "1..9": (1.0, 9.0), "-1..1": (-1.0, 1.0)}
TOLERANCE = 1e-6   # a fraction of the scale's width (rounding in published files)


def scale_range(scale: str, where: str = "scale") -> tuple[float, float]:
    """(low, high) of a scale name; MERError listing the known names otherwise."""
    if scale not in SCALES:
        raise MERError(f"{where}: unknown scale {scale!r} (expected one of {', '.join(SCALES)})")
    return SCALES[scale]


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _position(values, i: int) -> str:
    if isinstance(values, pd.Series):
        label = values.index[i]
        label = tuple(_plain(x) for x in label) if isinstance(label, tuple) else _plain(label)
        return f"at {label!r}"
    return f"at position {i}"


def _finite(values, where: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise MERError(f"{where}: empty or non-numeric value {_position(values, bad[0])} "
                       f"({bad.size} in all; expected numbers)")
    return array


def to_unit(values, scale: str, where: str) -> np.ndarray:
    """Map `values` (array-like or Series: then errors name the index label) linearly from the
    declared `scale` onto -1..1 (float64, the input's shape). `where` names the file and the
    field ("path: column") for the error messages: NaN, an unknown scale name, a value outside
    the scale's range."""
    low, high = scale_range(scale, where)
    array = _finite(values, where)
    slack = TOLERANCE * (high - low)
    outside = np.flatnonzero((array < low - slack) | (array > high + slack))
    if outside.size:
        i = outside[0]
        raise MERError(f"{where}: value {array[i]:g} {_position(values, i)} is outside the declared "
                       f"scale {scale} ({outside.size} such values; expected {low:g}..{high:g})")
    unit = np.clip((array - low) / (high - low) * 2.0 - 1.0, -1.0, 1.0)
    return unit.reshape(np.shape(values))


def unit_by_max_abs(values, where: str) -> np.ndarray:
    """Divide by the largest absolute value (one axis over a corpus): -1..1, signs kept, the
    most extreme item at -1 or 1. An axis that is all zeros stays zeros."""
    array = _finite(values, where)
    largest = float(np.max(np.abs(array))) if array.size else 0.0
    unit = array / largest if largest > 0 else array.copy()
    return unit.reshape(np.shape(values))
