#!/usr/bin/env python3
"""Where get_hard_tracks spends its scoring time: per 60,000 windows, in-process, one thread.

One member of each algorithm with settings' hyperparameters (xgb: XGB_ROUNDS rounds of the
configured depth), trained on 20,000 random windows the way benchmarks/bench_loop.py trains
its 15-member committee; then, on 60,000 random windows (one chunk of the pool scoring),
median of --repeats runs:
  - standardizing with the committee's scaler (Committee.transform);
  - each member's own predict_proba on the standardized float32 rows;
  - the committee's window_proba for one member of each algorithm (linear members together in
    one float64 product, trees through predict_margin), the path get_hard_tracks takes.

  python benchmarks/bench_members.py [--windows 60000] [--repeats 3]
"""
import os
import sys
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import settings  # noqa: E402
from bench_common import bench_parser, median_time  # noqa: E402


def main():
    parser = bench_parser(__doc__)
    parser.add_argument("--windows", type=int, default=60_000, help="windows scored (default 60,000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measure, median printed (default 3)")
    args = parser.parse_args()
    from sklearn.preprocessing import StandardScaler

    from trompa_mer.committee import Committee
    from trompa_mer.features import FEATURE_NAMES
    from trompa_mer.members import make_member

    rng = np.random.default_rng(1)
    X_train = rng.normal(size=(20_000, len(FEATURE_NAMES))).astype(np.float32)
    y = rng.integers(0, 4, len(X_train))
    X_train[:, :4] += y[:, None]
    scaler = StandardScaler().fit(X_train)
    Z_train = ((X_train - scaler.mean_) / scaler.scale_).astype(np.float32)
    members = {
        "gnb": make_member("gnb"),
        "sgd": make_member("sgd", params=dict(settings.SGD_PARAMS), seed=settings.SEED),
        "xgb": make_member("xgb", params={**settings.XGB_PARAMS, "seed": settings.SEED},
                           rounds=settings.XGB_ROUNDS, update_rounds=settings.XGB_UPDATE_ROUNDS),
    }
    for member in members.values():
        member.fit(Z_train, y)
    committee = Committee([(f"{a}_0", m) for a, m in members.items()], scaler, FEATURE_NAMES)
    X = rng.normal(size=(args.windows, len(FEATURE_NAMES))).astype(np.float32)
    Z = committee.transform(X)
    print(f"{args.windows} windows x {len(FEATURE_NAMES)} features, one thread, median of {args.repeats} runs "
          f"(xgb: {settings.XGB_ROUNDS} rounds, max_depth {settings.XGB_PARAMS.get('max_depth')})")
    rows = [("standardizing (Committee.transform)", lambda: committee.transform(X))]
    rows += [(f"one {a} member, predict_proba", (lambda m=m: m.predict_proba(Z))) for a, m in members.items()]
    rows.append(("committee.window_proba, one member of each", lambda: committee.window_proba(X)))
    for name, fn in rows:
        fn()  # warm-up
        print(f"{name:<48}{median_time(fn, args.repeats):>8.3f} s")


if __name__ == "__main__":
    main()
