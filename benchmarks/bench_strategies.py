#!/usr/bin/env python3
"""Cost of one ranking per query strategy, side by side with consensus entropy (issue 21).

  python benchmarks/bench_strategies.py [--songs 10000] [--members 15] [--columns 260]
                                        [--labelled 60] [-q 10] [--runs 5]

On random committee probabilities (members x songs x 4) and random song features (songs x
columns, the mean of a song's 260 IS13 window columns in the live loop), times each strategy's
scores (or, for ranked batch, its chosen batch of q among songs with `--labelled` already
answered) and prints the median of `--runs` calls in milliseconds and its ratio to consensus
entropy's. What is timed is the strategy alone: the committee's probabilities are an input
(the loop reads them from its cache), as is the rest of the ranking (select_queries), which
every strategy shares.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_common import bench_parser, median_time  # noqa: E402


def main(argv=None):
    p = bench_parser(__doc__)
    p.add_argument("--songs", type=int, default=10_000)
    p.add_argument("--members", type=int, default=15)
    p.add_argument("--columns", type=int, default=260)
    p.add_argument("--labelled", type=int, default=60, help="songs already answered (ranked batch)")
    p.add_argument("-q", type=int, default=10, help="songs per round (ranked batch)")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    if min(args.songs, args.members, args.columns, args.q, args.runs) < 1 or args.labelled < 0:
        p.error("--songs, --members, --columns, -q and --runs: expected positive numbers, --labelled >= 0")
    from trompa_mer import strategies as st
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(4, 0.7), size=(args.members, args.songs))
    features = rng.normal(size=(args.songs, args.columns))
    labelled = rng.normal(size=(args.labelled, args.columns))
    av = rng.normal(size=(max(2, args.members // 3), args.songs, 2))
    uncertainty = st.consensus_entropy(proba) / np.log(4)

    calls = {name: (lambda name=name: st.scores_for(name, proba)) for name, s in st.STRATEGIES.items()
             if s.score is not None}
    calls["max-std"] = lambda: st.max_std(av)
    calls["ranked-batch"] = lambda: st.ranked_batch(uncertainty, features, labelled, args.q)
    calls["ranked-batch (cosine)"] = lambda: st.ranked_batch(uncertainty, features, labelled, args.q, "cosine")
    calls["margin+density"] = lambda: st.scores_for("margin+density", proba, features)
    calls["margin+density-cosine"] = lambda: st.scores_for("margin+density-cosine", proba, features)
    print(f"{args.songs} songs, {args.members} members, {args.columns} feature columns, one thread, "
          f"median of {args.runs} runs")
    print(f"{'strategy':<24} {'ms / ranking':>13} {'x consensus entropy':>20}")
    # consensus entropy is timed first and its median is the unit of the second column
    with threadpool_limits(limits=1):  # the loop's scoring runs beside other users' requests
        base = median_time(calls["consensus-entropy"], args.runs)
        for name, call in calls.items():
            seconds = base if name == "consensus-entropy" else median_time(call, args.runs)
            extra = f"  (q={args.q}, {args.labelled} labelled)" if name.startswith("ranked-batch") else ""
            extra += f"  ({args.members // 3} regressors x 2)" if name == "max-std" else ""
            print(f"{name:<24} {seconds * 1000:>13.2f} {seconds / base:>20.2f}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
