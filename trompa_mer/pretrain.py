"""Pre-training: grouped cross-validation of members on a corpus, reports, and the committee.

`pretrain(data, algorithms, ...)`:
- one StandardScaler fitted on all the corpus' windows: prediction needs one scaler per
  committee (the loop and the experiment engine share `committee.scaler`), and it lets split
  k's model be member k as evaluated, without training everything twice. Only feature
  statistics (no labels) of the held-out songs enter it; GaussianNB and the trees are
  invariant to a per-feature affine rescaling anyway, and for SGD the difference to per-split
  scalers is measured in docs/pretraining.md;
- GroupShuffleSplit(n_splits=cv, test_size) grouped by song, fixed seed; per split every
  algorithm is trained on the training songs (class imbalance: balanced sample weights, unless
  balance="none") and evaluated on the held-out songs at window level and at song level (song
  probability = mean of its windows'; a song's true label = the majority of its windows');
- temperatures: for each committee algorithm, the T in TEMPERATURES that minimizes the held-out
  song-level log loss; the committee mean uses the tempered probabilities (GaussianNB's
  near-one-hot window probabilities otherwise swamp the mean);
- the committee: split k's model of each member algorithm is member `<alg>_<k>`.
"""
from __future__ import annotations

import sys
import time
from collections import Counter

import numpy as np

from .errors import MERError
from .members import (COMPARISON_TYPES, MEMBER_TYPES, SONG_CLASSIFIERS, WINDOW_CLASSIFIERS, ComparisonModel,
                      make_member)
from .quadrants import N_CLASSES, QUADRANTS, Labels
from .regression import REGRESSION_TYPES, make_regressor, quadrant_log_proba, residual_spread

# Committee member algorithms: the quadrant classifiers, the arousal/valence regressors and the
# classifier on the musicnn tagger's song embeddings (trompa_mer.tagger, imported when asked for).
AUDIO_SONG_TYPES = ("musicnn",)
COMMITTEE_TYPES = (*MEMBER_TYPES, *REGRESSION_TYPES, *AUDIO_SONG_TYPES)
AXES = ("arousal", "valence")
REGRESSION_METRICS = ("rmse", "r2", "pearson_r", "kendall_tau", "ccc")

METRICS = ("precision", "recall", "f1_weighted", "f1_macro")
TEMPERATURES = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0, 128.0, 256.0)


def parse_algorithms(text: str) -> list[str]:
    """'xgb', 'gnb,sgd', 'all' (the classifiers), 'all-av' (the regressors) -> list, validated."""
    known = list(COMMITTEE_TYPES) + list(COMPARISON_TYPES)
    out = []
    for part in str(text).split(","):
        part = part.strip().lower()
        names = {"all": list(WINDOW_CLASSIFIERS), "all-song": list(SONG_CLASSIFIERS),
                 "all-av": list(REGRESSION_TYPES)}.get(part, [part])
        for name in names:
            if name not in known:
                raise MERError(f"-m: expected a comma list of {', '.join(known)}, all, all-song or all-av, "
                               f"got {part!r}")
            if name not in out:
                out.append(name)
    return out


def scores(y_true, y_pred) -> dict:
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    labels = np.arange(N_CLASSES)
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="weighted",
                                                 zero_division=0)
    # macro F1 over the quadrants present in truth or prediction (absent ones would be 0 by fiat)
    present = np.union1d(np.unique(y_true), np.unique(y_pred))
    macro = f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    return {"precision": float(p), "recall": float(r), "f1_weighted": float(f), "f1_macro": float(macro)}


def song_means(proba, song_index, n_songs) -> np.ndarray:
    counts = np.bincount(song_index, minlength=n_songs).astype(float)
    out = np.stack([np.bincount(song_index, weights=proba[:, c], minlength=n_songs)
                    for c in range(N_CLASSES)], axis=1)
    return out / np.maximum(counts, 1)[:, None]


def song_truth(y, song_index, n_songs) -> np.ndarray:
    """A song's label: the majority of its windows' labels (ties to the lower quadrant)."""
    votes = np.zeros((n_songs, N_CLASSES))
    np.add.at(votes, (song_index, y), 1)
    return votes.argmax(axis=1)


def temper(proba, temperature):
    log_p = np.log(np.clip(proba, 1e-300, None)) / temperature
    log_p -= log_p.max(axis=1, keepdims=True)
    p = np.exp(log_p)
    return p / p.sum(axis=1, keepdims=True)


def _summary(per_split: list[dict]) -> dict:
    return {m: [float(np.mean([s[m] for s in per_split])), float(np.std([s[m] for s in per_split]))]
            for m in METRICS}


def _new_model(algorithm, seed, member_params):
    if algorithm in AUDIO_SONG_TYPES:
        from .registry import member_class

        return member_class(algorithm)(**member_params.get(algorithm, {}))
    if algorithm in MEMBER_TYPES:
        return make_member(algorithm, **member_params.get(algorithm, {}))
    if algorithm in REGRESSION_TYPES:
        return make_regressor(algorithm, **member_params.get(algorithm, {}))
    return ComparisonModel(algorithm, seed=seed)


def _song_av(values, song_index, n_songs) -> np.ndarray:
    counts = np.maximum(np.bincount(song_index, minlength=n_songs), 1).astype(float)
    return np.stack([np.bincount(song_index, weights=values[:, a], minlength=n_songs) / counts
                     for a in range(2)], axis=1)


