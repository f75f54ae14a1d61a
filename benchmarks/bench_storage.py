#!/usr/bin/env python3
"""Disk use of user folders with the shared store, and the cost of creating/loading/saving.

  python benchmarks/bench_storage.py [--committee models/pretrained-features] [--dir /tmp/bench_storage]
                                     [--users 20] [--rounds 10]

In-process (interpreter start-up and imports excluded): creates --users users of the committee
(timing UserStore.create), then runs --rounds retrain rounds of one user with the cumulative
update (the loop's default) and of another with the batch update (10 answered songs of 60
random windows per round), and prints each folder's disk use (allocated blocks, as du counts
them), the shared store's, and the latency of loading the user's committee and saving a round
next to the same committee as full copies (the layout before the store).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def disk_use(path: Path) -> int:
    """Bytes allocated under `path` (st_blocks, like du); hard links counted once."""
    seen, total = set(), 0
    for p in [path, *path.rglob("*")]:
        st = p.lstat()
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def mb(n: int) -> str:
    return f"{n / 1e6:.3f} MB"


def median_time(fn, runs: int) -> tuple[float, float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times), max(times)


def main(argv=None) -> int:
    from trompa_mer.committee import Committee
    from trompa_mer.users import UserStore

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--committee", default=str(ROOT / "models" / "pretrained-features"))
    parser.add_argument("--dir", default="/tmp/bench_storage")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    base = Path(args.dir)
    shutil.rmtree(base, ignore_errors=True)
    source = Path(args.committee).resolve()
    store = UserStore(base / "users")
    reference = Committee.load(source)  # imports warm
    print(f"committee {source}: {mb(disk_use(source))} on disk, {len(reference.members)} members")

    times = []
    for i in range(args.users):
        started = time.perf_counter()
        store.create(f"u{i:05d}", source, "mc")
        times.append(time.perf_counter() - started)
    print(f"create_user (UserStore.create, in-process): first {times[0]:.3f} s (fills the store), "
          f"then median {statistics.median(times[1:] or times):.3f} s (max {max(times[1:] or times):.3f})")
    print(f"new user folder: {mb(disk_use(store.user_dir('u00000')))}; shared store "
          f"{mb(disk_use(base / 'users' / '.shared'))} once for all {args.users} users")

    rng = np.random.default_rng(0)
    n_features = len(reference.feature_names)
    for user, update in (("u00000", "cumulative"), ("u00001", "batch")):
        state = store.read_state(user)
        save_times = []
        for r in range(args.rounds):
            X = (rng.normal(size=(600, n_features)) * reference.scaler.scale_ + reference.scaler.mean_)
            committee = store.load_committee(user, state, base=update == "cumulative")
            committee.update(X.astype(np.float32), np.arange(10) % 4, song_of_window=np.repeat(np.arange(10), 60))
            started = time.perf_counter()
            fields = store.save_committee(user, committee, state["iteration"] + 1)
            save_times.append(time.perf_counter() - started)
            state = dict(state, iteration=state["iteration"] + 1, **fields)
            store.write_state(user, state)
            store.tidy(user, state)
        print(f"after {args.rounds} {update} rounds: user folder {mb(disk_use(store.user_dir(user)))}, "
              f"save of a round median {statistics.median(save_times):.3f} s")
        if update == "cumulative":
            full = base / "full_copy"
            whole = median_time(lambda: committee.save(full), 5)
            print(f"  save of the same round as a full copy: median {whole[0]:.3f} s")
            ours = median_time(lambda: store.load_committee(user, state), 7)
            before = median_time(lambda: Committee.load(full), 7)
            print(f"  load of the retrained committee: shared layout {ours[0]:.3f} s "
                  f"({ours[1]:.3f}-{ours[2]:.3f}), full copy {before[0]:.3f} s ({before[1]:.3f}-{before[2]:.3f})")
            fresh = median_time(lambda: store.load_committee("u00002", store.read_state("u00002")), 7)
            direct = median_time(lambda: Committee.load(source), 7)
            print(f"  load of a new user's committee: shared layout {fresh[0]:.3f} s, "
                  f"the committee folder itself {direct[0]:.3f} s")
    print(f"shared store after all rounds: {mb(disk_use(base / 'users' / '.shared'))} "
          f"(unchanged: retrains never add to it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
