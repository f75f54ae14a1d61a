#!/usr/bin/env python3
"""The short-chunk CNN member trained on 4Q audio within a CPU budget (issue 20, item 3;
docs/cnn.md). Trains `trompa_mer.cnn.CNNMember` from scratch on the artist-grouped folds that
deam_classifier.py --dataset 4q scores every member on (StratifiedGroupKFold, the same seed),
and scores each trained fold's held-out songs: song macro F1, accuracy, confusion matrix.

  python experiments/fourq_cnn.py --out /work/results/fourq_cnn --epochs 20 --run-folds 1

The paper's schedule (200 epochs at Adam lr 1e-4, n_channels 128) is two orders of magnitude
beyond a CPU budget (docs/cnn.md), so the defaults are a budget variant: 16 channels, Adam at
lr 1e-3, two random chunks per song per epoch. Every fold writes <out>/cnn_<k>.pt/.json, its
per-epoch log <out>/cnn_<k>_log.csv and a line of <out>/folds.jsonl as it finishes (a rerun
skips finished folds); <out>/summary.json has the mean ± sd over the folds run.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import settings  # noqa: E402
from trompa_mer.cli import main_wrapper, positive_int  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="results folder (created; a rerun skips finished folds)")
    p.add_argument("--fourq", default=str(settings.SHARED_DATA_DIR / "4q"),
                   help="4Q folder (audio/, annotations.csv, metadata.csv) (default %(default)s)")
    p.add_argument("--cache-dir", default=None, help="decoded 16 kHz audio cache (default <out>/cache)")
    p.add_argument("-cv", "--folds", type=positive_int, default=5,
                   help="artist-grouped folds, as deam_classifier.py -cv (default %(default)s)")
    p.add_argument("--run-folds", type=positive_int, default=1,
                   help="train and score only the first N folds (the CPU budget) (default %(default)s)")
    p.add_argument("--n-channels", type=positive_int, default=16, help="CNN width (paper: 128) (default %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=20, help="training epochs (paper: 200) (default %(default)s)")
    p.add_argument("--adam-lr", type=float, default=1e-3, help="Adam learning rate (paper: 1e-4) (default %(default)s)")
    p.add_argument("--chunks-per-song", type=positive_int, default=2,
                   help="random 3.7 s chunks per training song per epoch (default %(default)s)")
    p.add_argument("--seed", type=int, default=settings.SEED, help="folds and training seed (default %(default)s)")
    p.add_argument("--max-songs", type=positive_int, default=None, help="use only this many songs (smoke runs)")
    p.add_argument("--compose", metavar="HELD_OUT.npz", default=None,
                   help="experiments/fourq_members.py --held-out file of the same corpus: also score every "
                        "committee composition of its algorithms and the CNN on the folds run (tempered "
                        "mean, temperatures chosen on those folds' held-out songs)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def artist_folds(y, artists, folds, seed):
    """The song folds deam_classifier.py --dataset 4q --protocol kfold uses (first repeat): its
    splitting code on one row per song (sorted song ids, as it orders them)."""
    from types import SimpleNamespace

    from trompa_mer.splits import make_splits

    songs = np.array([f"{i:06d}" for i in range(len(y))])  # make_splits sorts songs by id
    data = SimpleNamespace(y=np.asarray(y), groups=songs, split_groups=np.asarray(artists))
    splits, _ = make_splits(data, protocol="kfold", cv=folds, seed=seed, repeats=1)
    return splits


def scores(truth, predicted) -> dict:
    """Song macro F1, accuracy, predicted class counts, confusion matrix (rows: truth)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    return {"f1_macro": float(f1_score(truth, predicted, average="macro", labels=[0, 1, 2, 3], zero_division=0)),
            "accuracy": float(accuracy_score(truth, predicted)),
            "predicted_classes": np.bincount(predicted, minlength=4).tolist(),
            "confusion": confusion_matrix(truth, predicted, labels=[0, 1, 2, 3]).tolist()}


def save_held_out(path, test, proba):
    import io

    from trompa_mer import atomic

    buffer = io.BytesIO()
    np.savez(buffer, test=np.asarray(test), proba=np.asarray(proba))
    atomic.write_bytes(path, buffer.getvalue())


