#!/usr/bin/env python3
"""Cost of one ranking per query strategy, side by side with consensus entropy (issue 21).

  python benchmarks/bench_strategies.py [--songs 10000] [--members 15] [--columns 260]
                                        [--labelled 60] [-q 10] [--runs 5]

On random committee probabilities (members x songs x 4) and random song features (songs x
columns, the mean of a song's 260 IS13 window columns in the live loop), times each strategy's
scores (or, for ranked batch, its chosen batch of q among songs with `--labelled` already
answered) and prints the median of `--runs` calls in milliseconds and its ratio to consensus
entropy's (each timing repeats a fast strategy until it lasts 50 ms), and modAL's time for the same scores where modAL has them. What is timed is the strategy alone: the committee's probabilities are an input
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
    peers = _peer_calls(proba, features, labelled, uncertainty, args.q)
    print(f"{args.songs} songs, {args.members} members, {args.columns} feature columns, one thread; "
          f"{args.runs} rounds, each timing consensus entropy then the strategy (the ratio is the median "
          f"of the rounds' ratios, so a load that changes between rounds cancels out)")
    print(f"{'strategy':<24} {'ms / ranking':>13} {'x consensus entropy':>20} {'peer ms':>9}")
    with threadpool_limits(limits=1):  # the loop's scoring runs beside other users' requests
        base_loops = _loops_for(calls["consensus-entropy"])
        for name, call in calls.items():
            loops = _loops_for(call)
            ours, ratios = [], []
            for _ in range(args.runs):
                base = _per_call(calls["consensus-entropy"], base_loops)
                ours.append(_per_call(call, loops))
                ratios.append(ours[-1] / base)
            peer = f"{median_time(peers[name], min(args.runs, 3)) * 1000:>9.2f}" if name in peers else f"{'':>9}"
            extra = f"  (q={args.q}, {args.labelled} labelled)" if name.startswith("ranked-batch") else ""
            extra += f"  ({len(av)} regressors x 2)" if name == "max-std" else ""
            print(f"{name:<24} {np.median(ours) * 1000:>13.2f} {np.median(ratios):>20.2f} {peer}{extra}")
    return 0


def _loops_for(fn, at_least: float = 0.05) -> int:
    """How many calls of fn make one timing of at least `at_least` seconds (a 1 ms function
    timed once on a busy machine is mostly the scheduler's noise)."""
    once = median_time(fn, 1)
    return max(1, int(np.ceil(at_least / max(once, 1e-6))))


def _per_call(fn, loops: int) -> float:
    return median_time(lambda: [fn() for _ in range(loops)], 1) / loops


def _peer_calls(proba, features, labelled, uncertainty, q) -> dict:
    """modAL's functions on the same inputs, where modAL is installed (requirements-dev.txt)."""
    try:
        from modAL import batch, disagreement, uncertainty as modal_uncertainty
    except ImportError:
        return {}

    class StandIn:  # what modAL's committee measures and ranked_batch read
        classes_ = np.arange(4)
        on_transformed = False
        X_training = labelled

        def __len__(self):
            return proba.shape[0]

        def __iter__(self):
            return iter(range(proba.shape[0]))

        def vote(self, X):
            return proba.argmax(axis=2).T

        def vote_proba(self, X):
            return proba.transpose(1, 0, 2)

        def predict_proba(self, X):
            return proba.mean(axis=0)

    committee, X = StandIn(), np.zeros((proba.shape[1], 1))
    return {
        "consensus-entropy": lambda: disagreement.consensus_entropy(committee, X),
        "vote-entropy": lambda: disagreement.vote_entropy(committee, X),
        "kl-max": lambda: disagreement.KL_max_disagreement(committee, X),
        "margin": lambda: modal_uncertainty.classifier_margin(committee, X),
        "least-confident": lambda: modal_uncertainty.classifier_uncertainty(committee, X),
        "ranked-batch": lambda: batch.ranked_batch(committee, features, uncertainty, q, "euclidean", None),
    }


if __name__ == "__main__":
    sys.exit(main())
