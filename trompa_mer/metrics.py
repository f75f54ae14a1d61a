"""Regression metrics for arousal/valence predictions (docs/regression.md, "Metrics").

Static targets (one value per song): `rmse`, `r2`, `pearson_r`, `kendall_tau` (tau-b),
`ccc` (Lin's concordance correlation coefficient, population moments). Each takes two 1-D
arrays of the same length; a length mismatch, an empty input or a value that is NaN or
infinite is refused with MERError. Where a metric is undefined it returns NaN instead of a
number: every metric but `rmse` needs at least 2 points; `r2` a non-constant truth;
`pearson_r` and `kendall_tau` two non-constant series; `ccc` not both constant and equal.
("Constant" means every value identical.)

Dynamic targets (a time series per song): `per_song(metric, y_true, y_pred, song_of_row)`
computes the metric over each song's rows and reports the mean and the population standard
deviation over the songs where it is defined; songs with fewer than 2 rows, or where the
metric is undefined (a constant series), are left out and counted in `excluded`.
`regression_scores` and `dynamic_scores` return the whole table for arousal and valence.
"""
from __future__ import annotations

import numpy as np

from .errors import MERError

AXES = ("arousal", "valence")


def _pair(y_true, y_pred, where: str) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.ndim != 1 or p.ndim != 1:
        raise MERError(f"{where}: y_true and y_pred must be 1-D, got shapes {t.shape} and {p.shape}")
    if len(t) != len(p):
        raise MERError(f"{where}: y_true has {len(t)} values, y_pred {len(p)} (expected one prediction per target)")
    if len(t) == 0:
        raise MERError(f"{where}: no values to score")
    for name, values in (("y_true", t), ("y_pred", p)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise MERError(f"{where}: {name}[{bad[0]}] is {values[bad[0]]} (expected finite numbers)")
    return t, p


def _constant(x: np.ndarray) -> bool:
    return bool(np.all(x == x[0]))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    t, p = _pair(y_true, y_pred, "rmse")
    return float(np.sqrt(np.mean((t - p) ** 2)))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot; NaN for < 2 points or a constant truth."""
    t, p = _pair(y_true, y_pred, "r2")
    if len(t) < 2 or _constant(t):
        return float("nan")
    return float(1.0 - np.sum((t - p) ** 2) / np.sum((t - t.mean()) ** 2))


def pearson_r(y_true, y_pred) -> float:
    """Pearson's correlation; NaN for < 2 points or a constant series."""
    t, p = _pair(y_true, y_pred, "pearson_r")
    if len(t) < 2 or _constant(t) or _constant(p):
        return float("nan")
    dt, dp = t - t.mean(), p - p.mean()
    # scale each series first so the products cannot overflow or underflow
    dt, dp = dt / np.max(np.abs(dt)), dp / np.max(np.abs(dp))
    r = np.sum(dt * dp) / np.sqrt(np.sum(dt * dt) * np.sum(dp * dp))
    return float(np.clip(r, -1.0, 1.0))


def kendall_tau(y_true, y_pred) -> float:
    """Kendall's tau-b (ties corrected, as scipy.stats.kendalltau); NaN for < 2 points or a constant series."""
    from scipy.stats import kendalltau

    t, p = _pair(y_true, y_pred, "kendall_tau")
    if len(t) < 2 or _constant(t) or _constant(p):
        return float("nan")
    return float(kendalltau(t, p, variant="b").statistic)


def ccc(y_true, y_pred) -> float:
    """Lin's concordance correlation 2 cov / (var_t + var_p + (mean_t - mean_p)^2), population
    moments; NaN for < 2 points or two constant equal series (0 / 0)."""
    t, p = _pair(y_true, y_pred, "ccc")
    if len(t) < 2:
        return float("nan")
    mt, mp = t.mean(), p.mean()
    denominator = np.mean((t - mt) ** 2) + np.mean((p - mp) ** 2) + (mt - mp) ** 2
    if denominator == 0:
        return float("nan")
    return float(2.0 * np.mean((t - mt) * (p - mp)) / denominator)


METRICS = {"rmse": rmse, "r2": r2, "pearson_r": pearson_r, "kendall_tau": kendall_tau, "ccc": ccc}


def _metric(metric):
    if callable(metric):
        return metric
    if metric not in METRICS:
        raise MERError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    return METRICS[metric]


def per_song(metric, y_true, y_pred, song_of_row) -> dict:
    """A metric over each song's rows (a time series), aggregated over songs.

    `metric`: a name in METRICS or one of the functions. Returns {"mean", "sd" (population),
    "songs" (songs scored), "excluded" (songs with < 2 rows or where the metric is undefined)};
    mean and sd are NaN when no song could be scored.
    """
    function = _metric(metric)
    name = getattr(function, "__name__", "metric")
    t, p = _pair(y_true, y_pred, f"per_song({name})")
    songs = np.asarray(song_of_row)
    if songs.ndim != 1 or len(songs) != len(t):
        raise MERError(f"per_song({name}): song_of_row has {songs.size} values for {len(t)} rows "
                       f"(expected one song per row)")
    _, index = np.unique(songs, return_inverse=True)
    order = np.argsort(index, kind="stable")
    bounds = np.flatnonzero(np.diff(index[order])) + 1
    values, excluded = [], 0
    for rows in np.split(order, bounds):
        value = function(t[rows], p[rows]) if len(rows) >= 2 else float("nan")
        if np.isfinite(value):
            values.append(value)
        else:
            excluded += 1
    if not values:
        return {"mean": float("nan"), "sd": float("nan"), "songs": 0, "excluded": excluded}
    return {"mean": float(np.mean(values)), "sd": float(np.std(values)), "songs": len(values),
            "excluded": excluded}


def _av_pair(y_true_av, y_pred_av, where: str) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true_av, dtype=np.float64)
    p = np.asarray(y_pred_av, dtype=np.float64)
    for name, values in (("y_true_av", t), ("y_pred_av", p)):
        if values.ndim != 2 or values.shape[1] != 2:
            raise MERError(f"{where}: {name} has shape {values.shape} (expected (n, 2): arousal, valence)")
    if len(t) != len(p):
        raise MERError(f"{where}: y_true_av has {len(t)} rows, y_pred_av {len(p)} (expected one prediction per target)")
    return t, p


def regression_scores(y_true_av, y_pred_av) -> dict:
    """Static scores: {"arousal": {metric: value}, "valence": {...}} for (n, 2) arrays (one row per song)."""
    t, p = _av_pair(y_true_av, y_pred_av, "regression_scores")
    return {axis: {name: function(t[:, k], p[:, k]) for name, function in METRICS.items()}
            for k, axis in enumerate(AXES)}


def dynamic_scores(y_true_av, y_pred_av, song_of_row) -> dict:
    """Dynamic scores: {"arousal": {metric: per_song(...) dict}, "valence": {...}} for (n, 2)
    arrays with one row per annotated time and the song of each row."""
    t, p = _av_pair(y_true_av, y_pred_av, "dynamic_scores")
    return {axis: {name: per_song(function, t[:, k], p[:, k], song_of_row) for name, function in METRICS.items()}
            for k, axis in enumerate(AXES)}
