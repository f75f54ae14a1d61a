#!/usr/bin/env python3
"""Where a clip's feature extraction spends its time, and what our openSMILE configuration saves.

Prints, for one clip (an Emotify mp3 from ../shared/data when present, else a generated 30 s
signal), medians over --repeats runs on one core:
  - cProfile of extract_features: total time and the shares of decoding, openSMILE (its C
    code computing the IS13 descriptors, through the Python wrapper) and the aggregation;
  - openSMILE alone with our one-pass LLD + delta configuration (features._smile), with the
    stock IS13_ComParE configuration (LLD level: it also computes the utterance functionals),
    and with the wrapper's two standard levels (lld, then lld_de) run one after the other.

  python benchmarks/bench_opensmile.py [--clip N] [--repeats 3]
"""
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import settings  # noqa: E402
from bench_common import GENERATED, bench_parser, emotify_files, generated_clip, median_time  # noqa: E402
from trompa_mer import features as F  # noqa: E402


def clip(index: int, tmp: str) -> tuple[str, Path]:
    files = emotify_files(settings.SHARED_DATA_DIR)
    if files:
        return f"Emotify {files[index].name}", files[index]
    return GENERATED, generated_clip(Path(tmp) / "generated.wav", 220, np.random.default_rng(0))


def parse_args(argv=None):
    parser = bench_parser(__doc__)
    parser.add_argument("--clip", type=int, default=0, help="index of the Emotify clip (default 0)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measure, median printed (default 3)")
    return parser.parse_args(argv)


def main():
    args = parse_args()
    import opensmile

    with tempfile.TemporaryDirectory() as tmp:
        label, path = clip(args.clip, tmp)
        F.extract_features(path)  # warm-up: configuration written, library loaded
        signal, rate = F.load_audio(path)
        print(f"clip: {label}, {len(signal) / rate:.1f} s at {rate} Hz; median of {args.repeats} runs, one core")

        parts = {"load_audio": "decoding (load_audio)", "extract_llds": "openSMILE (extract_llds)",
                 "aggregate_windows": "window aggregation (aggregate_windows)"}
        runs = []
        for _ in range(args.repeats):
            profile = cProfile.Profile()
            profile.enable()
            F.extract_features(path)
            profile.disable()
            stats = pstats.Stats(profile)
            cumulative = {name: ct for (file, _, name), (_, _, _, ct, _) in stats.stats.items()
                          if name in parts and file.endswith("features.py")}
            runs.append((stats.total_tt, cumulative))
        total = statistics.median(r[0] for r in runs)
        print(f"{'extract_features (cProfile total)':<58}{total:>8.2f} s")
        for name, label in parts.items():
            spent = statistics.median(r[1].get(name, 0.0) for r in runs)
            print(f"{'  ' + label:<58}{spent:>8.2f} s ({100 * spent / total:.0f} %)")

        ours = F._smile()
        stock_lld = opensmile.Smile(feature_set=opensmile.FeatureSet.IS13, feature_level="lld")
        stock_de = opensmile.Smile(feature_set=opensmile.FeatureSet.IS13, feature_level="lld_de")
        clipped = np.clip(signal, -1.0, 32767 / 32768)
        measures = [
            ("openSMILE, our one-pass LLD + delta configuration", lambda: ours.process_signal(clipped, rate)),
            ("openSMILE, stock IS13_ComParE configuration (LLD level)", lambda: stock_lld.process_signal(clipped, rate)),
            ("openSMILE, the wrapper's lld then lld_de levels",
             lambda: (stock_lld.process_signal(clipped, rate), stock_de.process_signal(clipped, rate))),
        ]
        for name, fn in measures:
            fn()  # warm-up of that configuration
            print(f"{name:<58}{median_time(fn, args.repeats):>8.2f} s")


if __name__ == "__main__":
    main()
