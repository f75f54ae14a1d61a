"""How well a member's quadrant probabilities are calibrated: reliability table, ECE, Brier.

Top-label calibration (the usual reliability diagram): songs are binned by the probability of
their predicted quadrant; a calibrated member's mean confidence in a bin equals its accuracy
there. ECE = sum over bins of (songs in bin / songs) * |accuracy - confidence|. The
multi-class Brier score is the mean squared distance between the probability row and the
one-hot truth (0 is perfect; a uniform guess scores 0.75).
"""
from __future__ import annotations

import numpy as np

from .errors import MERError
from .quadrants import N_CLASSES


def _checked(proba, truth):
    proba = np.asarray(proba, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.int64)
    if proba.ndim != 2 or proba.shape[1] != N_CLASSES or truth.shape != (len(proba),):
        raise MERError(f"calibration: expected (n, {N_CLASSES}) probabilities and n labels, "
                       f"got {proba.shape} and {truth.shape}")
    return proba, truth


def reliability_table(proba, truth, bins: int = 10) -> list[dict]:
    """Rows {low, high, songs, confidence, accuracy} for equal-width confidence bins that hold
    songs (confidence = the predicted quadrant's probability)."""
    proba, truth = _checked(proba, truth)
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == truth
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        members = which == b
        if members.any():
            rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "songs": int(members.sum()),
                         "confidence": float(confidence[members].mean()),
                         "accuracy": float(correct[members].mean())})
    return rows


def expected_calibration_error(proba, truth, bins: int = 10) -> float:
    proba, truth = _checked(proba, truth)
    if len(truth) == 0:
        return float("nan")
    return float(sum(row["songs"] * abs(row["accuracy"] - row["confidence"])
                     for row in reliability_table(proba, truth, bins)) / len(truth))


def brier_score(proba, truth) -> float:
    proba, truth = _checked(proba, truth)
    if len(truth) == 0:
        return float("nan")
    onehot = np.eye(N_CLASSES)[truth]
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
