#!/usr/bin/env python3
"""Does training the musicnn member on 4Q + Emotify together help on 4Q, or hurt on Emotify?

The musicnn member (trompa_mer.tagger.MusicnnMember: SGD logistic regression on the
standardized 400-d song embedding, settings.SONG_SGD_PARAMS, seed settings.SEED) is scored
on each corpus' own protocol, trained on that corpus' training folds alone and on the same
training folds plus every song of the other corpus (its rows weighted w, --weights):

  (a) 4Q: the committee protocol's splits (trompa_mer.splits "kfold": 5 stratified folds
      grouped by artist x --repeats, seeds SEED, SEED+1, ...), the same 15 splits that gave the
      musicnn member's 0.732 in docs/pretraining.md; the added Emotify songs never appear in a
      4Q held-out fold.
  (b) Emotify (av-median quadrants of the GEMS ticks, the project's default scheme): stratified
      5 folds x --repeats grouped by song (Emotify has no artist column), or with
      --emotify-protocol shuffle the Emotify committee's 5 GroupShuffleSplit splits (20 %).

Training weights: balanced class weights over all training rows (own + other corpus, as the
committee protocol balances its training songs), the other corpus' rows then multiplied by w.
Scores: held-out song macro F1, mean ± sd over the splits; per variant the paired difference
against own-only on the same splits (mean ± sd), wins/losses/ties, a paired t-test and the
Nadeau-Bengio corrected resampled t-test (repeated folds share training songs, so the plain
paired t-test is over-confident).

  python experiments/fourq_emotify.py --repeats 3 --weights 0.5,1

The embeddings come from the tagger's verified cache (trompa_mer.tagger.embed), 4Q's beside
load_4q's decoded audio (.cache/4q-audio-<folder>/musicnn-<signature>), Emotify's under
.cache/emotify-audio-<folder>/musicnn-<signature>; computing them costs about 1-2 s per clip on one
core the first time. docs/pretraining.md ("4Q + Emotify together") has the measured table.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import settings  # noqa: E402
from trompa_mer.cli import main_wrapper, positive_int  # noqa: E402
from trompa_mer.errors import MERError  # noqa: E402


class SongTable:
    """One row per song, in the layout trompa_mer.splits.make_splits reads (groups = song ids,
    split_groups = the artist where the corpus has one)."""

    def __init__(self, song_ids, y, split_groups=None):
        order = np.argsort(np.asarray(song_ids).astype(str), kind="stable")
        self.groups = np.asarray(song_ids).astype(str)[order]
        self.y = np.asarray(y, dtype=np.int64)[order]
        self.split_groups = None if split_groups is None else np.asarray(split_groups).astype(str)[order]
        self.order = order  # rows of the caller's arrays, in this table's order


def song_splits(table, protocol, cv, repeats, seed):
    """[(train rows, test rows)] of `table` (one row per song) by trompa_mer.splits."""
    from trompa_mer.splits import make_splits

    splits, _ = make_splits(table, protocol, cv, 0.2, seed, repeats)
    return splits


def parse_weights(text: str) -> list[float]:
    try:
        weights = [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise MERError(f"--weights: expected a comma list of positive numbers, got {text!r}") from None
    if not weights or any(not np.isfinite(w) or w <= 0 for w in weights):
        raise MERError(f"--weights: expected a comma list of positive numbers, got {text!r}")
    return weights


def variant_name(other: str, w: float) -> str:
    return f"+ {other} (w {w:g})"


def compare(X_own, y_own, splits, X_other, y_other, weights, other="other", params=None, seed=1987):
    """Score the musicnn member per split trained on own training rows alone and on own training
    rows + every row of the other corpus (weight w each). Returns a report dict:

      splits: number of splits; variants: [names] (own-only first);
      f1: {variant: [song macro F1 per split]}; train_rows: {variant: [rows fitted per split]};
      paired: {variant: {mean, sd, wins, losses, ties, t, p, t_corrected, p_corrected}} (against own-only).
    """
    from sklearn.metrics import f1_score
    from sklearn.utils.class_weight import compute_sample_weight

    from trompa_mer import hyperparameters
    from trompa_mer.tagger import MusicnnMember

    X_own, X_other = np.asarray(X_own, dtype=np.float32), np.asarray(X_other, dtype=np.float32)
    y_own, y_other = np.asarray(y_own, dtype=np.int64), np.asarray(y_other, dtype=np.int64)
    if X_own.shape[1] != X_other.shape[1]:
        raise MERError(f"embeddings differ in width: {X_own.shape[1]} and {X_other.shape[1]}")
    params = dict(hyperparameters.SONG_SGD_PARAMS if params is None else params)
    variants = ["alone"] + [variant_name(other, w) for w in weights]
    f1 = {v: [] for v in variants}
    rows = {v: [] for v in variants}
    test_share = []
    for train, test in splits:
        test_share.append(len(test) / len(train))
        for name, w in zip(variants, [None, *weights]):
            if w is None:
                X, y, scale = X_own[train], y_own[train], np.ones(len(train))
            else:
                X = np.concatenate([X_own[train], X_other])
                y = np.concatenate([y_own[train], y_other])
                scale = np.concatenate([np.ones(len(train)), np.full(len(y_other), w)])
            member = MusicnnMember(params=params, seed=seed)
            member.fit(X, y, sample_weight=compute_sample_weight("balanced", y) * scale)
            predicted = member.predict_proba(X_own[test]).argmax(axis=1)
            f1[name].append(float(f1_score(y_own[test], predicted, average="macro", labels=range(4))))
            rows[name].append(len(y))
    paired = {v: paired_difference(f1[v], f1["alone"], float(np.mean(test_share))) for v in variants[1:]}
    return {"splits": len(splits), "variants": variants, "f1": f1, "train_rows": rows, "paired": paired}


def paired_difference(a, b, test_train_ratio: float) -> dict:
    """a - b over the same splits: mean, sd, wins/losses/ties, paired t and the Nadeau-Bengio
    corrected t (variance inflated by 1/J + n_test/n_train)."""
    from scipy import stats

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    out = {"mean": float(d.mean()), "sd": float(d.std()), "wins": int((d > 1e-12).sum()),
           "losses": int((d < -1e-12).sum()), "ties": int((np.abs(d) <= 1e-12).sum())}
    n = len(d)
    var = d.var(ddof=1) if n > 1 else 0.0
    if n > 1 and var > 0:
        t = d.mean() / np.sqrt(var / n)
        t_c = d.mean() / np.sqrt((1.0 / n + test_train_ratio) * var)
        out.update(t=float(t), p=float(2 * stats.t.sf(abs(t), n - 1)),
                   t_corrected=float(t_c), p_corrected=float(2 * stats.t.sf(abs(t_c), n - 1)))
    else:
        out.update(t=float("nan"), p=float("nan"), t_corrected=float("nan"), p_corrected=float("nan"))
    return out


def format_report(title: str, report: dict) -> str:
    lines = [title, f"  {'training set':28} {'song macro F1':>15}  {'rows':>5}  paired difference vs alone"]
    for v in report["variants"]:
        f1 = report["f1"][v]
        line = f"  {v:28} {np.mean(f1):.3f} ± {np.std(f1):.3f}  {int(np.mean(report['train_rows'][v])):5d}"
        if v in report["paired"]:
            d = report["paired"][v]
            line += (f"  {d['mean']:+.3f} ± {d['sd']:.3f}, {d['wins']}/{d['losses']}/{d['ties']} "
                     f"better/worse/tied, paired t p {d['p']:.3f}, corrected p {d['p_corrected']:.3f}")
        lines.append(line)
    return "\n".join(lines)


def load_fourq_songs(root, cache_dir):
    """(song ids, quadrants, artists, 4Q audio source) of every annotated 4Q clip; the audio
    source is load_4q's (same cache folder, so the same embedding cache)."""
    from trompa_mer.audio_cache import AudioCache
    from trompa_mer.datasets.corpus_cache import folder_signature
    from trompa_mer.datasets.fourq import read_artists, read_quadrants

    root = Path(root)
    if not root.is_dir():
        raise MERError(f"{root}: 4Q folder not found (expected audio/, annotations.csv, metadata.csv; --fourq DIR)")
    labels = read_quadrants(root / "annotations.csv")
    audio = root / "audio"
    clips = AudioCache.from_folder(audio, Path(cache_dir) / f"4q-audio-{folder_signature(audio)}")
    missing = sorted(set(labels) - set(clips.files))
    if missing:
        raise MERError(f"{root / 'annotations.csv'}: annotated song {missing[0]!r} has no audio in {audio}")
    songs = sorted(labels)
    artists = read_artists(root / "metadata.csv", songs)
    return songs, [labels[s] for s in songs], [artists[s] for s in songs], clips


