#!/usr/bin/env python3
"""Pool store: time to read a consolidated pool of N songs × W windows (default 10,000 × 60).

Builds the folder of per-song feature CSVs once (random values, the real layout) under
.cache/bench_pool, consolidates it, then times in fresh processes:
  - load_pool() on the consolidated cache (memory-mapped) plus touching every value
    (a full pass over the table, so the timing includes really reading it);
  - the baseline the reference system used on every call: re-reading all per-song CSVs.

  python benchmarks/bench_pool.py [--songs 10000] [--windows 60] [--runs 5]
"""
import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from trompa_mer.features import FEATURE_NAMES  # noqa: E402

LOAD = """
import sys, time; t0 = time.perf_counter()
sys.path.insert(0, {root!r})
import numpy as np
from trompa_mer.pool import load_pool
pool = load_pool({folder!r})
total = float(pool.X.sum(dtype=np.float64))
print(time.perf_counter() - t0)
"""

BASELINE = """
import sys, time, glob; t0 = time.perf_counter()
import pandas as pd
frames = [pd.read_csv(f, sep=';') for f in sorted(glob.glob({folder!r} + '/*.csv'))[:{limit}]]
table = pd.concat(frames)
print(time.perf_counter() - t0)
"""


def build(folder: Path, songs: int, windows: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.glob("*.csv")))
    if have == songs:
        return
    rng = np.random.default_rng(0)
    header = ";".join(["frameTime", *FEATURE_NAMES])
    times = (np.arange(windows) * 0.5)[:, None]
    for i in range(songs):
        values = np.hstack([times, rng.normal(size=(windows, 260)).astype(np.float32)])
        np.savetxt(folder / f"song{i:05d}.csv", values, delimiter=";", header=header, comments="", fmt="%.7g")
        if i % 1000 == 0:
            print(f"  wrote {i}/{songs} CSVs", file=sys.stderr)


def timed(code: str, runs: int) -> list:
    out = []
    for _ in range(runs):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        out.append(float(res.stdout.strip().splitlines()[-1]))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=int, default=10000)
    parser.add_argument("--windows", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-songs", type=int, default=1000,
                        help="songs re-read by the CSV baseline (extrapolated linearly to --songs)")
    args = parser.parse_args()
    folder = ROOT / ".cache" / f"bench_pool_{args.songs}x{args.windows}"
    build(folder, args.songs, args.windows)
    t0 = time.perf_counter()
    from trompa_mer.pool import load_pool
    load_pool(folder, progress=True, jobs=2)
    print(f"consolidation (once, 2 jobs, when the folder changed): {time.perf_counter() - t0:.1f} s")
    cached = timed(LOAD.format(root=str(ROOT), folder=str(folder)), args.runs)
    base = timed(BASELINE.format(folder=str(folder), limit=args.baseline_songs), max(1, args.runs // 2))
    base_full = statistics.median(base) * args.songs / args.baseline_songs
    print(f"pool: {args.songs} songs x {args.windows} windows x 260 features")
    print(f"{'read (fresh process, every value touched)':<46}{'median s':>10}{'min':>8}{'max':>8}")
    print(f"{'consolidated cache (load_pool)':<46}{statistics.median(cached):>10.2f}{min(cached):>8.2f}{max(cached):>8.2f}")
    print(f"{'per-song CSVs re-read (reference approach)':<46}{base_full:>10.1f}   (measured on {args.baseline_songs} songs, scaled)")
    print(f"{'speed-up':<46}{base_full / statistics.median(cached):>10.0f}x")


if __name__ == "__main__":
    main()