def compose(path, cnn_held, y, songs) -> list:
    """Lines: song macro F1 (mean ± sd over the folds run) of every composition of the members in
    `path` (fourq_members.py --held-out; its first splits are these folds) and the CNN."""
    import itertools

    from trompa_mer.errors import MERError
    from trompa_mer.pretrain import _best_temperature, temper

    other = np.load(path)
    if other["song_ids"].tolist() != songs.tolist():
        raise MERError(f"{path}: song_ids: expected the 4Q songs this study reads, in the same order")
    algorithms = sorted({key.rsplit("_", 2)[0] for key in other.files if key.endswith("_proba")})
    held = {a: [(other[f"{a}_{k}_test"], other[f"{a}_{k}_proba"]) for k in range(len(cnn_held))]
            for a in algorithms}
    for a in algorithms:
        for k, ((test, _), (cnn_test, _)) in enumerate(zip(held[a], cnn_held)):
            if not np.array_equal(test, cnn_test):
                raise MERError(f"{path}: {a}_{k}_test: expected the same held-out songs as CNN fold {k}")
    held["cnn"] = cnn_held
    temps = {a: _best_temperature(np.concatenate([p for _, p in h]), np.concatenate([y[t] for t, _ in h]))
             for a, h in held.items()}
    rows = []
    for size in range(1, len(held) + 1):
        for subset in itertools.combinations(held, size):
            f1 = [scores(y[held[subset[0]][k][0]], np.mean([temper(held[a][k][1], temps[a]) for a in subset],
                                                            axis=0).argmax(axis=1))["f1_macro"]
                  for k in range(len(cnn_held))]
            rows.append((float(np.mean(f1)), float(np.std(f1)), "+".join(subset)))  # sd as pretrain reports it
    lines = [f"committee compositions on the {len(cnn_held)} fold(s) run, song macro F1 (temperatures "
             + ", ".join(f"{a} {t:g}" for a, t in temps.items()) + ")"]
    lines += [f"  {mean:.3f} ± {sd:.3f}  {name}" for mean, sd, name in sorted(rows, reverse=True)]
    return lines


def main():
    args = parse_args()
    import torch
    from trompa_mer import atomic
    from trompa_mer.audio_cache import AudioCache
    from trompa_mer.cnn import CNNMember
    from trompa_mer.datasets.fourq import read_artists, read_quadrants
    from trompa_mer.errors import MERError

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(args.fourq)
    labels = read_quadrants(root / "annotations.csv")
    audio = AudioCache.from_folder(root / "audio", Path(args.cache_dir) if args.cache_dir else out / "cache")
    without = sorted(set(labels) - set(audio))
    if without:
        raise MERError(f"{root / 'audio'}: no audio for annotated song {without[0]!r}")
    songs = np.array(sorted(labels))
    if args.max_songs:
        songs = np.sort(np.random.default_rng(args.seed).permutation(songs)[:args.max_songs])
    artists = read_artists(root / "metadata.csv", list(songs))
    y = np.array([labels[s] for s in songs], dtype=np.int64)
    splits = artist_folds(y, [artists[s] for s in songs], args.folds, args.seed)
    if args.run_folds > len(splits):
        raise MERError(f"--run-folds {args.run_folds}: only {len(splits)} folds")
    audio.prepare(songs, progress=not args.quiet)

    log = out / "folds.jsonl"
    done = {}
    if log.is_file():
        done = {r["fold"]: r for r in map(json.loads, filter(str.strip, log.read_text().splitlines()))}
    for k in range(args.run_folds):
        if k in done:
            continue
        started = time.time()
        train, test = splits[k]
        member = CNNMember(n_channels=args.n_channels, epochs=args.epochs, adam_lr=args.adam_lr,
                           chunks_per_song=args.chunks_per_song, seed=args.seed + k, device="cpu",
                           progress=not args.quiet, log_path=out / f"cnn_{k}_log.csv")
        member.fit_songs(songs[train], y[train], audio)
        proba = member.predict_proba_songs(songs[test], audio)
        predicted = proba.argmax(axis=1)
        member.save(out / f"cnn_{k}")
        save_held_out(out / f"cnn_{k}_held_out.npz", test, proba)
        done[k] = {"fold": k, **scores(y[test], predicted), "n_train": len(train), "n_test": len(test),
                   "best_epoch": member.best_epoch_, "seconds": round(time.time() - started, 1)}
        atomic.write_text(log, "".join(json.dumps(r) + "\n" for r in done.values()))
        print(f"fold {k}: song macro F1 {done[k]['f1_macro']:.3f}, accuracy {done[k]['accuracy']:.3f}, "
              f"best epoch {done[k]['best_epoch']}, {done[k]['seconds']:.0f} s", flush=True)
    held = []
    for k in range(args.run_folds):  # folds trained before the probabilities were kept: from the model
        path = out / f"cnn_{k}_held_out.npz"
        if not path.is_file():
            test = splits[k][1]
            save_held_out(path, test, CNNMember.load(out / f"cnn_{k}").predict_proba_songs(songs[test], audio))
        with np.load(path) as saved:
            held.append((saved["test"], saved["proba"]))
    if args.compose:
        for line in compose(args.compose, held, y, songs):
            print(line)
    f1 = [done[k]["f1_macro"] for k in range(args.run_folds)]
    summary = {"args": vars(args), "folds_run": args.run_folds, "f1_macro_mean": float(np.mean(f1)),
               "f1_macro_sd": float(np.std(f1)),  # population sd, as deam_classifier's reports
               "seconds": sum(done[k]["seconds"] for k in range(args.run_folds))}
    atomic.write_json(out / "summary.json", summary)
    print(f"song macro F1 over {len(f1)} fold(s): {summary['f1_macro_mean']:.3f} ± {summary['f1_macro_sd']:.3f}")


if __name__ == "__main__":
    main_wrapper(main)
