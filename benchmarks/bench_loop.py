#!/usr/bin/env python3
"""Latency of the loop scripts as whole processes, next to the original approach.

  python benchmarks/bench_loop.py [--dir /tmp/bench_loop] [--songs 10000] [--windows 60]
                                  [--runs 5] [--baseline-runs 3] [--skip-baseline]

Builds (once, reused by later runs) a pool of SONGS x WINDOWS random window features written
as per-song CSVs, a 15-member committee (5 gnb + 5 sgd + 5 xgb, the settings' hyperparameters)
and one mc user, then times, each as a fresh process:
  ours      get_hard_tracks.py -q 10 (mc): on a pool without caches (once), for a new user of
            the default committee, and right after each retrain (a committee never scored);
            retrain_model.py with 10 answers
  original  the same two steps the original way: every call re-reads the pool from the
            per-song CSVs, and loads (and, after a retrain, saves) each member from its own
            pickle. The member code and the stored scaler are the same as ours, so the
            difference is how the pool and the committee are read and written.
Prints the median (and min/max) over the runs. The user folder is restored between runs, so
every get_hard_tracks run computes a fresh ranking and every retrain has 10 pending songs (other
songs each run, so every retrained committee is a new one).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

USER = "bench"
Q = 10


def song_id(i: int) -> str:
    return f"s{i:05d}"


# --- building the fixture ---------------------------------------------------------------------
def build_pool(feats_dir: Path, n_songs: int, n_windows: int, seed: int = 0) -> None:
    from trompa_mer.features import FEATURE_NAMES

    marker = feats_dir / ".bench_complete"
    if marker.exists() and marker.read_text() == f"{n_songs}x{n_windows}":
        return
    shutil.rmtree(feats_dir, ignore_errors=True)
    feats_dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    header = ";".join(["frameTime", *FEATURE_NAMES])
    started = time.perf_counter()
    for i in range(n_songs):
        quadrant = i % 4
        X = rng.normal(size=(n_windows, len(FEATURE_NAMES))).astype(np.float32)
        X[:, quadrant * 5:(quadrant + 1) * 5] += 1.0
        table = np.column_stack([np.arange(n_windows) * 0.5, X])
        # np.savetxt: a plain ';' CSV like extract_features.py writes, much faster than pandas here
        np.savetxt(feats_dir / f"{song_id(i)}.csv", table, fmt="%.6g", delimiter=";", header=header, comments="")
        if (i + 1) % 1000 == 0:
            print(f"  wrote {i + 1}/{n_songs} feature CSVs ({time.perf_counter() - started:.0f} s)", flush=True)
    marker.write_text(f"{n_songs}x{n_windows}")


def build_committee(base: Path, feats_dir: Path) -> None:
    """15 members on 20,000 pool windows; saved as our committee and as one pickle per member."""
    import joblib

    import settings
    from trompa_mer.committee import Committee
    from trompa_mer.members import make_member
    from trompa_mer.pool import load_pool
    from sklearn.preprocessing import StandardScaler

    if (base / "committee" / "committee.json").exists() and (base / "pickles" / "scaler.pkl").exists():
        return
    pool = load_pool(feats_dir)
    rng = np.random.default_rng(1)
    rows = rng.choice(len(pool.X), size=min(20000, len(pool.X)), replace=False)
    X_raw = np.asarray(pool.X[rows])
    y = pool.song_of_window[rows] % 4
    scaler = StandardScaler().fit(X_raw)
    X = ((X_raw - scaler.mean_) / scaler.scale_).astype(np.float32)
    members = []
    for algorithm in ("gnb", "sgd", "xgb"):
        for k in range(5):
            if algorithm == "xgb":
                member = make_member("xgb", params={**settings.XGB_PARAMS, "seed": settings.SEED + k},
                                     rounds=settings.XGB_ROUNDS, update_rounds=settings.XGB_UPDATE_ROUNDS)
            elif algorithm == "sgd":
                member = make_member("sgd", params=dict(settings.SGD_PARAMS), seed=settings.SEED + k)
            else:
                member = make_member("gnb")
            boot = rng.integers(0, len(y), len(y))
            started = time.perf_counter()
            member.fit(X[boot], y[boot])
            print(f"  trained {algorithm}_{k} ({time.perf_counter() - started:.1f} s)", flush=True)
            members.append((f"{algorithm}_{k}", member))
    from trompa_mer.features import FEATURE_NAMES

    Committee(members, scaler, FEATURE_NAMES, {"corpus": "bench_loop random pool"}).save(base / "committee")
    pickles = base / "pickles"
    pickles.mkdir(exist_ok=True)
    for name, member in members:
        joblib.dump(member, pickles / f"{name}.pkl")
    joblib.dump(scaler, pickles / "scaler.pkl")


def env_for(base: Path) -> dict:
    env = dict(os.environ)
    env.update(MER_MODELS_DIR=str(base / "models"), MER_DATA_DIR=str(base / "data"),
               MER_PRETRAINED_DIR=str(base / "committee"), PYTHONPATH=str(ROOT))
    for var in ("MER_USERS_DIR", "MER_FEATS_DIR"):
        env.pop(var, None)
    return env


def answers_json(songs) -> str:
    return json.dumps({s: f"Q{int(s[1:]) % 4 + 1}" for s in songs})


# --- timing --------------------------------------------------------------------------------
def timed(command, env) -> float:
    started = time.perf_counter()
    command = [str(c) for c in command]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(map(str, command))} failed:\n{result.stderr}")
    return elapsed


def summary(times) -> str:
    return (f"median {statistics.median(times):6.2f} s  (min {min(times):.2f}, max {max(times):.2f}, "
            f"{len(times)} runs)")


# get_hard_tracks: a new user on the (cached) default committee; after_retrain: the first call
# on a freshly retrained committee; cold: the first call on a pool without caches (once)
STEPS = ("cold", "get_hard_tracks", "retrain", "after_retrain")
STARTUP = ("from trompa_mer import loop, committee, pool; from trompa_mer.members import skops_io; "
           "skops_io(); import xgboost, sklearn.naive_bayes, sklearn.linear_model")


def bench_ours(base: Path, runs: int, steps=STEPS) -> dict:
    """Time our scripts. Per run: get_hard_tracks of a new user (the default committee, whose
    pool scores are cached after the first call), then a retrain on 10 answers, then the first
    get_hard_tracks after it (a committee never seen: its linear members and its new XGBoost
    rounds are evaluated on all 600,000 windows; the pre-trained rounds come from the margin
    cache). Each run answers other songs, so each retrained committee is new. The very first
    call, on a pool with no caches at all, is timed once ("cold")."""
    from trompa_mer.pool_scoring import SONG_PROBA_CACHE, TREE_MARGIN_CACHE
    from trompa_mer.users import UserStore, record_queries

    env = env_for(base)
    users = base / "models" / "users"
    feats = base / "data" / "feats"
    pristine = base / "pristine_user"
    if not (pristine / "base-committee").exists():  # (re)create with the current layout
        shutil.rmtree(pristine, ignore_errors=True)
        shutil.rmtree(users, ignore_errors=True)
        timed([sys.executable, str(ROOT / "create_user.py"), "-i", USER, "-m", "mc"], env)
        shutil.copytree(users / USER, pristine)

    def restore():
        shutil.rmtree(users / USER, ignore_errors=True)
        shutil.copytree(pristine, users / USER)

    hard = [sys.executable, str(ROOT / "get_hard_tracks.py"), "-i", USER, "-q", Q]
    times = {step: [] for step in ("startup", "cold", *steps)}
    store = UserStore(users)
    answers = base / "answers.json"
    if "cold" in steps:
        for cache in (SONG_PROBA_CACHE, TREE_MARGIN_CACHE):
            shutil.rmtree(feats / cache, ignore_errors=True)
        restore()
        times["cold"].append(timed(hard, env))
        print(f"  cold pool (no caches): get_hard_tracks {times['cold'][-1]:.2f} s", flush=True)
    for run in range(runs):
        # the floor every step pays: interpreter start-up and the library imports
        times["startup"].append(timed([sys.executable, "-c", STARTUP], env))
        if "get_hard_tracks" in steps:
            restore()
            times["get_hard_tracks"].append(timed(hard, env))
        if "retrain" in steps or "after_retrain" in steps:
            restore()
            songs = [song_id(i) for i in range(run * 40, run * 40 + 40, 4)][:Q]
            answers.write_text(answers_json(songs))
            store.write_state(USER, record_queries(store.read_state(USER), songs))
            elapsed = timed([sys.executable, str(ROOT / "retrain_model.py"), "-i", USER, "-a", answers], env)
            if "retrain" in steps:
                times["retrain"].append(elapsed)
            if "after_retrain" in steps:
                times["after_retrain"].append(timed(hard, env))
        print(f"  ours run {run + 1}: " + ", ".join(f"{step} {times[step][-1]:.2f} s"
                                                    for step in ("startup", *steps) if times[step]
                                                    and step != "cold"), flush=True)
    restore()
    return times


def bench_original(base: Path, runs: int) -> dict:
    env = env_for(base)
    work = base / "original"
    hard, retrain = [], []
    for run in range(runs):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(base / "pickles", work)
        (work / "state.json").write_text(json.dumps({"asked": [], "pending": []}))
        hard.append(timed([sys.executable, __file__, "_original", "get_hard_tracks", str(base)], env))
        songs = json.loads((work / "state.json").read_text())["pending"]
        (work / "answers.json").write_text(answers_json(songs))
        retrain.append(timed([sys.executable, __file__, "_original", "retrain", str(base)], env))
        print(f"  original run {run + 1}: get_hard_tracks {hard[-1]:.2f} s, retrain {retrain[-1]:.2f} s", flush=True)
    return {"get_hard_tracks": hard, "retrain": retrain}


# --- the original approach (run as its own process) --------------------------------------------
def original_step(step: str, base: Path) -> None:
    """The reference scripts' way, in this project's code: pool re-read from every per-song CSV,
    each member unpickled from its own file (and pickled back after a retrain)."""
    import joblib
    import pandas as pd
    from scipy.stats import entropy

    from trompa_mer.features import FEATURE_NAMES

    work = base / "original"
    feats_dir = base / "data" / "feats"
    names = sorted(p.stem for p in work.glob("*.pkl") if p.stem != "scaler")
    members = {name: joblib.load(work / f"{name}.pkl") for name in names}
    scaler = joblib.load(work / "scaler.pkl")
    frames = []
    for path in sorted(feats_dir.glob("*.csv")):
        table = pd.read_csv(path, sep=";")
        table.insert(0, "song", path.stem.lower())
        frames.append(table)
    pool = pd.concat(frames, ignore_index=True)
    X = scaler.transform(pool[FEATURE_NAMES].to_numpy(dtype=np.float32)).astype(np.float32)
    state = json.loads((work / "state.json").read_text())
    if step == "get_hard_tracks":
        song_probs = [pd.DataFrame(m.predict_proba(X)).groupby(pool["song"].to_numpy()).mean()
                      for m in members.values()]
        consensus = sum(song_probs) / len(song_probs)
        scores = pd.Series(entropy(consensus.to_numpy(), axis=1), index=consensus.index)
        scores = scores.drop(index=[s for s in state["asked"] if s in scores.index])
        state["pending"] = scores.sort_values(ascending=False, kind="stable").index[:Q].tolist()
    else:
        answers = json.loads((work / "answers.json").read_text())
        rows = pool["song"].isin(list(answers)).to_numpy()
        y = pool.loc[rows, "song"].map(lambda s: int(answers[s][1]) - 1).to_numpy()
        for name, member in members.items():
            member.update(X[rows], y)
            joblib.dump(member, work / f"{name}.pkl")
        state["asked"] += state["pending"]
        state["pending"] = []
    (work / "state.json").write_text(json.dumps(state))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_original":
        original_step(argv[1], Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/tmp/bench_loop", help="work folder (kept between runs)")
    parser.add_argument("--songs", type=int, default=10000, help="pool songs (default 10000)")
    parser.add_argument("--windows", type=int, default=60, help="windows per song (default 60)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of our scripts (default 5)")
    parser.add_argument("--baseline-runs", type=int, default=3, help="timed runs of the original approach")
    parser.add_argument("--skip-baseline", action="store_true", help="time our scripts only")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help="comma-separated steps to time (default all: " + ",".join(STEPS) +
                             "; the original approach times get_hard_tracks and retrain)")
    args = parser.parse_args(argv)
    base = Path(args.dir).resolve()
    feats_dir = base / "data" / "feats"
    print(f"bench_loop: {args.songs} songs x {args.windows} windows in {base}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    build_pool(feats_dir, args.songs, args.windows)
    from trompa_mer.pool import load_pool

    started = time.perf_counter()
    pool = load_pool(feats_dir)
    print(f"pool consolidated/cached: {len(pool)} songs, {pool.X.shape[0]} windows "
          f"({time.perf_counter() - started:.1f} s)", flush=True)
    build_committee(base, feats_dir)
    steps = tuple(args.steps.split(","))
    ours = bench_ours(base, args.runs, steps)
    original = None if args.skip_baseline else bench_original(base, args.baseline_runs)
    print(f"\nresults ({args.songs} songs x {args.windows} windows, 15 members, q={Q}; "
          f"load average now {os.getloadavg()[0]:.1f}):")
    print(f"  {'start-up':16s} ours     {summary(ours['startup'])}   (python + imports only)")
    for step in steps:
        if not ours[step]:
            continue
        print(f"  {step:16s} ours     {summary(ours[step])}")
        baseline = original.get(step) if original else None
        if step == "after_retrain" and original:
            baseline = original["get_hard_tracks"]  # the original scores the whole pool every call
        if baseline:
            print(f"  {step:16s} original {summary(baseline)}   speed-up "
                  f"{statistics.median(baseline) / statistics.median(ours[step]):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