def load_emotify_songs(root, cache_dir, scheme):
    """(track ids, quadrants under `scheme`, Emotify audio source) of every annotated clip with audio."""
    from trompa_mer.audio_cache import AudioCache
    from trompa_mer.datasets.corpus_cache import folder_signature
    from trompa_mer.datasets.emotify import track_labels

    root = Path(root)
    audio = root / "audio"
    if not audio.is_dir():
        raise MERError(f"{audio}: Emotify audio folder not found (--emotify DIR)")
    labels = track_labels(root / "annotations.csv", scheme)
    clips = AudioCache.from_folder(audio, Path(cache_dir) / f"emotify-audio-{folder_signature(audio)}")
    songs = sorted((s for s in labels.index if s in clips.files), key=lambda s: (len(s), s))
    if not songs:
        raise MERError(f"{root}: no clip in audio/ has annotations in annotations.csv")
    return songs, labels.loc[songs].to_numpy(dtype=np.int64), clips


def main():
    from trompa_mer.datasets.emotify import LABEL_SCHEMES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="0.5,1",
                   help="comma list of weights w for the other corpus' rows (default %(default)s)")
    p.add_argument("-cv", type=positive_int, default=5, help="folds per repeat on each corpus (default %(default)s)")
    p.add_argument("--repeats", type=positive_int, default=3,
                   help="repeats of the folds, seeds SEED, SEED+1, ... (default %(default)s)")
    p.add_argument("--seed", type=int, default=settings.SEED,
                   help="split seed of the first repeat and the SGD seed (default %(default)s)")
    p.add_argument("--emotify-protocol", choices=("kfold", "shuffle"), default="kfold",
                   help="Emotify's splits: kfold = stratified -cv folds x --repeats (grouped by song); "
                        "shuffle = the Emotify committee's -cv GroupShuffleSplit splits of 20 %% "
                        "(needs --repeats 1) (default %(default)s)")
    p.add_argument("--scheme", choices=LABEL_SCHEMES, default="av-median",
                   help="Emotify's GEMS-to-quadrant label scheme (default %(default)s, the project's)")
    p.add_argument("--fourq", default=str(settings.SHARED_DATA_DIR / "4q"), help="4Q folder (default %(default)s)")
    p.add_argument("--emotify", default=str(settings.SHARED_DATA_DIR / "emotify"),
                   help="Emotify folder (default %(default)s)")
    p.add_argument("--cache", default=str(settings.CACHE_DIR),
                   help="cache folder for decoded audio and embeddings (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args()
    weights = parse_weights(args.weights)
    if args.emotify_protocol == "shuffle" and args.repeats != 1:
        raise MERError("--emotify-protocol shuffle draws -cv random splits: use --repeats 1")

    from trompa_mer.tagger import embed

    wall = time.perf_counter()
    q_songs, q_y, q_artists, q_audio = load_fourq_songs(args.fourq, args.cache)
    e_songs, e_y, e_audio = load_emotify_songs(args.emotify, args.cache, args.scheme)
    X_q = embed(q_songs, q_audio, progress=not args.quiet)
    X_e = embed(e_songs, e_audio, progress=not args.quiet)
    print(f"embeddings: 4Q {len(q_songs)} songs {np.bincount(q_y, minlength=4).tolist()}, Emotify "
          f"{len(e_songs)} songs {np.bincount(e_y, minlength=4).tolist()} ({args.scheme}), "
          f"{time.perf_counter() - wall:.0f} s", flush=True)

    wall, cpu = time.perf_counter(), time.process_time()
    q_table = SongTable(q_songs, q_y, q_artists)
    X_q, q_y = X_q[q_table.order], q_table.y
    q_splits = song_splits(q_table, "kfold", args.cv, args.repeats, args.seed)
    fourq = compare(X_q, q_y, q_splits, X_e, e_y, weights, other="Emotify", seed=args.seed)
    print(format_report(f"\n(a) 4Q: {len(q_splits)} splits, {args.cv} folds grouped by artist x {args.repeats}, "
                        f"held-out 4Q songs", fourq))

    e_table = SongTable(e_songs, e_y)
    X_e, e_y = X_e[e_table.order], e_table.y
    e_splits = song_splits(e_table, args.emotify_protocol, args.cv, args.repeats, args.seed)
    emotify = compare(X_e, e_y, e_splits, X_q, q_y, weights, other="4Q", seed=args.seed)
    how = (f"{args.cv} stratified folds x {args.repeats}" if args.emotify_protocol == "kfold"
           else f"{args.cv} GroupShuffleSplit splits of 20 %")
    print(format_report(f"\n(b) Emotify ({args.scheme}): {len(e_splits)} splits, {how}, held-out Emotify songs",
                        emotify))
    print(f"\nscoring: {time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU")


if __name__ == "__main__":
    main_wrapper(main)
