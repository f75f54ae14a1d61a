#!/usr/bin/env python3
"""Every loop step as a whole process on a synthetic pool of 10,000 to 1,000,000 songs.

  python benchmarks/bench_scale.py --songs 100000 [--windows 60] [--dir /tmp/bench_scale]
                                   [--runs 3] [--code DIR] [--candidates N] [--label NAME]

The pool is written straight into the consolidated store (`<feats>/.pool_cache`, the layout
trompa_mer.pool writes: X, offsets, frame_times, song_ids as .npy with their checksums in
meta.json) beside one empty placeholder CSV per song, whose names, sizes and mtimes are the
listing the store is keyed on: writing and parsing 100,000 real feature CSVs (15 GB of text)
would take hours and is bench_pool.py's subject, not the loop's. Windows are the shipped
committee's training statistics plus Gaussian noise, so the committee sees realistic values.

Times, each step `--runs` times as a fresh process (median, min, max, and the median CPU time
user + system), with the peak resident memory of that process (GNU time's %M):
  help           get_hard_tracks.py --help (interpreter + what the script imports)
  create_user    a new mc user of the shipped feature-only committee (models/pretrained-features:
                 the synthetic pool has no audio for the default committee's musicnn members)
  hard_new       get_hard_tracks.py -q 10 for that new user
  retrain        retrain_model.py on 10 answers (cumulative)
  hard_retrained get_hard_tracks.py -q 10 right after that retrain (a committee never scored)
  predict        predict_emotion.py -u USER on one song's feature CSV
`--code DIR` runs the scripts of another checkout (the code before a change) on the same
fixture; `--candidates N` is passed to get_hard_tracks.py (omit it for the code before).
The user folder is restored between runs, and each run answers other songs, so every
retrained committee is new. Results are appended as JSON lines to `<dir>/results.jsonl`;
`bench_scale.py --report [DIR]` prints them as one Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

USER = "scale"
Q = 10
STEPS = ("help", "create_user", "hard_new", "retrain", "hard_retrained", "predict")


def song_id(i: int) -> str:
    return f"s{i:07d}"


def write_synthetic_pool(feats_dir: Path, n_songs: int, n_windows: int, committee_dir: Path,
                         seed: int = 0) -> None:
    """The pool store of `n_songs` x `n_windows` windows (kept when already complete)."""
    from trompa_mer import cache_files
    from trompa_mer.committee import Committee
    from trompa_mer.features import FEATURE_NAMES
    from trompa_mer.pool import CACHE_ARRAYS, CACHE_NAME, CACHE_VERSION, folder_listing

    marker = feats_dir / ".bench_complete"
    if marker.exists() and marker.read_text() == f"{n_songs}x{n_windows}":
        return
    shutil.rmtree(feats_dir, ignore_errors=True)
    feats_dir.mkdir(parents=True)
    started = time.perf_counter()
    for i in range(n_songs):
        (feats_dir / f"{song_id(i)}.csv").touch()
    scaler = Committee.load(committee_dir).scaler
    mean = np.asarray(scaler.mean_, dtype=np.float32)
    scale = np.asarray(scaler.scale_, dtype=np.float32)
    cache = Path(tempfile.mkdtemp(prefix=f"{CACHE_NAME}.tmp-", dir=feats_dir))
    n_rows = n_songs * n_windows
    X = np.lib.format.open_memmap(cache / "X.npy", mode="w+", dtype=np.float32,
                                  shape=(n_rows, len(FEATURE_NAMES)))
    rng = np.random.default_rng(seed)
    step = 1_000_000
    for lo in range(0, n_rows, step):
        hi = min(n_rows, lo + step)
        block = rng.standard_normal((hi - lo, len(FEATURE_NAMES)), dtype=np.float32)
        block *= scale
        block += mean
        X[lo:hi] = block
    X.flush()
    del X
    np.save(cache / "offsets.npy", np.arange(n_songs + 1, dtype=np.int64) * n_windows)
    np.save(cache / "frame_times.npy", np.tile(np.arange(n_windows, dtype=np.float32) * 0.5, n_songs))
    np.save(cache / "song_ids.npy", np.asarray([song_id(i) for i in range(n_songs)], dtype=str))
    files = {name: cache_files.record_of(cache / f"{name}.npy") for name in CACHE_ARRAYS}
    (cache / "meta.json").write_text(json.dumps({
        "version": CACHE_VERSION, "listing": folder_listing(feats_dir), "feature_names": FEATURE_NAMES,
        "skipped": {}, "files": files}))
    shutil.rmtree(feats_dir / CACHE_NAME, ignore_errors=True)
    cache.rename(feats_dir / CACHE_NAME)
    # one real feature CSV (for predict_emotion), outside the pool folder
    table = np.column_stack([np.arange(n_windows) * 0.5,
                             mean + scale * rng.standard_normal((n_windows, len(FEATURE_NAMES)))])
    np.savetxt(feats_dir.parent / "one_song.csv", table, fmt="%.6g", delimiter=";",
               header=";".join(["frameTime", *FEATURE_NAMES]), comments="")
    marker.write_text(f"{n_songs}x{n_windows}")
    print(f"  wrote the synthetic pool store ({time.perf_counter() - started:.0f} s)", flush=True)


def env_for(base: Path, code: Path) -> dict:
    env = dict(os.environ)
    env.update(MER_MODELS_DIR=str(base / "models"), MER_DATA_DIR=str(base / "data"),
               MER_PRETRAINED_DIR=str(ROOT / "models" / "pretrained-features"), PYTHONPATH=str(code))
    for var in ("MER_USERS_DIR", "MER_FEATS_DIR", "MER_ANNOTATIONS"):
        env.pop(var, None)
    return env


def timed(command, env, cwd) -> tuple:
    """(wall seconds, peak resident MB, CPU seconds user + system) of one process; exits on
    failure. CPU time is less inflated than wall time when other jobs share the cores."""
    command = ["/usr/bin/time", "-f", "%M %U %S", *map(str, command)]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command)} failed:\n{result.stderr}")
    peak_kb, user, system = result.stderr.strip().splitlines()[-1].split()
    return elapsed, int(peak_kb) / 1024, float(user) + float(system)


def run_steps(base: Path, code: Path, runs: int, candidates: int | None, steps, warm: bool = False) -> dict:
    from trompa_mer.users import UserStore, record_queries

    env = env_for(base, code)
    users = base / "models" / "users"
    py = sys.executable
    hard = [py, code / "get_hard_tracks.py", "-i", USER, "-q", Q]
    if candidates is not None:
        hard += ["--candidates", candidates]
    results = {step: [] for step in steps}
    pristine = base / f"pristine-{code.name}"

    def restore():
        shutil.rmtree(users / USER, ignore_errors=True)
        shutil.copytree(pristine, users / USER, symlinks=True)

    for run in range(runs):
        shutil.rmtree(users / USER, ignore_errors=True)
        created = timed([py, code / "create_user.py", "-i", USER, "-m", "mc"], env, code)
        if "create_user" in steps:
            results["create_user"].append(created)
        if run == 0:
            shutil.rmtree(pristine, ignore_errors=True)
            shutil.copytree(users / USER, pristine, symlinks=True)
            if warm:  # the default committee's pool scores cached, as after a platform's first user
                timed(hard, env, code)
        if "help" in steps:
            results["help"].append(timed([py, code / "get_hard_tracks.py", "--help"], env, code))
        if "hard_new" in steps:
            restore()
            results["hard_new"].append(timed(hard, env, code))
        restore()
        songs = [song_id(i) for i in range(run * 40 + 1, run * 40 + 41, 4)][:Q]
        answers = base / "answers.json"
        answers.write_text(json.dumps({s: f"Q{int(s[1:]) % 4 + 1}" for s in songs}))
        store = UserStore(users)
        store.write_state(USER, record_queries(store.read_state(USER), songs))
        retrained = timed([py, code / "retrain_model.py", "-i", USER, "-a", answers], env, code)
        if "retrain" in steps:
            results["retrain"].append(retrained)
        if "hard_retrained" in steps:
            results["hard_retrained"].append(timed(hard, env, code))
        if "predict" in steps:
            results["predict"].append(timed([py, code / "predict_emotion.py", "-i", base / "data" / "one_song.csv",
                                             "-o", base / "predict.json", "-u", USER], env, code))
        print(f"  run {run + 1}: " + ", ".join(f"{s} {results[s][-1][0]:.2f} s (cpu {results[s][-1][2]:.2f} s) / "
                                               f"{results[s][-1][1]:.0f} MB"
                                               for s in steps if results[s]), flush=True)
    return results


def report(results_path: Path) -> str:
    """A Markdown table of every configuration in results.jsonl: per pool size and step, each
    label's median wall time, median CPU time and peak memory."""
    records = [json.loads(line) for line in results_path.read_text().splitlines() if line.strip()]
    labels = list(dict.fromkeys(r["label"] or "(no label)" for r in records))
    lines = ["| songs | step | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for songs in sorted({r["songs"] for r in records}):
        for step in STEPS:
            cells = []
            for label in labels:
                found = [r["steps"][step] for r in records if r["songs"] == songs
                         and (r["label"] or "(no label)") == label and step in r["steps"]]
                if found:
                    m = found[-1]
                    cpu = f", CPU {m['cpu_median_s']:.2f} s" if "cpu_median_s" in m else ""
                    cells.append(f"{m['median_s']:.2f} s{cpu}, {m['peak_mb']:.0f} MB")
                else:
                    cells.append("")
            if any(cells):
                lines.append(f"| {songs:,} | {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--report"]:  # print the table of a work folder's results.jsonl
        folder = Path(argv[1] if len(argv) > 1 else "/tmp/bench_scale")
        print(report(folder / "results.jsonl"))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default="/tmp/bench_scale", help="work folder (the pool is kept between runs)")
    parser.add_argument("--songs", type=int, default=10000, help="pool songs (default 10000)")
    parser.add_argument("--windows", type=int, default=60, help="windows per song (default 60)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each step (default 3)")
    parser.add_argument("--code", default=str(ROOT), help="the checkout whose scripts are timed (default this one)")
    parser.add_argument("--candidates", type=int, help="get_hard_tracks.py --candidates (default: not passed)")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    parser.add_argument("--label", default="", help="a name for this configuration in results.jsonl")
    parser.add_argument("--warm", action="store_true",
                        help="before timing, rank once for a new user so the default committee's pool "
                             "scores are cached (as on a platform after its first user)")
    args = parser.parse_args(argv)
    steps = tuple(args.steps.split(","))
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"--steps: unknown step(s) {', '.join(unknown)}; expected some of {','.join(STEPS)}")
    base = Path(args.dir).resolve() / f"{args.songs}x{args.windows}"
    code = Path(args.code).resolve()
    print(f"bench_scale: {args.songs} songs x {args.windows} windows in {base}, code {code}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    write_synthetic_pool(base / "data" / "feats", args.songs, args.windows, ROOT / "models" / "pretrained-features")
    results = run_steps(base, code, args.runs, args.candidates, steps, args.warm)
    load = os.getloadavg()[0]
    print(f"\nresults ({args.songs} songs x {args.windows} windows, code {code}, candidates "
          f"{args.candidates}; load average now {load:.2f}):")
    record = {"label": args.label, "songs": args.songs, "windows": args.windows, "code": str(code),
              "candidates": args.candidates, "warm": args.warm, "load_after": load, "when": time.strftime("%Y-%m-%d %H:%M:%S"),
              "steps": {}}
    for step in steps:
        times = [t for t, _, _ in results[step]]
        peaks = [m for _, m, _ in results[step]]
        cpu = [c for _, _, c in results[step]]
        record["steps"][step] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                                 "cpu_median_s": statistics.median(cpu), "peak_mb": max(peaks), "runs": len(times)}
        print(f"  {step:15s} median {statistics.median(times):6.2f} s (min {min(times):.2f}, max {max(times):.2f}), "
              f"CPU {statistics.median(cpu):6.2f} s, peak memory {max(peaks):7.0f} MB")
    with open(Path(args.dir).resolve() / "results.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
