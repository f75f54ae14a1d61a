#!/usr/bin/env python3
"""The musicnn member's regularization chosen by nested artist-grouped cross-validation on 4Q.

The outer splits are the committee protocol's (5 folds grouped by artist × 3 repeats,
trompa_mer.splits "kfold"); on each outer training set an inner 4-fold artist-grouped search
picks the SGD head's α by song macro F1, the member is refitted with it and scored on the outer
held-out songs. Printed beside the fixed α of settings.SONG_SGD_PARAMS on the same outer splits,
so the gap is the optimism (or loss) of not tuning.

  python experiments/fourq_nested.py [--alphas 0.01,0.03,0.1,0.3] [--repeats 3]

The embeddings come from the tagger's cache (trompa_mer.tagger; computed on first use, about
1 s per clip). docs/pretraining.md ("A pretrained music tagger as front end") has the table.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import settings  # noqa: E402
from trompa_mer.cli import main_wrapper, positive_int  # noqa: E402


def song_f1(member_factory, X, y, train, test, weights=True) -> float:
    from sklearn.metrics import f1_score
    from sklearn.utils.class_weight import compute_sample_weight

    member = member_factory()
    member.fit(X[train], y[train], sample_weight=compute_sample_weight("balanced", y[train]) if weights else None)
    return float(f1_score(y[test], member.predict_proba(X[test]).argmax(axis=1), average="macro"))


def nested_scores(X, y, groups, outer, alphas, seed, inner_folds=4):
    """(outer F1 with the inner choice, outer F1 with each fixed α, chosen α per split)."""
    from sklearn.model_selection import StratifiedGroupKFold

    from trompa_mer.tagger import MusicnnMember

    def factory(alpha):
        return lambda: MusicnnMember(params=dict(settings.SONG_SGD_PARAMS, alpha=alpha), seed=settings.SEED)

    chosen, nested, fixed = [], [], {a: [] for a in alphas}
    for k, (train, test) in enumerate(outer):
        inner = StratifiedGroupKFold(inner_folds, shuffle=True, random_state=seed + k)
        inner_splits = [(train[a], train[b]) for a, b in inner.split(X[train], y[train], groups[train])]
        inner_f1 = {a: np.mean([song_f1(factory(a), X, y, tr, te) for tr, te in inner_splits]) for a in alphas}
        best = max(alphas, key=lambda a: (inner_f1[a], -a))  # ties: the stronger penalty
        chosen.append(best)
        nested.append(song_f1(factory(best), X, y, train, test))
        for a in alphas:
            fixed[a].append(song_f1(factory(a), X, y, train, test))
    return nested, fixed, chosen


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alphas", default="0.01,0.03,0.1,0.3",
                   help="comma list of the SGD head's L2 penalties searched (default %(default)s)")
    p.add_argument("-cv", type=positive_int, default=5, help="outer folds per repeat (default %(default)s)")
    p.add_argument("--repeats", type=positive_int, default=3, help="outer repeats (default %(default)s)")
    p.add_argument("--fourq", default=str(settings.SHARED_DATA_DIR / "4q"), help="4Q folder (default %(default)s)")
    p.add_argument("--jobs", type=positive_int, default=settings.JOBS, help="extraction processes")
    args = p.parse_args()
    try:
        alphas = [float(a) for a in args.alphas.split(",")]
    except ValueError:
        p.error(f"--alphas: expected a comma list of numbers, got {args.alphas!r}")
    if not alphas or any(not np.isfinite(a) or a <= 0 for a in alphas):
        p.error(f"--alphas: expected positive numbers, got {args.alphas!r}")

    from trompa_mer.datasets.fourq import load_4q
    from trompa_mer.pretrain import song_truth
    from trompa_mer.splits import make_splits
    from trompa_mer.tagger import embed

    data = load_4q(args.fourq, settings.CACHE_DIR, jobs=args.jobs, progress=True)
    # the committee protocol's splits (the same seeds as deam_classifier.py), mapped onto songs
    song_ids, song_of_window = np.unique(np.asarray(data.groups).astype(str), return_inverse=True)
    truth = song_truth(np.asarray(data.y, dtype=np.int64), song_of_window, len(song_ids))
    windows, _ = make_splits(data, "kfold", args.cv, 0.2, settings.SEED, args.repeats)
    outer = [(np.unique(song_of_window[a]), np.unique(song_of_window[b])) for a, b in windows]
    groups = np.empty(len(song_ids), dtype=object)
    groups[song_of_window] = np.asarray(data.split_groups)  # every window of a song: its artist
    X = embed(song_ids, data.audio, progress=True)
    nested, fixed, chosen = nested_scores(X, truth, groups, outer, alphas, settings.SEED)
    print(f"4Q, {len(outer)} outer splits (artist-grouped {args.cv} folds x {args.repeats}), "
          f"inner 4-fold artist-grouped search over alpha {alphas}")
    print(f"  nested (alpha chosen inside each outer training set): {np.mean(nested):.3f} ± {np.std(nested):.3f}")
    for a in alphas:
        mark = "  (settings.SONG_SGD_PARAMS)" if a == settings.SONG_SGD_PARAMS["alpha"] else ""
        print(f"  fixed alpha {a:g}: {np.mean(fixed[a]):.3f} ± {np.std(fixed[a]):.3f}{mark}")
    print("  chosen alpha per outer split: " + ", ".join(f"{a:g}" for a in chosen))


if __name__ == "__main__":
    main_wrapper(main)
