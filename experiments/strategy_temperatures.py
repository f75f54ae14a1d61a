#!/usr/bin/env python3
"""How member temperatures and the choice of strategy move the top of the ranking (issue 21).

  python experiments/strategy_temperatures.py [--users 5] [--top 10]

For the TROMPA-MER benchmark's most active listeners: their leave-user-out committee (gnb, sgd,
xgb on the song features, as the simulator pre-trains it, T = 1), scored on the 311 annotated
songs; then the same probabilities with the Emotify committee's temperatures (gnb 256, sgd 3,
xgb 2; p ~ p^(1/T), renormalized, as Member.predict_proba applies them). Prints, per strategy,
how many of the top songs are the same with and without the temperatures, and how many are
the same as consensus entropy's (T = 1). Reads ../shared/data (MER_SHARED_DATA).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import settings  # noqa: E402
from trompa_mer.cli import main_wrapper, positive_int  # noqa: E402

TEMPERATURES = {"gnb": 256.0, "sgd": 3.0, "xgb": 2.0}  # the Emotify committee's (docs/pretraining.md)


def tempered(proba: np.ndarray, temperatures) -> np.ndarray:
    """p^(1/T) renormalized per member (temperatures: one per member), in log space."""
    log_p = np.log(np.clip(proba, 1e-300, None)) / np.asarray(temperatures, dtype=float)[:, None, None]
    out = np.exp(log_p - log_p.max(axis=2, keepdims=True))
    return out / out.sum(axis=2, keepdims=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=positive_int, default=5, help="the most active listeners (default 5)")
    p.add_argument("--top", type=positive_int, default=10, help="top songs compared (default 10)")
    args = p.parse_args()
    from trompa_mer import strategies as st
    from trompa_mer.simulate import load_annotation_table, load_features, prepare_annotations, pretraining_labels
    from trompa_mer.simulate.protocol import _songs, pretrain_committee, standardize

    shared = Path(settings.SHARED_DATA_DIR) / "trompa"
    features = load_features(str(shared / "track_features.csv"))
    annotations = prepare_annotations(load_annotation_table(str(shared / "annotations.json")))
    songs = [s for s in sorted(set(annotations["song"])) if features.has(s)]
    ids = np.array(songs)
    X, offsets = features.gather(songs)
    names = [n for n, s in st.STRATEGIES.items() if "av" not in s.needs]
    kept = {n: [] for n in names}
    with_ce = {n: [] for n in names}
    for user in annotations["user"].value_counts().index[:args.users]:
        committee = pretrain_committee(features, pretraining_labels(annotations, user, features),
                                       ["gnb", "sgd", "xgb"], {}, seed=settings.SEED)
        scaled = standardize(committee, X)
        proba = committee.song_proba(_songs(scaled, offsets))
        song_features = np.add.reduceat(scaled.astype(float), offsets[:-1], axis=0) / np.diff(offsets)[:, None]
        warm = tempered(proba, [TEMPERATURES[a] for a in committee.algorithms()])

        def top(name, p):
            return set(st.choose(name, ids, args.top, p, features=song_features)[0])

        for name in names:
            kept[name].append(len(top(name, proba) & top(name, warm)))
            with_ce[name].append(len(top(name, proba) & top(st.DEFAULT_STRATEGY, proba)))
    print(f"top {args.top} of {len(songs)} songs, {args.users} listeners; temperatures {TEMPERATURES} vs T = 1")
    print(f"{'strategy':<20} {'same with/without T':>20}  {'same as consensus entropy':>26}")
    for name in names:
        print(f"{name:<20} {np.mean(kept[name]):>8.1f} {kept[name]!s:>11}  {np.mean(with_ce[name]):>13.1f} "
              f"{with_ce[name]!s:>12}")
    return 0


if __name__ == "__main__":
    main_wrapper(main)
