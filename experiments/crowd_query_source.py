#!/usr/bin/env python3
"""Which probabilities should rank mc queries for a listener who has crowd-aware members?

Offline, on the TROMPA-MER benchmark (the simulator's trompa-benchmark data, mc mode,
cumulative update, q=10 x 6 and q=4 x 15, 3 repeats, the same users, splits and pre-trained
members in every arm), the queries follow:
  A_audio  the audio committee's mean (what simulate_personalization.py --crowd-member does)
  B_crowd  the crowd members' mean (what get_hard_tracks.py does for a --crowd-member user)
  C_equal  both sources with equal weight
and the crowd members' weighted F1 on the held-out songs is compared, paired over listeners.
Results: docs/loop.md, "The crowd-aware member in the loop".

  python experiments/crowd_query_source.py -o results/crowd-query-source   # ~5 min on 1 core
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

import settings  # noqa: E402
from trompa_mer import simulate as sim  # noqa: E402


def run(out_dir: Path) -> pd.DataFrame:
    shared = settings.SHARED_DATA_DIR
    ann = sim.prepare_annotations(sim.load_annotation_table(str(shared / "trompa/annotations.json")))
    feats = sim.load_features(str(shared / "trompa/track_features.csv"))
    cfg = sim.ExperimentConfig(
        min_annotations=80, modes=["mc"], queries=[10, 4], iterations=[6, 15], updates=["cumulative"],
        repeats=3, seed=settings.SEED, crowd_member=True, n_splits=settings.CV_SPLITS,
        pretrain_test_size=settings.TEST_SIZE,
        member_params={"sgd": {"params": dict(settings.SGD_PARAMS), "seed": settings.SEED},
                       "xgb": {"params": dict(settings.XGB_PARAMS), "rounds": settings.XGB_ROUNDS,
                               "update_rounds": settings.XGB_UPDATE_ROUNDS}})
    users = [u for u in sim.eligible_users(ann, feats, cfg.min_annotations)
             if len(sim.pretraining_labels(ann, u, feats)) >= sim.MIN_PRETRAIN_SONGS]
    ctx = sim.Context(cfg, ann, feats.subset(sorted(set(ann["song"]))), None, key="crowd-query-source")
    frames, start = [], time.time()
    for n, user in enumerate(users, 1):
        pretrained = sim.pretrain_for_user(ctx, user)
        audio = sim.audio_members(pretrained)
        crowd = [k for k in range(len(pretrained.members)) if k not in audio]
        repeat = max(1, len(audio) // max(1, len(crowd)))  # C: crowd rows repeated to equal weight
        for arm, index in {"A_audio": audio, "B_crowd": crowd, "C_equal": audio + crowd * repeat}.items():
            # the arm decides which members' mean ranks the mc queries; the reported scores
            # are the usual ones
            frame = sim.simulate_user_mode(ctx, user, "mc", pretrained, query_members=index)
            frame["arm"] = arm
            frames.append(frame)
        print(f"{n}/{len(users)} user {user}: {time.time() - start:.0f} s", flush=True)
    table = pd.concat(frames, ignore_index=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "results.csv", index=False)
    return table


def report(table: pd.DataFrame) -> None:
    table = table[table["algorithm"] == "crowd"]
    print(f"{table['user'].nunique()} users; the crowd members' weighted F1 (mean over users)")
    for config, g in table.groupby("config"):
        end = g[g["iteration"] == g["iteration"].max()].groupby(["arm", "user"])["f1_weighted"].mean().unstack(0)
        curve = g.groupby(["arm", "user"])["f1_weighted"].mean().unstack(0)
        print(f"{config}: end {end.mean().round(3).to_dict()}; mean over iterations {curve.mean().round(3).to_dict()}")
        for a, b in [("B_crowd", "A_audio"), ("C_equal", "A_audio"), ("B_crowd", "C_equal")]:
            d, dc = end[a] - end[b], curve[a] - curve[b]
            wil = stats.wilcoxon(end[a], end[b]).pvalue if (d != 0).any() else 1.0
            print(f"  {a} - {b}: end {d.mean():+.4f} (t p={stats.ttest_rel(end[a], end[b]).pvalue:.2g}, "
                  f"Wilcoxon p={wil:.2g}, {int((d > 0).sum())}/{len(d)} users higher); over iterations "
                  f"{dc.mean():+.4f} (t p={stats.ttest_rel(curve[a], curve[b]).pvalue:.2g}); two-sided")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", default="results/crowd-query-source",
                        help="folder for results.csv (default results/crowd-query-source)")
    parser.add_argument("--report-only", action="store_true",
                        help="only print the comparison from an earlier run's results.csv")
    args = parser.parse_args()
    out = Path(args.output)
    table = pd.read_csv(out / "results.csv") if args.report_only else run(out)
    report(table)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