def _nan_quiet(function):
    """A metric undefined on every split (Pearson r of a constant predictor) is NaN, quietly."""
    import functools
    import warnings

    @functools.wraps(function)
    def wrapped(*args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return function(*args)
    return wrapped


@_nan_quiet
def _regression_summary(rows: list[dict]) -> dict:
    """mean and sd over splits of every static metric per axis (NaN-aware)."""
    return {axis: {m: [float(np.nanmean([r[axis][m] for r in rows])), float(np.nanstd([r[axis][m] for r in rows]))]
                   for m in REGRESSION_METRICS} for axis in AXES}


@_nan_quiet
def _dynamic_summary(rows: list[dict]) -> dict:
    """mean over splits of the per-song means (and of the per-song sds) of every metric per axis."""
    return {axis: {m: [float(np.nanmean([r[axis][m]["mean"] for r in rows])),
                       float(np.nanmean([r[axis][m]["sd"] for r in rows]))]
                   for m in REGRESSION_METRICS} for axis in AXES}


def _spread(residuals: list[np.ndarray]) -> np.ndarray:
    """Root mean square of song residuals per axis (the predictive spread), floored."""
    return residual_spread(np.concatenate(residuals) if residuals else np.zeros((0, 2)))


def _best_temperature(proba, truth) -> float:
    losses = [-np.mean(np.log(np.clip(temper(proba, t)[np.arange(len(truth)), truth], 1e-12, None)))
              for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def _regressor_song_proba(window_mu, song_index, n_songs, spread) -> np.ndarray:
    log_p = quadrant_log_proba(np.clip(window_mu, -1, 1), spread)
    proba = np.exp(log_p - log_p.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    return song_means(proba, song_index, n_songs), proba


def pretrain(data, algorithms, cv: int = 5, test_size: float = 0.2, seed: int = 1987,
             balance: str = "weights", calibrate: bool = True, member_params: dict | None = None,
             build_committee: bool = True, progress: bool = True, window_stride: int = 1,
             targets: str = "static", protocol: str = "shuffle", repeats: int = 1,
             keep_predictions: bool = False, log=sys.stderr):
    """Cross-validate `algorithms` on `data` (LabeledWindows); returns (report, committee|None).

    The splits follow `protocol` (splits.make_splits: "shuffle", "kfold" grouped by the corpus'
    split groups and repeated `repeats` times, "paper"); every algorithm is scored on every
    split, and the committee's member `<alg>_<k>` is split k's model for the first `cv` splits
    (the first repeat: with "kfold" every song is held out by exactly one member).
    `keep_predictions` adds report["held_out"]: per committee algorithm and split, the held-out
    song indices, their true quadrants and the untempered song probabilities (for studies that
    compare committees of other compositions on the same splits: experiments/fourq_members.py).

    `window_stride` N trains on every N-th window of each training song (windows overlap by
    half, so N=2 keeps nearly all the information at half the training cost); evaluation
    always uses every held-out window.

    Regression members (sgd-av, xgb-av) need `data.av`; they are scored on the same splits as
    the classifiers, by quadrant (from their probabilities) and by arousal/valence (song level:
    the mean of a song's window predictions against the mean of its window targets; with
    targets="dynamic" also per song over its windows' time series). Their predictive spread
    is the root mean square of the held-out song residuals over all splits.
    """
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils.class_weight import compute_sample_weight
    from tqdm import tqdm

    from .committee import Committee
    from .splits import make_splits

    if balance not in ("weights", "none"):
        raise MERError(f"--balance: expected weights or none, got {balance!r}")
    if targets not in ("static", "dynamic"):
        raise MERError(f"--targets: expected static or dynamic, got {targets!r}")
    member_params = member_params or {}
    X, y, groups = data.X, np.asarray(data.y, dtype=np.int64), np.asarray(data.groups)
    regressors = [a for a in algorithms if a in REGRESSION_TYPES]
    av = getattr(data, "av", None)
    if regressors and av is None:
        raise MERError(f"corpus: regression members ({', '.join(regressors)}) need arousal/valence "
                       "targets, and this corpus has quadrant labels only")
    song_ids, song_index = np.unique(groups, return_inverse=True)
    n_songs = len(song_ids)
    if n_songs < 2:
        raise MERError(f"corpus: cross-validation needs at least 2 songs, got {n_songs}")
    truth_song = song_truth(y, song_index, n_songs)
    splits, split_description = make_splits(data, protocol, cv, test_size, seed, repeats)
    if window_stride < 1:
        raise MERError(f"--window-stride: expected a positive whole number, got {window_stride}")
    import pandas as pd

    position = pd.Series(song_index).groupby(song_index).cumcount().to_numpy()
    on_stride = position % window_stride == 0
    committee_algs = [a for a in algorithms if a in COMMITTEE_TYPES]
    if av is not None:
        av = np.asarray(av, dtype=np.float64)
        song_target = _song_av(av, song_index, n_songs)

    per_split = {a: {"window": [], "song": []} for a in algorithms}
    per_split["majority"] = {"window": [], "song": []}
    held_out = {a: [] for a in committee_algs}  # (song ids, truth, song proba) per split
    song_labels = {a: [] for a in algorithms}  # (truth, predicted quadrant) of held-out songs per split
    window_mu = {a: [] for a in regressors}  # held-out window (a, v) predictions per split
    timings = {a: 0.0 for a in algorithms}
    trained = {a: [] for a in committee_algs}
    scaler = StandardScaler().fit(X)
    X_all = np.ascontiguousarray(scaler.transform(X), dtype=np.float32)
    # members with one row per song: their rows for every song of the corpus, computed once
    song_inputs = {}
    for algorithm in algorithms:
        if algorithm in MEMBER_TYPES and MEMBER_TYPES[algorithm].input_kind == "song-stats":
            from .committee import song_statistics

            song_inputs[algorithm] = song_statistics(X_all, song_index, n_songs)
        elif algorithm in AUDIO_SONG_TYPES:
            from .tagger import embed

            if getattr(data, "audio", None) is None:
                raise MERError(f"-m {algorithm}: the corpus has no audio folder (musicnn members embed "
                               "each clip's audio; use --dataset 4q or emotify)")
            song_inputs[algorithm] = embed(song_ids, data.audio, progress=progress)
    song_algs = set(song_inputs)
    bar = tqdm(total=len(splits) * len(algorithms), desc="cross-validating", unit="model",
               disable=not progress, file=log)
    split_songs = []
    for k, (train, test) in enumerate(splits):
        train = train[on_stride[train]]
        X_train, X_test = X_all[train], X_all[test]
        weights = compute_sample_weight("balanced", y[train]) if balance == "weights" else None
        test_songs, test_song_index = np.unique(song_index[test], return_inverse=True)
        split_songs.append((np.unique(song_index[train]), test_songs, test_song_index))
        majority = np.bincount(truth_song[np.unique(song_index[train])], minlength=N_CLASSES).argmax()
        per_split["majority"]["window"].append(scores(y[test], np.full(len(test), majority)))
        per_split["majority"]["song"].append(scores(truth_song[test_songs],
                                                    np.full(len(test_songs), majority)))
        train_songs = np.unique(song_index[train])
        for algorithm in algorithms:
            bar.set_postfix_str(f"split {k} {algorithm}")
            start = time.perf_counter()
            model = _new_model(algorithm, seed, member_params)
            if algorithm in song_algs:  # one row per song: its window statistics
                model.fit(song_inputs[algorithm][train_songs], truth_song[train_songs],
                          sample_weight=compute_sample_weight("balanced", truth_song[train_songs])
                          if balance == "weights" else None)
            else:
                model.fit(X_train, Labels.from_av(av[train]) if algorithm in regressors else y[train],
                          sample_weight=weights)
            timings[algorithm] += time.perf_counter() - start
            if algorithm in song_algs:
                song_p = model.predict_proba(song_inputs[algorithm][test_songs])
                per_split[algorithm]["song"].append(scores(truth_song[test_songs], song_p.argmax(axis=1)))
                song_labels[algorithm].append((truth_song[test_songs], song_p.argmax(axis=1)))
                held_out[algorithm].append((test_songs, truth_song[test_songs], song_p))
            elif algorithm in regressors:
                # quadrant scores wait for the spread, which needs every split's residuals
                window_mu[algorithm].append(model.predict_av(X_test))
            else:
                proba = model.predict_proba(X_test)
                song_p = song_means(proba, test_song_index, len(test_songs))
                per_split[algorithm]["window"].append(scores(y[test], proba.argmax(axis=1)))
                per_split[algorithm]["song"].append(scores(truth_song[test_songs], song_p.argmax(axis=1)))
                song_labels[algorithm].append((truth_song[test_songs], song_p.argmax(axis=1)))
                if algorithm in held_out:
                    held_out[algorithm].append((test_songs, truth_song[test_songs], song_p))
            if algorithm in trained and build_committee and k < cv:
                trained[algorithm].append(model)
            bar.update(1)
    bar.close()

    report_regression = {}
    spreads = {}
    if regressors:
        residuals = {a: [] for a in regressors}
        song_pred = {a: [] for a in regressors}
        for a in regressors:
            for k, (_, test_songs, test_song_index) in enumerate(split_songs):
                pred = _song_av(window_mu[a][k], test_song_index, len(test_songs))
                song_pred[a].append(pred)
                residuals[a].append(song_target[test_songs] - pred)
            spreads[a] = _spread(residuals[a])
            for k, (train, test) in enumerate(splits):
                _, test_songs, test_song_index = split_songs[k]
                song_p, proba = _regressor_song_proba(window_mu[a][k], test_song_index, len(test_songs), spreads[a])
                per_split[a]["window"].append(scores(y[test], proba.argmax(axis=1)))
                per_split[a]["song"].append(scores(truth_song[test_songs], song_p.argmax(axis=1)))
                song_labels[a].append((truth_song[test_songs], song_p.argmax(axis=1)))
                held_out[a].append((test_songs, truth_song[test_songs], song_p))
            for model in trained.get(a, []):
                model.set_spread(spreads[a])
        report_regression = _regression_report(splits, split_songs, song_target, song_pred, regressors,
                                               av, window_mu, targets)

    temperatures = {a: 1.0 for a in committee_algs}
    if calibrate:
        for algorithm in committee_algs:
            truth = np.concatenate([t for _, t, _ in held_out[algorithm]])
            proba = np.concatenate([p for _, _, p in held_out[algorithm]])
            temperatures[algorithm] = _best_temperature(proba, truth)

    report = {"splits": len(splits), "test_size": split_description.get("test_size", test_size), "seed": seed,
              "balance": balance, "protocol": split_description,
              "window_stride": window_stride,
              "songs": int(n_songs), "windows": int(len(y)),
              "song_classes": np.bincount(truth_song, minlength=N_CLASSES).tolist(),
              "window_classes": np.bincount(y, minlength=N_CLASSES).tolist(),
              "temperatures": temperatures, "fit_seconds": {a: round(t, 2) for a, t in timings.items()},
              "window": {}, "song": {}}
    if regressors:
        report["spreads"] = {a: s.round(4).tolist() for a, s in spreads.items()}
        report["regression"] = report_regression
    report["calibration"] = _calibration_report(held_out, committee_algs, calibrate, window_mu, split_songs,
                                                song_target if regressors else None)
    # "committee" on split k: the mean of split k's models of every member algorithm on split
    # k's held-out songs (the saved committee as a whole has seen every song in some split)
    if len(committee_algs) > 1:
        for name, temps in (("committee", temperatures), ("committee_untempered", None)):
            if name == "committee_untempered" and not calibrate:
                continue
            rows, labels = [], []
            for k in range(len(splits)):
                probas = [temper(held_out[a][k][2], temps[a]) if temps else held_out[a][k][2]
                          for a in committee_algs]
                truth_k, predicted_k = held_out[committee_algs[0]][k][1], np.mean(probas, axis=0).argmax(axis=1)
                rows.append(scores(truth_k, predicted_k))
                labels.append((truth_k, predicted_k))
            per_split[name] = {"song": rows}
            song_labels[name] = labels
        report["calibration"]["committee"] = _committee_calibration(held_out, committee_algs, calibrate)
    for name, levels in per_split.items():
        for level, rows in levels.items():
            if rows:
                report[level][name] = _summary(rows)
    report["per_split"] = {name: levels for name, levels in per_split.items()}
    report["song_quadrants"] = {name: _quadrant_report(rows) for name, rows in song_labels.items()}
    if keep_predictions:
        report["held_out"] = {a: list(rows) for a, rows in held_out.items()}

    committee = None
    if build_committee and committee_algs:
        members = []
        for algorithm in committee_algs:
            for k, member in enumerate(trained[algorithm]):
                member.temperature = temperatures[algorithm]
                members.append((f"{algorithm}_{k}", member))
        manifest = {
            "members": [{"name": name, "algorithm": m.algorithm, "split": int(name.rsplit("_", 1)[1]),
                         "temperature": m.temperature} for name, m in members],
            "splits": {**split_description, "n_splits": min(cv, len(splits)),
                       "test_size": split_description.get("test_size", test_size),
                       "test_songs": [sorted(song_ids[np.unique(song_index[test])].tolist())
                                      for _, test in splits[:cv]]},
            "scaler_fitted_on": "all windows of the corpus (one scaler per committee)",
            "class_balance": balance,
            "window_stride": window_stride,
            "temperatures": temperatures,
            "scores": {"window": report["window"], "song": report["song"]},
        }
        if regressors:
            manifest["spreads"] = report["spreads"]
            manifest["regression_scores"] = {"song": report["regression"]["song"]}
        committee = Committee(members, scaler, data.feature_names, manifest)
    return report, committee


def _regression_report(splits, split_songs, song_target, song_pred, regressors, av, window_mu, targets) -> dict:
    """Arousal/valence scores on held-out songs: per member algorithm, the mean of the
    regression algorithms ("committee"), and a mean predictor (the training songs' mean)."""
    from . import metrics

    rows = {name: [] for name in [*regressors, "committee", "mean_predictor"]}
    dynamic = {name: [] for name in [*regressors, "committee", "mean_predictor"]} if targets == "dynamic" else None
    for k, (train, test) in enumerate(splits):
        train_songs, test_songs, test_song_index = split_songs[k]
        truth = song_target[test_songs]
        baseline = np.tile(song_target[train_songs].mean(axis=0), (len(test_songs), 1))
        predictions = {a: song_pred[a][k] for a in regressors}
        predictions["committee"] = np.mean([song_pred[a][k] for a in regressors], axis=0)
        predictions["mean_predictor"] = baseline
        for name, pred in predictions.items():
            rows[name].append(metrics.regression_scores(truth, pred))
        if dynamic is not None:
            windows = {a: window_mu[a][k] for a in regressors}
            windows["committee"] = np.mean([window_mu[a][k] for a in regressors], axis=0)
            windows["mean_predictor"] = np.tile(baseline[0], (len(test), 1))
            for name, pred in windows.items():
                dynamic[name].append(metrics.dynamic_scores(av[test], pred, test_song_index))
    out = {"song": {name: _regression_summary(r) for name, r in rows.items()},
           "per_split": {name: r for name, r in rows.items()}}
    if dynamic is not None:
        out["dynamic"] = {name: _dynamic_summary(r) for name, r in dynamic.items()}
    return out


def _quadrant_report(rows) -> dict:
    """Per-quadrant song F1 (mean ± sd over splits) and the confusion matrix (rows: truth,
    columns: prediction; summed over splits, so with repeats a song counts once per repeat)."""
    from sklearn.metrics import confusion_matrix, f1_score

    labels = np.arange(N_CLASSES)
    f1 = np.array([f1_score(t, p, labels=labels, average=None, zero_division=0) for t, p in rows])
    confusion = sum(confusion_matrix(t, p, labels=labels) for t, p in rows)
    return {"f1": {q: [float(f1[:, i].mean()), float(f1[:, i].std())] for i, q in enumerate(QUADRANTS)},
            "confusion": np.asarray(confusion).tolist()}


def _committee_calibration(held_out, committee_algs, calibrate) -> dict:
    """ECE and Brier of the committee's mean song probability on held-out songs, cross-fitted
    like each member's (`_calibration_report`): split k's temperatures come from the other
    splits' held-out songs only."""
    from .calibration import brier_score, expected_calibration_error

    n = len(held_out[committee_algs[0]])
    eces, briers = [], []
    for k in range(n):
        others = [j for j in range(n) if j != k] or [k]
        probas = []
        for a in committee_algs:
            temperature = 1.0
            if calibrate:
                temperature = _best_temperature(np.concatenate([held_out[a][j][2] for j in others]),
                                                np.concatenate([held_out[a][j][1] for j in others]))
            probas.append(temper(held_out[a][k][2], temperature))
        truth_k = held_out[committee_algs[0]][k][1]
        eces.append(expected_calibration_error(np.mean(probas, axis=0), truth_k))
        briers.append(brier_score(np.mean(probas, axis=0), truth_k))
    return {"ece": [float(np.mean(eces)), float(np.std(eces))],
            "brier": [float(np.mean(briers)), float(np.std(briers))]}


def _calibration_report(held_out, committee_algs, calibrate, window_mu, split_songs, song_target) -> dict:
    """Song-level calibration on held-out songs, cross-fitted: split k's temperature (and a
    regressor's spread) come from the other splits' held-out songs only, then ECE and Brier
    are measured on split k's. The reliability table pools every split's songs."""
    from .calibration import brier_score, expected_calibration_error, reliability_table

    out = {}
    for a in committee_algs:
        n = len(held_out[a])
        eces, briers, pooled_p, pooled_t = [], [], [], []
        for k in range(n):
            others = [j for j in range(n) if j != k] or [k]
            truth_k = held_out[a][k][1]
            if a in window_mu:
                residuals = []
                for j in others:
                    _, songs_j, index_j = split_songs[j]
                    residuals.append(song_target[songs_j] - _song_av(window_mu[a][j], index_j, len(songs_j)))
                spread = _spread(residuals)
                probas = {j: _regressor_song_proba(window_mu[a][j], split_songs[j][2], len(split_songs[j][1]),
                                                   spread)[0] for j in [*others, k]}
            else:
                probas = {j: held_out[a][j][2] for j in [*others, k]}
            temperature = 1.0
            if calibrate:
                temperature = _best_temperature(np.concatenate([probas[j] for j in others]),
                                                np.concatenate([held_out[a][j][1] for j in others]))
            proba_k = temper(probas[k], temperature)
            eces.append(expected_calibration_error(proba_k, truth_k))
            briers.append(brier_score(proba_k, truth_k))
            pooled_p.append(proba_k)
            pooled_t.append(truth_k)
        out[a] = {"ece": [float(np.mean(eces)), float(np.std(eces))],
                  "brier": [float(np.mean(briers)), float(np.std(briers))],
                  "reliability": reliability_table(np.concatenate(pooled_p), np.concatenate(pooled_t), bins=5)}
    return out


def format_report(report: dict) -> str:
    lines = [f"{report['songs']} songs, {report['windows']} windows; song classes "
             f"{dict(zip(QUADRANTS, report['song_classes']))}; {describe_protocol(report)}, "
             f"class balance: {report['balance']}, training on 1 in {report['window_stride']} windows of each song"]
    if any(t != 1.0 for t in report["temperatures"].values()):
        lines.append("temperatures (song-level log loss on held-out songs): "
                     + ", ".join(f"{a} {t:g}" for a, t in report["temperatures"].items()))
    header = f"{'level':7} {'model':22}" + "".join(f"{m:>18}" for m in METRICS)
    lines.append(header)
    for level in ("window", "song"):
        for name, summary in report[level].items():
            cells = "".join(f"{summary[m][0]:>11.3f} ± {summary[m][1]:.3f}" for m in METRICS)
            lines.append(f"{level:7} {name:22}{cells}")
    if report.get("regression"):
        lines.append("arousal/valence on held-out songs (song level: mean of window predictions vs "
                     "the song's target; mean ± sd over splits)")
        lines.append(format_regression_table(report["regression"]["song"]))
        if report["regression"].get("dynamic"):
            lines.append("dynamic: per song over its windows' time series, mean over songs "
                         "(± mean per-song sd), averaged over splits")
            lines.append(format_regression_table(report["regression"]["dynamic"]))
        lines.append("predictive spread (held-out song residual RMS, arousal, valence): "
                     + ", ".join(f"{a} {s[0]:.3f}, {s[1]:.3f}" for a, s in report["spreads"].items()))
    if report.get("song_quadrants"):
        lines.append("song F1 per quadrant (mean ± sd over splits)")
        lines.append(f"{'model':22}" + "".join(f"{q:>16}" for q in QUADRANTS))
        for name, q in report["song_quadrants"].items():
            lines.append(f"{name:22}" + "".join(f"{q['f1'][c][0]:>9.3f} ± {q['f1'][c][1]:.3f}" for c in QUADRANTS))
        best = "committee" if "committee" in report["song_quadrants"] else next(iter(report["song_quadrants"]))
        lines.append(f"{best} song confusion (rows: true quadrant, columns: predicted; summed over splits)")
        for q, row in zip(QUADRANTS, report["song_quadrants"][best]["confusion"]):
            lines.append(f"  {q} " + "".join(f"{v:>6}" for v in row))
    if report.get("calibration"):
        lines.append("song-level calibration on held-out songs (temperature/spread from the other "
                     "splits): " + ", ".join(f"{a} ECE {c['ece'][0]:.3f} Brier {c['brier'][0]:.3f}"
                                             for a, c in report["calibration"].items()))
    return "\n".join(lines)


def describe_protocol(report: dict) -> str:
    """'5 splits grouped by song (GroupShuffleSplit, test 20%), seed 1987', or for k-fold
    '5 folds x 3 repeats grouped by artist (StratifiedGroupKFold), seeds 1987..1989'."""
    protocol = report.get("protocol") or {"protocol": "shuffle", "grouped_by": "song"}
    if protocol.get("protocol", "shuffle") == "shuffle":
        return (f"{report['splits']} splits grouped by {protocol.get('grouped_by', 'song')} (GroupShuffleSplit, "
                f"test {report['test_size']:.0%}), seed {report['seed']}")
    repeats = protocol.get("repeats", 1)
    seeds = f"seed {report['seed']}" if repeats == 1 else f"seeds {report['seed']}..{report['seed'] + repeats - 1}"
    return (f"{protocol['folds']} folds x {repeats} repeats grouped by {protocol['grouped_by']} "
            f"({protocol['method']}), {seeds}")


def format_regression_table(summary: dict) -> str:
    """One row per model: every metric for arousal then valence, mean ± sd."""
    header = f"{'model':16}" + "".join(f"{axis[0] + '_' + m:>16}" for axis in AXES for m in REGRESSION_METRICS)
    lines = [header]
    for name, axes in summary.items():
        cells = "".join(f"{axes[axis][m][0]:>8.3f} ± {axes[axis][m][1]:5.3f}" for axis in AXES
                        for m in REGRESSION_METRICS)
        lines.append(f"{name:16}{cells}")
    return "\n".join(lines)


def load_dataset(dataset: str, paths: dict, label_scheme: str, jobs: int, progress: bool,
                 targets: str = "static"):
    """(LabeledWindows, corpus description for the manifest)."""
    from pathlib import Path

    if targets == "dynamic" and dataset in ("emotify", "4q", "generic"):
        raise MERError(f"--targets dynamic: {dataset} has one arousal/valence value per song "
                       "(dynamic targets: deam, pmemo, emomusic)")
    if dataset == "deam":
        from .datasets.deam import load_deam

        data = load_deam(paths["deam_features"], paths["deam_arousal"], paths["deam_valence"],
                         progress=progress, jobs=jobs, targets=targets)
        corpus = {"name": "DEAM", "features": Path(paths["deam_features"]).name,
                  "labels": "dynamic arousal/valence per 500 ms; each window labeled by the "
                            "quadrant of its own time, unannotated windows dropped",
                  "licence": "CC BY-NC (non-commercial research)"}
        mapping = "quadrant_from_av(arousal, valence) per window (0 counts as positive)"
    elif dataset == "4q":
        from .datasets import fourq

        data = fourq.load_4q(paths["fourq"], paths["cache_dir"], jobs=jobs, progress=progress)
        corpus = dict(fourq.CORPUS)
        mapping = "the corpus' quadrant per song (annotations.csv), every window of a song carries it"
    elif dataset == "emotify":
        from .datasets import emotify

        data = emotify.load_emotify(paths["emotify"], paths["cache_dir"], scheme=label_scheme,
                                    jobs=jobs, progress=progress, targets=targets)
        corpus = {"name": "Emotify", "clips": "first 30 s of each excerpt, mono 22.05 kHz",
                  "licence": "music CC BY-NC-SA (Magnatune), annotations for non-commercial research",
                  "citation": "Aljanaki, Wiering & Veltkamp, Information Processing & Management, 2016"}
        mapping = {"scheme": label_scheme, "gems_av": emotify.GEMS_AV,
                   "gems_quadrant": {k: QUADRANTS[v] for k, v in emotify.GEMS_QUADRANT.items()},
                   "description": emotify.SCHEME_DESCRIPTIONS[label_scheme]}
    elif dataset == "generic":
        from .datasets.generic import load_generic

        if not paths.get("features") or not paths.get("labels"):
            raise MERError("--dataset generic needs --features FILE and --labels FILE")
        data = load_generic(paths["features"], paths["labels"], paths.get("id_column"), scale=paths.get("scale"))
        corpus = {"name": "generic", "features": Path(paths["features"]).name,
                  "labels": Path(paths["labels"]).name}
        mapping = "labels file: quadrant column, or quadrant_from_av(arousal, valence)"
        if paths.get("scale"):
            mapping += f"; arousal/valence on {paths['scale']} mapped to -1..1, song means"
    elif dataset == "pmemo":
        from .datasets.pmemo import load_pmemo

        if not paths.get("pmemo"):
            raise MERError("--dataset pmemo needs --pmemo DIR (the PMEmo 2019 folder)")
        data = load_pmemo(paths["pmemo"], targets=targets)
        corpus = {"name": "PMEmo 2019", "licence": "research use (see the corpus)"}
        mapping = f"{targets} arousal/valence (0..1 mapped to -1..1); quadrant = their signs"
    elif dataset == "emomusic":
        from .datasets.emomusic import load_emomusic

        if not paths.get("emomusic_features") or not paths.get("emomusic_annotations"):
            raise MERError("--dataset emomusic needs --emomusic-features DIR and --emomusic-annotations DIR")
        data = load_emomusic(paths["emomusic_features"], paths["emomusic_annotations"], targets=targets,
                             progress=progress, jobs=jobs)
        corpus = {"name": "1000 Songs (emoMusic)", "licence": "research use (see the corpus)"}
        mapping = f"{targets} arousal/valence (static 1..9, continuous -1..1, mapped to -1..1)"
    else:
        raise MERError(f"--dataset: expected 4q, deam, emotify, generic, pmemo or emomusic, got {dataset!r}")
    return data, corpus, mapping


def run(dataset: str, paths: dict, algorithms: str, cv: int, out_dir=None, seed: int = 1987,
        test_size: float = 0.2, balance: str = "weights", calibrate: bool = True,
        label_scheme: str = "av-median", jobs: int = 1, progress: bool = True,
        member_params: dict | None = None, report_path=None, command: str | None = None,
        window_stride: int = 1, task: str = "classification", targets: str = "static",
        encoder_members: dict | None = None, protocol: str = "shuffle", repeats: int = 1,
        out=sys.stdout) -> dict:
    """What deam_classifier.py does: load a corpus, cross-validate, print, save the committee.

    `encoder_members` ({"encoder_dir", "transfer", "audio_cache_dir", "member_params"}): also
    one `transfer.EncoderMember` per split (the same grouped song splits), trained on the
    Emotify clips' audio and added to the committee as `encoder_<k>`."""
    from . import atomic

    algorithm_list = parse_algorithms(algorithms)
    if task not in ("classification", "regression"):
        raise MERError(f"--task: expected classification or regression, got {task!r}")
    if task == "regression" and not any(a in REGRESSION_TYPES for a in algorithm_list):
        raise MERError(f"--task regression: -m {algorithms!r} names no regression member "
                       f"(expected at least one of {', '.join(REGRESSION_TYPES)}, or all-av)")
    if targets == "dynamic" and task != "regression":
        raise MERError("--targets dynamic: only with --task regression")
    if encoder_members is not None and dataset != "emotify":
        raise MERError(f"--encoder: needs --dataset emotify (encoder members read the clips' audio), "
                       f"got --dataset {dataset}")
    if encoder_members is not None:  # a wrong encoder folder is refused before any long work
        from .encoder import load_encoder

        load_encoder(encoder_members["encoder_dir"])
    data, corpus, mapping = load_dataset(dataset, paths, label_scheme, jobs, progress, targets=targets)
    from .datasets.checks import check_corpus

    check_corpus(data, dataset, paths, needs_av=any(a in REGRESSION_TYPES for a in algorithm_list))
    report, committee = pretrain(data, algorithm_list, cv=cv, test_size=test_size, seed=seed,
                                 balance=balance, calibrate=calibrate, member_params=member_params,
                                 build_committee=out_dir is not None, progress=progress,
                                 window_stride=window_stride, targets=targets, protocol=protocol, repeats=repeats)
    if encoder_members is not None:
        committee = _add_encoder_members(data, paths, encoder_members, report, committee, cv,
                                         test_size, seed, progress, out, protocol)
    print(format_report(report), file=out)
    if report_path is not None:
        atomic.write_json(report_path, report)
    if out_dir is not None:
        if committee is None:
            print(f"no committee saved: {algorithms!r} has no committee member algorithm "
                  f"({', '.join(COMMITTEE_TYPES)})", file=out)
        else:
            corpus.update(songs=report["songs"], windows=report["windows"],
                          song_classes=dict(zip(QUADRANTS, report["song_classes"])))
            committee.manifest.update(corpus=corpus, label_mapping=mapping, command=command,
                                      cv_report={k: report[k] for k in
                                                 ("window", "song", "fit_seconds", "temperatures")})
            from .committee import library_versions

            committee.manifest["versions"] = library_versions()
            committee.save(out_dir, extra_files={"README.md": model_card(committee.manifest, report)})
            print(f"committee of {len(committee.members)} members saved to {out_dir}", file=out)
    return report


def song_splits(data, cv: int, test_size: float, seed: int, protocol: str = "shuffle"):
    """(song ids, one quadrant per song, [(train, test) song index arrays]): the first `cv` of
    `pretrain`'s window splits (same arguments, so the same songs: the committee's members)
    mapped onto songs."""
    from .splits import make_splits

    y, groups = np.asarray(data.y, dtype=np.int64), np.asarray(data.groups).astype(str)
    song_ids, song_index = np.unique(groups, return_inverse=True)
    truth = song_truth(y, song_index, len(song_ids))
    window_splits, _ = make_splits(data, protocol, cv, test_size, seed)
    splits = [(np.unique(song_index[train]), np.unique(song_index[test])) for train, test in window_splits]
    return song_ids, truth, splits


def _add_encoder_members(data, paths, options, report, committee, cv, test_size, seed, progress, out,
                         protocol="shuffle"):
    """Train the encoder members on the splits, report their song scores, add them."""
    from pathlib import Path

    from .audio_cache import AudioCache
    from .transfer import pretrain_encoder_members

    song_ids, truth, splits = song_splits(data, cv, test_size, seed, protocol)
    audio = AudioCache.from_folder(Path(paths["emotify"]) / "audio", options["audio_cache_dir"])
    results = pretrain_encoder_members(song_ids, truth, audio, splits, options["encoder_dir"],
                                       progress=progress, transfer=options["transfer"],
                                       **(options.get("member_params") or {}))
    f1 = [r["f1_macro"] for r in results if "f1_macro" in r]
    acc = [r["accuracy"] for r in results if "accuracy" in r]
    print(f"encoder members ({options['transfer']}, {options['encoder_dir']}): song macro F1 "
          f"{np.mean(f1):.3f} ± {np.std(f1):.3f}, accuracy {np.mean(acc):.3f} over {len(f1)} splits", file=out)
    report["encoder_members"] = {"transfer": options["transfer"], "encoder": str(options["encoder_dir"]),
                                 "song_f1_macro": f1, "song_accuracy": acc}
    # the same rows as every member algorithm: the song-level table and the per-quadrant F1
    tested = [r for r in results if "truth" in r]
    if tested:
        report["song"]["encoder"] = _summary([scores(r["truth"], r["predicted"]) for r in tested])
        report.setdefault("song_quadrants", {})["encoder"] = _quadrant_report(
            [(r["truth"], r["predicted"]) for r in tested])
    if committee is None:
        return None
    from .committee import Committee

    members = committee.members + [(r["name"], r["member"]) for r in results]
    manifest = dict(committee.manifest)
    manifest["members"] = list(manifest["members"]) + [
        {"name": r["name"], "algorithm": "encoder", "split": k, "temperature": 1.0,
         "transfer": options["transfer"]} for k, r in enumerate(results)]
    manifest["encoder_members"] = report["encoder_members"]
    manifest["scores"] = {"window": report["window"], "song": report["song"]}
    return Committee(members, committee.scaler, committee.feature_names, manifest)


def model_card(manifest: dict, report: dict) -> str:
    """The committee folder's README.md, written from its manifest and the CV report."""
    corpus = manifest.get("corpus", {})
    mapping = manifest.get("label_mapping")
    counts = Counter(m["algorithm"] for m in manifest["members"])
    lines = [
        f"# Committee: {', '.join(f'{n} {a}' for a, n in counts.items())} members, trained on {corpus.get('name')}",
        "",
        "Built by (from the repository root, with the versions below):",
        "",
        "```",
        manifest.get("command") or "(command not recorded)",
        "```",
        "",
        "Rebuilding with the same command and versions gives identical predictions "
        "(tests/test_committee_pretrained.py checks it when the corpus is present under ../shared/data).",
        "",
        "## Corpus and labels",
        f"- Corpus: {corpus.get('name')}: {corpus.get('songs')} songs, {corpus.get('windows')} feature "
        f"windows (1 s windows, 0.5 s hop, 260 IS13 features); song classes {corpus.get('song_classes')}.",
    ]
    for key in ("clips", "labels", "citation"):
        if corpus.get(key):
            lines.append(f"- {key.capitalize()}: {corpus[key]}")
    lines.append(f"- Licence of the training data: {corpus.get('licence', 'see the corpus')}. "
                 "The models are for non-commercial research use.")
    if isinstance(mapping, dict):
        lines.append(f"- Label mapping `{mapping.get('scheme')}`: {mapping.get('description', '')}.")
        lines.append("- Why this scheme, and the measured alternatives (argmax of ticks, sign at zero, "
                     "balanced weights or none, per-class GaussianNB variances): docs/pretraining.md "
                     "in the repository.")
        if mapping.get("gems_av"):
            lines.append("- GEMS coordinates (arousal, valence): "
                         + ", ".join(f"{k} {tuple(v)}" for k, v in mapping["gems_av"].items()))
    elif mapping:
        lines.append(f"- Label mapping: {mapping}")
    lines += [
        "- Every window of a song carries the song's label; quadrants are encoded Q1..Q4 -> 0..3.",
        "",
        "## Training",
        f"- Splits: {describe_protocol(report)}; member `<algorithm>_<k>` is the model trained on "
        f"split k's training songs, k < {manifest['splits']['n_splits']} (its held-out songs are listed in "
        "committee.json); the scores below are over every split.",
        f"- Features standardized by one scaler ({manifest.get('scaler_fitted_on')}), `{manifest.get('scaler', 'scaler.npy')}`.",
        f"- Training windows: 1 in {manifest.get('window_stride', 1)} windows of each training song "
        "(windows overlap by half; all held-out windows are evaluated).",
        f"- Class imbalance: {'balanced sample weights' if manifest.get('class_balance') == 'weights' else 'none'}.",
        "- Temperatures (p ∝ p^(1/T), chosen by held-out song-level log loss): "
        + ", ".join(f"{a} {t:g}" for a, t in manifest.get("temperatures", {}).items()) + ".",
        "- Song probability = mean of its window probabilities (window members) or one prediction "
        "from the song's window statistics (song members, `song-*`) or from the song's musicnn "
        "embedding (`musicnn` members: they read the song's audio, MER_AUDIO_DIR in the loop); "
        "the committee's answer = the mean over members.",
        "",
        "## Cross-validated scores (held-out songs, mean ± sd over splits)",
        "",
        "| level | model | precision | recall | weighted F1 | macro F1 |",
        "|---|---|---|---|---|---|",
    ]
    for level in ("song", "window"):
        for name, summary in report[level].items():
            cells = " | ".join(f"{summary[m][0]:.3f} ± {summary[m][1]:.3f}" for m in METRICS)
            lines.append(f"| {level} | {name} | {cells} |")
    if manifest.get("regression_scores"):
        lines += ["", "## Arousal/valence (regression members, held-out songs, mean ± sd over splits)", "",
                  "| model | axis | " + " | ".join(REGRESSION_METRICS) + " |",
                  "|---|---|" + "---|" * len(REGRESSION_METRICS)]
        for name, axes in manifest["regression_scores"]["song"].items():
            for axis in AXES:
                lines.append(f"| {name} | {axis} | " + " | ".join(
                    f"{axes[axis][m][0]:.3f} ± {axes[axis][m][1]:.3f}" for m in REGRESSION_METRICS) + " |")
        lines += ["", "Regression members' quadrant probabilities: independent Gaussians around the "
                  "predicted (arousal, valence) with the held-out residual spread per axis "
                  f"({manifest.get('spreads')}); docs/regression.md."]
    if report.get("song_quadrants", {}).get("committee"):
        quadrants = report["song_quadrants"]["committee"]
        lines += ["", "Committee song F1 per quadrant (mean ± sd over splits): "
                  + ", ".join(f"{q} {v[0]:.3f} ± {v[1]:.3f}" for q, v in quadrants["f1"].items()) + ".", "",
                  "Committee song confusion (rows: true quadrant, columns: predicted; summed over splits):", "",
                  "| | " + " | ".join(QUADRANTS) + " |", "|---|" + "---|" * len(QUADRANTS)]
        lines += [f"| {q} | " + " | ".join(str(v) for v in row) + " |"
                  for q, row in zip(QUADRANTS, quadrants["confusion"])]
    if report.get("calibration"):
        lines += ["", "Song-level calibration on held-out songs (temperatures from the other splits): "
                  + ", ".join(f"{a} ECE {c['ece'][0]:.3f}, Brier {c['brier'][0]:.3f}"
                              for a, c in report["calibration"].items()) + "."]
    lines += [
        "",
        "`majority` always answers the training part's most frequent song class; `committee` is "
        "the mean of split k's models of every algorithm on split k's held-out songs. Precision, "
        "recall and weighted F1 are weighted by class support.",
        "",
        "## Files and versions",
        "- `committee.json`: members, feature names, classes, provenance, sha256 of every file "
        "(checked on load).",
        "- `<member>.skops` (scikit-learn, loaded against an explicit trusted-type list), "
        "`<member>.ubj` (XGBoost's own format), `<member>.json` (metadata); an SGD member's "
        "`<member>.linear.npy` holds its weights, so scoring needs no scikit-learn.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in manifest.get("versions", {}).items()) + ".",
        "",
    ]
    return "\n".join(lines)
