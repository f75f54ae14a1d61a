#!/usr/bin/env python3
"""The sharded pool store against the single-file store of before, whole processes.

  python benchmarks/bench_shards.py --songs 100000 --before DIR [--runs 3] [--old-refresh-runs N]
                                    [--dir /tmp/bench_shards] [--steps hard_new,retrain,hard_retrained]

On bench_scale.py's synthetic pool (the single-file store of before written straight to disk,
one placeholder CSV per song), in this order:
  1. the loop's steps (bench_scale.run_steps) with the code before (`--before DIR`, e.g.
     `git archive 930e0ac | tar -x -C DIR`) on the single-file store: label before-single;
  2. refresh-before: one song's CSV rewritten (a real feature CSV), then the code before's
     `extract_features.py --consolidate FEATS` (its store rebuilt whole);
  3. build-shards: this code's `extract_features.py --consolidate FEATS` converting the
     single-file store into shards (rows copied, no CSV parsed; restored between runs from hard
     links, its meta.json's identities updated so nothing is hashed that a real store would not);
  4. refresh-shards: one song's CSV rewritten, then this code's `--consolidate` (its shard only);
  5. the loop's steps with this code on the sharded store: label after-shards.
Each timing is a fresh process under GNU time: wall, CPU (user + system), peak resident memory.
Results go to `<dir>/results.jsonl` (bench_scale.py's format: `bench_scale.py --report DIR`
prints the steps) and `<dir>/store.jsonl` (the store's own timings), and are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_scale as B  # noqa: E402


def write_song_csv(path: Path, windows: int, seed: int) -> None:
    import numpy as np
    import pandas as pd

    from trompa_mer.features import FEATURE_NAMES, write_feature_csv

    rng = np.random.default_rng(seed)
    table = pd.DataFrame(rng.normal(size=(windows, len(FEATURE_NAMES))).astype(np.float32), columns=FEATURE_NAMES)
    table.insert(0, "frameTime", np.arange(windows) * 0.5)
    write_feature_csv(table, path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, time.time_ns()))


def restore_single(feats: Path, pristine: Path) -> None:
    """The single-file store back from its hard links, its identities recorded afresh (the
    links moved the files' ctimes; their bytes are the ones the checksums name)."""
    from trompa_mer import cache_files
    from trompa_mer.pool import CACHE_NAME
    from trompa_mer.pool_shards import STORE_NAME

    shutil.rmtree(feats / STORE_NAME, ignore_errors=True)
    shutil.rmtree(feats / CACHE_NAME, ignore_errors=True)
    (feats / CACHE_NAME).mkdir()
    for entry in pristine.iterdir():
        os.link(entry, feats / CACHE_NAME / entry.name)
    meta = json.loads((feats / CACHE_NAME / "meta.json").read_text())
    for name, record in meta["files"].items():
        record["stat"] = cache_files.identity(os.stat(feats / CACHE_NAME / f"{name}.npy"))
    (feats / CACHE_NAME / "meta.json").unlink()
    (feats / CACHE_NAME / "meta.json").write_text(json.dumps(meta))


def consolidate(code: Path, feats: Path, env: dict) -> tuple:
    return B.timed([sys.executable, code / "extract_features.py", "--consolidate", feats, "-q"], env, code)


def summary(label: str, results: list) -> dict:
    walls, peaks, cpus = zip(*results)
    out = {"label": label, "median_s": statistics.median(walls), "cpu_median_s": statistics.median(cpus),
           "peak_mb": max(peaks), "runs": len(results), "each": [list(r) for r in results]}
    print(f"  {label:16s} median {out['median_s']:7.2f} s, CPU {out['cpu_median_s']:7.2f} s, "
          f"peak {out['peak_mb']:6.0f} MB ({len(results)} runs)", flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default="/tmp/bench_shards")
    parser.add_argument("--songs", type=int, default=10000)
    parser.add_argument("--windows", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--old-refresh-runs", type=int, default=None,
                        help="runs of the code before's refresh (default --runs; at 10^5 songs it holds "
                             "≈ 2 × the store in memory)")
    parser.add_argument("--before", required=True, help="a checkout of the code before (single-file store)")
    parser.add_argument("--steps", default="hard_new,retrain,hard_retrained")
    parser.add_argument("--candidates", type=int, default=None)
    args = parser.parse_args(argv)
    steps = tuple(s for s in args.steps.split(",") if s)
    base = Path(args.dir).resolve() / f"{args.songs}x{args.windows}"
    feats = base / "data" / "feats"
    before, code = Path(args.before).resolve(), ROOT
    from trompa_mer.pool import CACHE_NAME
    from trompa_mer.pool_shards import MANIFEST, STORE_NAME

    print(f"bench_shards: {args.songs} songs x {args.windows} windows in {base}; load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    pristine = base / "pristine-single"
    if pristine.exists():
        restore_single(feats, pristine)
    B.write_synthetic_pool(feats, args.songs, args.windows, ROOT / "models" / "pretrained-features")
    if not pristine.exists():
        pristine.mkdir()
        for entry in (feats / CACHE_NAME).iterdir():
            os.link(entry, pristine / entry.name)
    store = {"songs": args.songs, "windows": args.windows, "when": time.strftime("%Y-%m-%d %H:%M:%S"),
             "load_before": os.getloadavg()[0]}
    results_path = Path(args.dir).resolve() / "results.jsonl"

    def record_steps(label, results):
        rec = {"label": label, "songs": args.songs, "windows": args.windows, "code": str(code if label.startswith("after") else before),
               "candidates": args.candidates, "warm": False, "load_after": os.getloadavg()[0],
               "when": time.strftime("%Y-%m-%d %H:%M:%S"), "steps": {}}
        for step in steps:
            walls, peaks, cpus = zip(*results[step])
            rec["steps"][step] = {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
                                  "cpu_median_s": statistics.median(cpus), "peak_mb": max(peaks), "runs": len(walls)}
        with open(results_path, "a") as handle:
            handle.write(json.dumps(rec) + "\n")

    if steps:
        print("steps, the code before on the single-file store:", flush=True)
        record_steps("before-single", B.run_steps(base, before, args.runs, args.candidates, steps))
    env_before, env_after = B.env_for(base, before), B.env_for(base, code)
    song = iter(range(7, args.songs, max(1, args.songs // 50)))

    print("refresh, the code before (one song's CSV rewritten):", flush=True)
    runs = []
    for r in range(args.runs if args.old_refresh_runs is None else args.old_refresh_runs):
        restore_single(feats, pristine)
        write_song_csv(feats / f"{B.song_id(next(song))}.csv", args.windows, r)
        runs.append(consolidate(before, feats, env_before))
    if runs:
        store["refresh-before"] = summary("refresh-before", runs)

    print("build: the single-file store converted into shards:", flush=True)
    runs = []
    for r in range(args.runs):
        restore_single(feats, pristine)
        runs.append(consolidate(code, feats, env_after))
    store["build-shards"] = summary("build-shards", runs)
    manifest = json.loads((feats / STORE_NAME / MANIFEST).read_text())
    store["shards"] = len(manifest["shards"])
    store["store_bytes"] = sum((feats / STORE_NAME / n).stat().st_size for n in manifest["shards"])
    store["manifest_bytes"] = (feats / STORE_NAME / MANIFEST).stat().st_size

    print("refresh, the sharded store (one song's CSV rewritten):", flush=True)
    runs, rewritten = [], []
    for r in range(args.runs):
        names = set(json.loads((feats / STORE_NAME / MANIFEST).read_text())["shards"])
        write_song_csv(feats / f"{B.song_id(next(song))}.csv", args.windows, 100 + r)
        runs.append(consolidate(code, feats, env_after))
        rewritten.append(len(set(json.loads((feats / STORE_NAME / MANIFEST).read_text())["shards"]) - names))
    store["refresh-shards"] = summary("refresh-shards", runs)
    store["shards_rewritten_per_refresh"] = rewritten
    print(f"  {store['shards']} shards, {store['store_bytes'] / 1e9:.2f} GB, manifest "
          f"{store['manifest_bytes'] / 1e6:.1f} MB; shards rewritten per refresh: {rewritten}", flush=True)

    if steps:
        print("steps, this code on the sharded store:", flush=True)
        record_steps("after-shards", B.run_steps(base, code, args.runs, args.candidates, steps))
    store["load_after"] = os.getloadavg()[0]
    with open(Path(args.dir).resolve() / "store.jsonl", "a") as handle:
        handle.write(json.dumps(store) + "\n")
    print(f"load average now {store['load_after']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
