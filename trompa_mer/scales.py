"""Rating scales for arousal/valence values given or shown outside the package.

Inside, every value is on -1..1 (0 the neutral middle, counting as positive). A listener who
rates 1..9 gives `--scale 1..9`: answers are checked against 1..9 and mapped linearly onto
-1..1 before anything is stored, and predicted values are mapped back for display.
"""
from __future__ import annotations

import math

from .errors import MERError


class Scale:
    """A closed interval low..high mapped linearly onto -1..1 (low -> -1, high -> +1)."""

    def __init__(self, low: float, high: float):
        self.low, self.high = float(low), float(high)

    @classmethod
    def parse(cls, text, where: str = "--scale") -> "Scale":
        """'LOW..HIGH' (e.g. '1..9', '-1..1', '0..100') -> Scale; MERError naming `where`
        and what was expected otherwise."""
        expected = "LOW..HIGH with two finite numbers, LOW below HIGH (e.g. 1..9)"
        parts = str(text).split("..")
        if len(parts) != 2:
            raise MERError(f"{where}: expected {expected}, got {text!r}")
        try:
            low, high = (float(part) for part in parts)
        except ValueError:
            raise MERError(f"{where}: expected {expected}, got {text!r}") from None
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            raise MERError(f"{where}: expected {expected}, got {text!r}")
        return cls(low, high)

    def __str__(self) -> str:
        return f"{self.low:g}..{self.high:g}"

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def identity(self) -> bool:
        return (self.low, self.high) == (-1.0, 1.0)

    def to_internal(self, value: float) -> float:
        """A value on this scale -> -1..1; on -1..1 itself the value as given, bit for bit.
        A value inside the scale never leaves -1..1 by rounding: IEEE subtraction and division
        are monotonic, so (value - low) / (high - low) stays within 0..1 exactly."""
        if self.identity():
            return float(value)
        return 2.0 * (float(value) - self.low) / (self.high - self.low) - 1.0

    def from_internal(self, value: float) -> float:
        """A value on -1..1 -> this scale (on -1..1 itself, the value as given)."""
        if self.identity():
            return float(value)
        return self.low + (float(value) + 1.0) / 2.0 * (self.high - self.low)


INTERNAL = Scale(-1.0, 1.0)
