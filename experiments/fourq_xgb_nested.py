#!/usr/bin/env python3
"""The window XGBoost member's tree depth and a feature selection, chosen by nested
artist-grouped cross-validation on 4Q (issue 20, item 3).

The outer splits are the committee protocol's (trompa_mer.splits "kfold": stratified folds
grouped by artist, the seeds deam_classifier.py uses); on each outer training set an inner
artist-grouped search picks the configuration (max_depth x number of features kept) by song
macro F1, the member is refitted with it and scored on the outer held-out songs. Every
configuration is also scored fixed on the same outer splits, so the gap between the nested
score and the shipped configuration's is what tuning would buy. Trained as pre-training trains
the member: 1 in --window-stride windows of each song, balanced class weights, the shipped
XGBoost parameters otherwise; a song's probabilities are the mean of its windows'.
Feature selection: SelectKBest with the ANOVA F statistic, fitted on the training windows
only (XGBoost needs no scaling).

  python experiments/fourq_xgb_nested.py --depths 3,5,7 --features all,130 -cv 5 --repeats 1
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import settings  # noqa: E402
from trompa_mer.cli import main_wrapper, positive_int  # noqa: E402


def parse_list(text, flag, allow_all=False):
    values = []
    for part in text.split(","):
        part = part.strip()
        if allow_all and part == "all":
            values.append(None)
            continue
        try:
            value = int(part)
        except ValueError:
            value = 0
        if value < 1:
            raise SystemExit(f"error: {flag}: expected a comma list of positive whole numbers"
                             f"{' or all' if allow_all else ''}, got {text!r}")
        values.append(value)
    return values


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depths", default="3,5,7", help="XGBoost max_depth values searched (default %(default)s)")
    p.add_argument("--features", default="all,130",
                   help="features kept (SelectKBest, ANOVA F), comma list; 'all' keeps every feature "
                        "(default %(default)s)")
    p.add_argument("-cv", type=positive_int, default=5, help="outer folds per repeat (default %(default)s)")
    p.add_argument("--repeats", type=positive_int, default=1, help="outer repeats (default %(default)s)")
    p.add_argument("--inner", type=positive_int, default=3, help="inner artist-grouped folds (default %(default)s)")
    p.add_argument("--window-stride", type=positive_int, default=2,
                   help="train on 1 in N windows of each song, as deam_classifier.py (default %(default)s)")
    p.add_argument("--fourq", default=str(settings.SHARED_DATA_DIR / "4q"), help="4Q folder (default %(default)s)")
    p.add_argument("--jobs", type=positive_int, default=settings.JOBS, help="extraction processes")
    args = p.parse_args(argv)
    args.depth_list = parse_list(args.depths, "--depths")
    args.feature_list = parse_list(args.features, "--features", allow_all=True)
    if args.inner < 2:
        p.error("--inner: expected at least 2 folds")
    return args


class Windows:
    """The corpus' windows with their songs: song index per window, each song's truth and
    artist, and which windows training uses (1 in `stride` of each song)."""

    def __init__(self, data, stride):
        from trompa_mer.pretrain import song_truth

        self.X, self.y = np.asarray(data.X), np.asarray(data.y, dtype=np.int64)
        self.song_ids, self.song = np.unique(np.asarray(data.groups).astype(str), return_inverse=True)
        self.truth = song_truth(self.y, self.song, len(self.song_ids))
        self.artist = np.empty(len(self.song_ids), dtype=object)
        self.artist[self.song] = np.asarray(data.split_groups)
        order = np.argsort(self.song, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(self.song, minlength=len(self.song_ids)))])
        position = np.empty(len(self.song), dtype=np.int64)
        position[order] = np.arange(len(order)) - starts[self.song[order]]
        self.trains = position % stride == 0

    def rows(self, songs, training=False):
        mask = np.isin(self.song, songs)
        return np.flatnonzero(mask & self.trains if training else mask)

    def song_f1(self, depth, n_features, train_songs, test_songs, seed) -> float:
        """Song macro F1 on `test_songs` of one member trained on `train_songs`."""
        from sklearn.feature_selection import SelectKBest, f_classif
        from sklearn.metrics import f1_score
        from sklearn.utils.class_weight import compute_sample_weight

        from trompa_mer.members import XGBMember

        train, test = self.rows(train_songs, training=True), self.rows(test_songs)
        columns = np.arange(self.X.shape[1])
        if n_features is not None and n_features < len(columns):
            columns = SelectKBest(f_classif, k=n_features).fit(self.X[train], self.y[train]).get_support(indices=True)
        member = XGBMember(params={**settings.XGB_PARAMS, "max_depth": depth, "seed": seed},
                           rounds=settings.XGB_ROUNDS)
        member.fit(self.X[train][:, columns], self.y[train],
                   sample_weight=compute_sample_weight("balanced", self.y[train]))
        window_p = member.predict_proba(self.X[test][:, columns])
        song_of_test = np.searchsorted(test_songs, self.song[test])
        proba = np.zeros((len(test_songs), window_p.shape[1]))
        np.add.at(proba, song_of_test, window_p)
        return float(f1_score(self.truth[test_songs], proba.argmax(axis=1), average="macro"))


def nested_scores(windows, outer, configs, inner_folds, seed, say=print):
    """(outer F1 with the inner choice, {config: outer F1 fixed}, chosen config per split)."""
    from sklearn.model_selection import StratifiedGroupKFold

    nested, fixed, chosen = [], {c: [] for c in configs}, []
    for k, (train, test) in enumerate(outer):
        inner = StratifiedGroupKFold(inner_folds, shuffle=True, random_state=seed + k)
        inner_splits = [(train[a], train[b]) for a, b in
                        inner.split(np.zeros(len(train)), windows.truth[train], windows.artist[train])]
        inner_f1 = {c: np.mean([windows.song_f1(*c, np.sort(tr), np.sort(te), seed) for tr, te in inner_splits])
                    for c in configs}
        best = max(configs, key=lambda c: (inner_f1[c], -configs.index(c)))  # ties: the first listed
        chosen.append(best)
        nested.append(windows.song_f1(*best, train, test, seed))
        for c in configs:
            fixed[c].append(nested[-1] if c == best else windows.song_f1(*c, train, test, seed))
        say(f"outer split {k + 1} of {len(outer)}: chose depth {best[0]}, features {best[1] or 'all'}; "
            f"nested F1 {nested[-1]:.3f}")
    return nested, fixed, chosen


def main():
    args = parse_args()
    from trompa_mer.datasets.fourq import load_4q
    from trompa_mer.splits import make_splits

    data = load_4q(args.fourq, settings.CACHE_DIR, jobs=args.jobs, progress=True)
    windows = Windows(data, args.window_stride)
    split_windows, _ = make_splits(data, "kfold", args.cv, 0.2, settings.SEED, args.repeats)
    outer = [(np.unique(windows.song[a]), np.unique(windows.song[b])) for a, b in split_windows]
    configs = [(d, f) for d in args.depth_list for f in args.feature_list]
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    nested, fixed, chosen = nested_scores(windows, outer, configs, args.inner, settings.SEED, say)
    shipped = (settings.XGB_PARAMS["max_depth"], None)
    print(f"4Q, {len(outer)} outer splits (artist-grouped {args.cv} folds x {args.repeats}), inner "
          f"{args.inner}-fold artist-grouped search over max_depth {args.depth_list} x features "
          f"{[f or 'all' for f in args.feature_list]}; window XGBoost member, song macro F1")
    print(f"  nested (chosen inside each outer training set): {np.mean(nested):.3f} ± {np.std(nested):.3f}")
    for c in configs:
        mark = "  (shipped)" if c == shipped else ""
        print(f"  fixed depth {c[0]}, features {c[1] or 'all'}: {np.mean(fixed[c]):.3f} ± {np.std(fixed[c]):.3f}{mark}")
    print("  chosen per outer split: " + ", ".join(f"depth {d}/{f or 'all'}" for d, f in chosen))


if __name__ == "__main__":
    main_wrapper(main)
