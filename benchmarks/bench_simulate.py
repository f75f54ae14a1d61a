#!/usr/bin/env python3
"""Simulation engine: what one iteration costs, and the choices that keep the benchmark short.

Prints medians over --runs of CPU milliseconds (time.process_time, so a busy shared machine
distorts less than wall time), each next to its baseline:
  - one simulated listener-iteration of the default committee (5 GNB + 5 SGD + 5 XGB members,
    update on 4 answers + predict 84 songs), per algorithm, single-threaded (the engine's
    setting) against XGBoost's default thread count;
  - restoring the pre-trained committee (cumulative update, every iteration): XGBoost slicing
    (the engine) against copy.deepcopy;
  - weighted + macro F1 of 13 test songs: the engine's confusion-matrix F1 against sklearn's
    f1_score (same numbers; the tests check that).
Uses the TROMPA-MER Spotify descriptors when ../shared/data is there, random values otherwise.

  python benchmarks/bench_simulate.py [--runs 7]
"""
import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import settings  # noqa: E402
from trompa_mer import simulate  # noqa: E402
from trompa_mer.members import make_member  # noqa: E402

PARAMS = {"sgd": {"params": dict(settings.SGD_PARAMS)},
          "xgb": {"params": dict(settings.XGB_PARAMS), "rounds": settings.XGB_ROUNDS,
                  "update_rounds": settings.XGB_UPDATE_ROUNDS}}


def cpu_ms(fn, repeat):
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat * 1000


def data():
    path = settings.SHARED_DATA_DIR / "trompa" / "track_features.csv"
    if path.exists():
        X = simulate.load_song_features(path).X
        source = str(path)
    else:
        X = np.random.default_rng(0).normal(size=(1000, 11)).astype(np.float32)
        source = "random values"
    X = ((X - X.mean(0)) / (X.std(0) + 1e-9)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 4, len(X))
    return X, y, source


def iteration_cost(X, y, algorithm, single_thread):
    import contextlib

    import sklearn
    from threadpoolctl import threadpool_limits

    member = make_member(algorithm, **PARAMS.get(algorithm, {})).fit(X[:250], y[:250])
    batch, songs = X[300:304], X[400:484]
    state = {"i": 0}

    def step():
        # restore every 15 steps so XGBoost does not grow beyond what a simulation sees
        nonlocal member
        if state["i"] % 15 == 0:
            member = base.copy()
        state["i"] += 1
        member.update(batch, y[300:304])
        member.predict_proba(songs)

    base = member
    ctx = (threadpool_limits(limits=1) if single_thread else contextlib.nullcontext())
    with ctx, sklearn.config_context(skip_parameter_validation=single_thread, assume_finite=single_thread):
        return cpu_ms(step, 30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="repetitions; medians are printed")
    args = parser.parse_args()
    X, y, source = data()
    print(f"features: {source}; median CPU ms over {args.runs} runs")
    total = {True: 0.0, False: 0.0}
    for algorithm in ("gnb", "sgd", "xgb"):
        for single in (True, False):
            ms = statistics.median(iteration_cost(X, y, algorithm, single) for _ in range(args.runs))
            total[single] += 5 * ms
            label = "engine (1 thread, no re-validation)" if single else "baseline (library defaults)"
            print(f"  {algorithm} update(4) + predict(84): {ms:7.2f} ms  {label}")
    print(f"  committee of 15, one iteration: {total[True]:7.1f} ms engine vs {total[False]:7.1f} ms baseline")
    evaluations = 24 * 3 * 4 * 2 * (16 + 7)
    print(f"  trompa-benchmark: {evaluations} iterations -> about {evaluations * total[True] / 1000:.0f} CPU s "
          f"of member work (engine)")

    xgb = make_member("xgb", **PARAMS["xgb"]).fit(X[:250], y[:250])
    slicing = statistics.median(cpu_ms(lambda: xgb.copy(), 20) for _ in range(args.runs))
    deep = statistics.median(cpu_ms(lambda: copy.deepcopy(xgb), 20) for _ in range(args.runs))
    print(f"  restore one XGBoost member: {slicing:7.2f} ms slicing (engine) vs {deep:7.2f} ms deepcopy (baseline)")

    from sklearn.metrics import f1_score

    rng = np.random.default_rng(2)
    yt, proba = rng.integers(0, 4, 13), rng.random((13, 4))

    def sk():
        p = proba.argmax(1)
        f1_score(yt, p, average="weighted", zero_division=0)
        f1_score(yt, p, average="macro", zero_division=0)

    ours = statistics.median(cpu_ms(lambda: simulate.f1_scores(yt, proba), 200) for _ in range(args.runs))
    theirs = statistics.median(cpu_ms(sk, 50) for _ in range(args.runs))
    print(f"  weighted + macro F1: {ours:7.3f} ms engine vs {theirs:7.3f} ms sklearn f1_score (baseline)")


if __name__ == "__main__":
    main()
