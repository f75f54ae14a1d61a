"""A small committee trained on the spot, for the demo and the tests.

The real committee comes from deam_classifier.py (models/pretrained); this one lets the demo
run on generated data and the tests build a committee in a second.
"""
from __future__ import annotations

import numpy as np

from .committee import Committee


def train_committee(X_raw, y, directory, algorithms=("gnb", "sgd", "xgb"), per_algorithm: int = 1,
                    xgb_rounds: int = 20, xgb_update_rounds: int = 5, seed: int = 1987,
                    feature_names=None, manifest: dict | None = None):
    """Fit a committee on (windows, labels) and save it to `directory`.

    For the demo (no shipped committee yet) and the tests; the real committee comes from
    deam_classifier.py. With per_algorithm > 1 each copy trains on a bootstrap sample, so the
    members disagree the way a committee should.
    """
    from sklearn.preprocessing import StandardScaler

    from .features import FEATURE_NAMES
    from .members import DEFAULT_XGB_PARAMS, make_member

    X_raw = np.asarray(X_raw, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    scaler = StandardScaler().fit(X_raw)
    X = ((X_raw - scaler.mean_) / scaler.scale_).astype(np.float32)
    rng = np.random.default_rng(seed)
    members = []
    for algorithm in algorithms:
        for k in range(per_algorithm):
            if algorithm == "xgb":
                member = make_member("xgb", params={**DEFAULT_XGB_PARAMS, "seed": seed + k},
                                     rounds=xgb_rounds, update_rounds=xgb_update_rounds)
            elif algorithm == "sgd":
                member = make_member("sgd", seed=seed + k)
            else:
                member = make_member(algorithm)
            rows = rng.integers(0, len(y), len(y)) if per_algorithm > 1 else np.arange(len(y))
            member.fit(X[rows], y[rows])
            members.append((f"{algorithm}_{k}", member))
    info = {"corpus": "generated on the spot (demo/test committee)", **(manifest or {})}
    committee = Committee(members, scaler, list(feature_names or FEATURE_NAMES), info)
    committee.save(directory)
    return committee
