#!/usr/bin/env python3
"""Which members make the best committee on 4Q? Every member algorithm is cross-validated once
on the artist-grouped protocol; then every committee composition (a subset of the algorithms)
is scored on the same splits, exactly as deam_classifier.py scores its committee: the mean of
the members' tempered song probabilities, each algorithm's temperature chosen by held-out
song-level log loss.

  python experiments/fourq_members.py -m gnb,sgd,xgb,song-sgd,song-gnb,song-xgb --repeats 3

Prints each algorithm's and each composition's song macro F1 (mean ± sd over splits), sorted,
and how far each algorithm's probabilities are from uniform on held-out songs (mean and 95th
percentile of max |p - 1/4| after tempering: a member within .02 of uniform adds nothing to the
consensus entropy). docs/pretraining.md ("4Q") has the measured table.
"""
import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import settings  # noqa: E402
from trompa_mer.cli import main_wrapper, positive_int  # noqa: E402


def composition_scores(report, algorithms):
    from trompa_mer.pretrain import _best_temperature, scores, temper

    held = report["held_out"]
    n_splits = len(held[algorithms[0]])
    temps = {a: _best_temperature(np.concatenate([p for _, _, p in held[a]]),
                                  np.concatenate([t for _, t, _ in held[a]])) for a in algorithms}
    rows = []
    for k in range(n_splits):
        truth = held[algorithms[0]][k][1]
        mean = np.mean([temper(held[a][k][2], temps[a]) for a in algorithms], axis=0)
        rows.append(scores(truth, mean.argmax(axis=1))["f1_macro"])
    return float(np.mean(rows)), float(np.std(rows)), temps


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", default="gnb,sgd,xgb,song-sgd,song-gnb,song-xgb",
                   help="member algorithms to compare (committee kinds only) (default %(default)s)")
    p.add_argument("-cv", type=positive_int, default=5, help="folds per repeat (default %(default)s)")
    p.add_argument("--repeats", type=positive_int, default=3, help="repeats of the folds (default %(default)s)")
    p.add_argument("--window-stride", type=positive_int, default=2,
                   help="window members train on 1 in N windows (default %(default)s)")
    p.add_argument("--fourq", default=str(settings.SHARED_DATA_DIR / "4q"), help="4Q folder (default %(default)s)")
    p.add_argument("--jobs", type=positive_int, default=settings.JOBS, help="extraction processes")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args()

    from trompa_mer import pretrain
    from trompa_mer.datasets.fourq import load_4q
    from trompa_mer.members import MEMBER_TYPES

    algorithms = pretrain.parse_algorithms(args.m)
    unknown = [a for a in algorithms if a not in MEMBER_TYPES and a not in pretrain.AUDIO_SONG_TYPES]
    if unknown:
        p.error(f"-m: only quadrant classifiers compose committees here, got {unknown}")
    from trompa_mer.commands import deam_classifier

    member_params = deam_classifier.member_parameters(deam_classifier.parse_args([]))
    data = load_4q(args.fourq, settings.CACHE_DIR, jobs=args.jobs, progress=not args.quiet)
    report, _ = pretrain.pretrain(data, algorithms, cv=args.cv, protocol="kfold", repeats=args.repeats,
                                  seed=settings.SEED, member_params=member_params, build_committee=False,
                                  progress=not args.quiet, window_stride=args.window_stride,
                                  keep_predictions=True)
    print(pretrain.format_report({k: v for k, v in report.items() if k not in ("held_out",)}))
    print("\ndistance from uniform on held-out songs (tempered): mean and 95th percentile of max |p - 1/4|")
    for a in algorithms:
        _, _, temps = composition_scores(report, [a])
        proba = pretrain.temper(np.concatenate([q for _, _, q in report["held_out"][a]]), temps[a])
        gap = np.abs(proba - 0.25).max(axis=1)
        print(f"  {a:10} T {temps[a]:>5g}  mean {gap.mean():.3f}  p95 {np.percentile(gap, 95):.3f}")
    results = []
    for size in range(1, len(algorithms) + 1):
        for subset in itertools.combinations(algorithms, size):
            mean, sd, _ = composition_scores(report, list(subset))
            results.append((mean, sd, subset))
    print(f"\ncommittee compositions, song macro F1 over {report['splits']} splits (best first)")
    for mean, sd, subset in sorted(results, reverse=True):
        print(f"  {mean:.3f} ± {sd:.3f}  {'+'.join(subset)}")


if __name__ == "__main__":
    main_wrapper(main)
