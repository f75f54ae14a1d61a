#!/usr/bin/env python3
"""How much could one listener's answers add to the other listeners' majority? (TROMPA-MER)

Per listener, every annotated song is held out in turn and predicted from the other listeners
only (the listener's own labels never enter the song's vote), with the listener's *other*
songs as their answers (leave-one-out: 19-171 answers, more than the loop's 60):
  majority   the other listeners' most frequent quadrant (ties: the lower quadrant)
  remap      the majority mapped through the listener's own majority -> answer table
             (does this listener systematically say Q3 where the crowd says Q4?)
  similar    each other listener's vote weighted by their agreement with the listener's
             answers, ((agree + 2 * 0.4) / (shared + 2)) ** 3, as trompa_mer.crowd.ListenerVotes
Accuracy (not F1: no model here), mean over listeners, paired one-sided t-test against majority.

  python experiments/crowd_headroom.py            # both sets, a few seconds

Reads trompa/annotations.json and trompa/track_features.csv under ../shared/data (MER_SHARED_DATA).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

import settings  # noqa: E402
from trompa_mer import simulate as sim  # noqa: E402
from trompa_mer.cli import main_wrapper  # noqa: E402
from trompa_mer.crowd import agreement_weights  # noqa: E402


def listener_accuracies(labels: np.ndarray, i: int) -> dict:
    """labels: (listeners, songs) quadrant or -1. Accuracies for listener i."""
    mine = np.flatnonzero(labels[i] >= 0)
    others = np.delete(np.arange(len(labels)), i)
    hits = {"majority": [], "remap": [], "similar": []}
    majority = {}
    for s in mine:
        votes = labels[others, s]
        votes = votes[votes >= 0]
        if len(votes):
            majority[s] = int(np.bincount(votes, minlength=4).argmax())
    for s in majority:
        truth = labels[i, s]
        answers = [t for t in majority if t != s]
        hits["majority"].append(majority[s] == truth)
        row = np.bincount([labels[i, t] for t in answers if majority[t] == majority[s]], minlength=4)
        remapped = majority[s] if row.max() == row[majority[s]] else int(row.argmax())
        hits["remap"].append(remapped == truth)
        given = labels[others][:, answers]
        agree = (given == labels[i, answers]).sum(axis=1)
        shared = (given >= 0).sum(axis=1)
        weight = agreement_weights(agree, shared)
        voted = labels[others, s] >= 0
        counts = np.bincount(labels[others, s][voted], weights=weight[voted], minlength=4)
        hits["similar"].append(int(counts.argmax()) == truth)
    return {k: float(np.mean(v)) for k, v in hits.items()}


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    shared = settings.SHARED_DATA_DIR
    annotations = sim.prepare_annotations(sim.load_annotation_table(str(shared / "trompa/annotations.json")))
    features = sim.load_features(str(shared / "trompa/track_features.csv"))
    annotations = annotations[annotations["song"].map(features.has)]
    table = annotations.pivot_table(index="user", columns="song", values="quadrant", aggfunc="first")
    labels = np.nan_to_num(table.to_numpy(), nan=-1).astype(np.int64)
    users = list(table.index)
    for name, low, high in (("trompa-dev (20-79 songs)", 20, 79), ("trompa-benchmark (>= 80)", 80, None)):
        chosen = sim.eligible_users(annotations, features, low, high)
        frame = pd.DataFrame({u: listener_accuracies(labels, users.index(u)) for u in chosen}).T
        print(f"{name}: {len(frame)} listeners")
        for column in frame.columns:
            diff = frame[column] - frame["majority"]
            p = stats.ttest_1samp(diff, 0, alternative="greater").pvalue if column != "majority" else float("nan")
            print(f"  {column:9s} accuracy {frame[column].mean():.3f}  vs majority {diff.mean():+.3f}  "
                  f"listeners above {int((diff > 0).sum())}/{len(diff)}  p {p:.3g}")
    return 0


if __name__ == "__main__":
    main_wrapper(main)  # a missing corpus is one error: line, not a traceback
