"""A small committee trained on the spot, for the demo and the tests.

The real committee comes from deam_classifier.py (models/pretrained); this one lets the demo
run on generated data and the tests build a committee in a second.
"""
from __future__ import annotations

import numpy as np

from .committee import Committee
from .errors import MERError
from .quadrants import Labels
from .regression import REGRESSION_TYPES, make_regressor, residual_spread


def train_committee(X_raw, y, directory, algorithms=("gnb", "sgd", "xgb"), per_algorithm: int = 1,
                    xgb_rounds: int = 20, xgb_update_rounds: int = 5, seed: int = 1987,
                    feature_names=None, manifest: dict | None = None, av=None):
    """Fit a committee on (windows, labels) and save it to `directory`.

    For the demo (no shipped committee yet) and the tests; the real committee comes from
    deam_classifier.py. With per_algorithm > 1 each copy trains on a bootstrap sample, so the
    members disagree the way a committee should.

    av: (windows, 2) arousal/valence targets in -1..1, needed by the regression algorithms
    ("sgd-av", "xgb-av" in `algorithms`): they train on av (the classifiers on y); their
    predictive spread is their residual spread on the windows they did not see (bootstrap)
    or, with one copy, on their training windows.
    """
    from sklearn.preprocessing import StandardScaler

    from .features import FEATURE_NAMES
    from .members import DEFAULT_XGB_PARAMS, make_member

    X_raw = np.asarray(X_raw, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    scaler = StandardScaler().fit(X_raw)
    X = ((X_raw - scaler.mean_) / scaler.scale_).astype(np.float32)
    rng = np.random.default_rng(seed)
    regressors = [a for a in algorithms if a in REGRESSION_TYPES]
    if regressors and av is None:
        raise MERError(f"train_committee: the regression members {', '.join(regressors)} need "
                       f"arousal/valence targets (av)")
    targets = None if av is None else Labels.from_av(av)
    members = []
    for algorithm in algorithms:
        for k in range(per_algorithm):
            if algorithm in REGRESSION_TYPES:
                kwargs = ({"rounds": xgb_rounds, "update_rounds": xgb_update_rounds} if algorithm == "xgb-av"
                          else {"seed": seed + k})
                member = make_regressor(algorithm, **kwargs)
                rows = rng.integers(0, len(y), len(y)) if per_algorithm > 1 else np.arange(len(y))
                member.fit(X[rows], targets[rows])
                unseen = np.setdiff1d(np.arange(len(y)), rows)
                if len(unseen) > 1:
                    member.set_spread(residual_spread(targets.av[unseen] - member.predict_av(X[unseen])))
                members.append((f"{algorithm}_{k}", member))
                continue
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
