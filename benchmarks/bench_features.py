#!/usr/bin/env python3
"""Feature extraction speed, one core.

Prints, for real Emotify clips (../shared/data/emotify/audio) when present, else for generated
30 s signals:
  - end-to-end extraction speed (decode + openSMILE + aggregation) as a multiple of real time,
    median over clips;
  - aggregation time of the vectorized code vs the reference per-cell pandas loop on the same
    frames, median over clips, as a ratio.

  python benchmarks/bench_features.py [--clips 12] [--loop-clips 3]
"""
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

import settings  # noqa: E402
from bench_common import GENERATED, bench_parser, emotify_files, generated_clip  # noqa: E402
from trompa_mer import features as F  # noqa: E402


def clips(n, tmp):
    files = emotify_files(settings.SHARED_DATA_DIR)
    if files:
        step = max(1, len(files) // n)
        return "Emotify mp3 (30 s, 22.05 kHz mono)", files[::step][:n]
    rng = np.random.default_rng(0)
    return GENERATED, [generated_clip(Path(tmp) / f"gen{i}.wav", 110 + 40 * i, rng) for i in range(n)]


def main():
    parser = bench_parser(__doc__)
    parser.add_argument("--clips", type=int, default=12, help="clips timed end to end (default 12)")
    parser.add_argument("--loop-clips", type=int, default=3, help="clips for the slow pandas-loop baseline (default 3)")
    args = parser.parse_args()
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        label, files = clips(args.clips, tmp)
        F.extract_features(files[0])  # warm-up: openSMILE config and library load
        speeds, vec_times, loop_times = [], [], []
        for i, path in enumerate(files):
            duration = sf.info(str(path)).duration
            t0 = time.perf_counter()
            F.extract_features(path)
            speeds.append(duration / (time.perf_counter() - t0))
            starts, llds = F.extract_llds(*F.load_audio(path))
            runs = []
            for _ in range(5):
                t0 = time.perf_counter()
                F.aggregate_windows(llds)
                runs.append(time.perf_counter() - t0)
            vec_times.append(statistics.median(runs))
            if i < args.loop_clips:
                t0 = time.perf_counter()
                F.aggregate_windows_loop(llds, starts)
                loop_times.append(time.perf_counter() - t0)
    print(f"clips: {len(files)} {label}")
    print(f"{'measure':<44}{'median':>12}{'min':>10}{'max':>10}")
    print(f"{'end-to-end speed (x real time, one core)':<44}{statistics.median(speeds):>12.1f}{min(speeds):>10.1f}{max(speeds):>10.1f}")
    print(f"{'aggregation, vectorized (ms per clip)':<44}{1e3 * statistics.median(vec_times):>12.2f}{1e3 * min(vec_times):>10.2f}{1e3 * max(vec_times):>10.2f}")
    print(f"{'aggregation, pandas loop baseline (ms)':<44}{1e3 * statistics.median(loop_times):>12.0f}{1e3 * min(loop_times):>10.0f}{1e3 * max(loop_times):>10.0f}")
    print(f"{'aggregation speed-up (loop / vectorized)':<44}{statistics.median(loop_times) / statistics.median(vec_times):>12.0f}")


if __name__ == "__main__":
    main()
