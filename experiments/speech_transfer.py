#!/usr/bin/env python3
"""The speech-transfer study (issues 15 and 20; docs/speech_encoders.md): SCAE/CPC encoders
pre-trained without labels on English speech, Mandarin speech, their mixture (half of each) or
unlabelled music, or randomly initialised, then transferred to the target corpus's quadrants
as a frozen feature extractor (FE) or fine-tuned (Full). Targets: Emotify (av-median quadrants)
or 4Q (commercial clips, perceived-emotion quadrants).

  python experiments/speech_transfer.py --out /work/results/speech
  python experiments/speech_transfer.py --target 4q --out /work/results/speech4q

Music pre-training: a seeded third of the target's songs is set aside, used (without labels) to
pre-train the "music" encoders and never evaluated; every column is evaluated on the same
remaining songs, with the same splits (FE: --fe-splits, Full: the first --full-splits of them).
Emotify: stratified song splits holding out --test-size. 4Q: the set-aside third is drawn by
artist, and the splits are stratified folds grouped by artist (StratifiedGroupKFold,
--fe-splits folds), so no artist of a test song is trained on or pre-trained on.
Random-initialisation rows use the normalisation statistics of those set-aside songs, and
their batch-norm statistics are estimated on up to 4096 of those songs' patches
(encoder.calibrate_batch_norm; without it, random-init CPC-Full collapsed to one class).

Resumable: each encoder is pre-trained in its own folder (checkpoint per epoch) and every
(row, column, split) result is appended to <out>/cells.jsonl as it finishes; a rerun skips
what is there. Writes <out>/speech_transfer.md (mean +- sd of song and patch macro F1; paired
t-test over splits against random initialisation) and <out>/summary.csv.
"""
import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import settings  # noqa: E402  (MER_SHARED_DATA; outside the venv it prints the set-up command)
import numpy as np  # noqa: E402

COLUMNS = ("english", "mandarin", "music", "mixture")
TARGETS = ("emotify", "4q")
CALIBRATION_PATCHES = 4096  # set-aside patches that estimate a random encoder's batch-norm statistics
TITLES = {"emotify": "Emotify quadrants (av-median)", "4q": "4Q quadrants (artist-grouped folds)"}


def parse_args(argv=None):
    shared = settings.SHARED_DATA_DIR  # ../shared/data, or MER_SHARED_DATA (/shared in the image)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="results folder (created; reruns resume)")
    p.add_argument("--target", choices=TARGETS, default="emotify",
                   help="the music corpus transferred to (and pre-trained on in the music column) "
                        "(default %(default)s)")
    p.add_argument("--emotify", default=str(shared / "emotify"), help="Emotify folder (audio/, annotations.csv)")
    p.add_argument("--fourq", default=str(shared / "4q"),
                   help="4Q folder (audio/, annotations.csv, metadata.csv), with --target 4q")
    p.add_argument("--speech", default=str(shared / "speech"), help="folder with english/ and mandarin/")
    p.add_argument("--cache-dir", default=None, help="decoded audio and log-mel cache (default <out>/cache)")
    p.add_argument("--columns", default=",".join(COLUMNS),
                   help="pre-training conditions, comma-separated, in running order (default %(default)s); "
                        "random initialisation always runs")
    p.add_argument("--methods", default="scae,cpc", help="encoders (default %(default)s)")
    p.add_argument("--width", type=int, default=8, help="encoder width w (blocks w, 2w, 4w) (default %(default)s)")
    p.add_argument("--pretrain-epochs", type=int, default=4, help="pre-training epochs (default %(default)s)")
    p.add_argument("--fe-epochs", type=int, default=15, help="epochs of dense layers+heads on frozen embeddings (default %(default)s)")
    p.add_argument("--full-epochs", type=int, default=4, help="fine-tuning epochs of the Full rows (default %(default)s)")
    p.add_argument("--patches-per-song", type=int, default=4,
                   help="random patches per training clip per fine-tuning epoch (default %(default)s)")
    p.add_argument("--fe-splits", type=int, default=5, help="song splits of the FE rows (default %(default)s)")
    p.add_argument("--full-splits", type=int, default=3, help="song splits of the Full rows (first of the FE splits) (default %(default)s)")
    p.add_argument("--test-size", type=float, default=0.25,
                   help="share of evaluation songs tested per split; Emotify only, 4Q folds hold out "
                        "1/--fe-splits (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=128, help="transfer batch size (default %(default)s)")
    p.add_argument("--seed", type=int, default=1987, help="seed of the music hold-out, splits and models (default %(default)s)")
    p.add_argument("--max-songs", type=int, default=None, help="use only this many of the target's songs (smoke runs)")
    p.add_argument("--max-files-per-folder", type=int, default=None, help="speech files per folder (smoke runs)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def macro_f1(y, pred):
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="macro", labels=[0, 1, 2, 3], zero_division=0))


def main():
    args = parse_args()
    import torch

    from trompa_mer import atomic, logmel
    from trompa_mer import encoder as E
    from trompa_mer.errors import MERError
    from trompa_mer.transfer import EncoderMember, embed_patches, song_patches

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache_dir) if args.cache_dir else out / "cache"
    progress = not args.quiet
    started = time.time()

    def say(text):
        print(f"[{time.time() - started:7.0f} s] {text}", flush=True)

    # --- songs, labels, music hold-out, splits ------------------------------------------------------
    songs, y_all, groups_all, audio = target_songs(args, cache)
    if args.max_songs:
        keep = np.sort(np.random.default_rng(args.seed).permutation(len(songs))[:args.max_songs])
        songs, y_all, groups_all = songs[keep], y_all[keep], groups_all[keep]
    music_idx, eval_idx = music_holdout(args.target, groups_all, args.seed)
    music_songs, eval_songs, y = songs[music_idx], songs[eval_idx], y_all[eval_idx]
    splits = evaluation_splits(args, y, groups_all[eval_idx])
    atomic.write_json(out / "design.json", {
        "args": vars(args), "music_pretraining_songs": music_songs.tolist(), "evaluation_songs": eval_songs.tolist(),
        "evaluation_classes": np.bincount(y, minlength=4).tolist(), "target": args.target,
        "grouped_by": "artist" if args.target == "4q" else "song",
        "test_songs": [eval_songs[t].tolist() for _, t in splits]})
    say(f"{len(songs)} songs: {len(music_songs)} for music pre-training, {len(eval_songs)} evaluated, "
        f"classes {np.bincount(y, minlength=4).tolist()}")
    audio.prepare(songs, progress=progress)
    patches = song_patches(eval_songs, audio)
    counts = np.array([len(p) for p in patches])
    bounds = np.concatenate([[0], np.cumsum(counts)])
    all_patches = np.concatenate(patches)
    patch_song = np.repeat(np.arange(len(patches)), counts)
    say(f"{len(all_patches)} evaluation patches")

    # --- results so far -----------------------------------------------------------------------------
    cells_path = out / "cells.jsonl"
    done = {}
    if cells_path.is_file():
        for line in cells_path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[(r["row"], r["column"], r["split"])] = r

    def record(result):
        done[(result["row"], result["column"], result["split"])] = result
        text = "".join(json.dumps(r) + "\n" for r in done.values())
        atomic.write_text(cells_path, text)

    # --- encoders -------------------------------------------------------------------------------------
    music_frames = None

    def music_stream():
        nonlocal music_frames
        if music_frames is None:
            stream = logmel.source_stream(music_songs, audio, progress=progress, desc="log-mel music")
            held = set(E.heldout_files(stream.names))
            train = [i for i, n in enumerate(stream.names) if n not in held]
            test = [i for i, n in enumerate(stream.names) if n in held]
            music_frames = (stream.select(train).frames, stream.select(test).frames,
                            {"music_songs": len(music_songs), "heldout_songs": len(test)})
        return music_frames

    calibration = []  # cut once, for both methods' random encoders

    def calibration_patches(limit=CALIBRATION_PATCHES):
        if not calibration:
            chosen = np.concatenate(song_patches(music_songs, audio))
            rows = np.random.default_rng(args.seed).permutation(len(chosen))[:limit]
            calibration.append(chosen[np.sort(rows)])
        return calibration[0]

    speech = Path(args.speech)

    def get_encoder(method, column):
        if column == "random":
            mean, std = logmel.band_stats(music_stream()[0])
            torch.manual_seed(args.seed)
            encoder = E.PatchEncoder(method, args.width, mean, std)
            # its batch-norm statistics from the set-aside songs' patches (never the evaluated
            # ones): uncalibrated, random-init CPC-Full collapsed to one class
            return E.calibrate_batch_norm(encoder, calibration_patches())
        folder = out / "encoders" / f"{method}-{column}"
        if (folder / E.MANIFEST).is_file():
            try:
                manifest = json.loads((folder / E.MANIFEST).read_text())
                if manifest.get("training", {}).get("epochs") == args.pretrain_epochs:
                    return E.load_encoder(folder)[0]
            except (MERError, ValueError):
                pass
        if column == "music":
            train, held, summary = music_stream()
        else:
            folders = {"english": [speech / "english"], "mandarin": [speech / "mandarin"],
                       "mixture": [speech / "english", speech / "mandarin"]}[column]
            hours = 0.475 if column == "mixture" else None
            train, held, summary = E.pretraining_data(folders, cache, hours, args.max_files_per_folder,
                                                      args.seed, progress=progress)
        say(f"pre-training {method} on {column}: {train.shape[1]} frames")
        encoder, _ = E.pretrain(method, train, held, folder, width=args.width, epochs=args.pretrain_epochs,
                                seed=args.seed, progress=progress, data_summary=summary,
                                command="experiments/speech_transfer.py " + " ".join(sys.argv[1:]))
        return encoder.eval()

    def evaluate(member, song_proba, patch_proba, test):
        test_patches = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in test])
        return {"song_f1": macro_f1(y[test], song_proba.argmax(axis=1)),
                "patch_f1": macro_f1(y[patch_song[test_patches]], patch_proba.argmax(axis=1))}

    methods = args.methods.split(",")
    columns = ["random"] + [c for c in args.columns.split(",") if c]
    member_kwargs = dict(epochs=args.fe_epochs, full_epochs=args.full_epochs,
                         patches_per_song=args.patches_per_song, batch_size=args.batch_size,
                         seed=args.seed, device="cpu")
    for column in columns:
        for method in methods:
            fe_row, full_row = f"{method.upper()}-FE", f"{method.upper()}-Full"
            todo_fe = [k for k in range(args.fe_splits) if (fe_row, column, k) not in done]
            todo_full = [k for k in range(min(args.full_splits, args.fe_splits)) if (full_row, column, k) not in done]
            if not todo_fe and not todo_full:
                continue
            enc = get_encoder(method, column)
            t0 = time.time()
            emb = embed_patches(enc, all_patches, "cpu")
            say(f"{method}/{column}: embedded {len(emb)} patches in {time.time() - t0:.0f} s")
            for k in todo_fe:
                t0 = time.time()
                train, test = splits[k]
                tr_rows = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in train])
                te_rows = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in test])
                member = EncoderMember(enc, transfer="feature-extractor", **member_kwargs)
                member.fit_patches([patches[i] for i in train], y[train], embeddings=emb[tr_rows])
                song_p, patch_p = member.predict_proba_embeddings(emb[te_rows], counts[test])
                record({"row": fe_row, "column": column, "split": k, **evaluate(member, song_p, patch_p, test),
                        "seconds": round(time.time() - t0, 1)})
            for k in todo_full:
                t0 = time.time()
                train, test = splits[k]
                tr_rows = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in train])
                member = EncoderMember(enc, transfer="full", **member_kwargs)
                member.fit_patches([patches[i] for i in train], y[train], embeddings=emb[tr_rows])
                patch_p = member.patch_proba(np.concatenate([patches[i] for i in test]))
                song_p = np.stack([patch_p[a:b].mean(axis=0) for a, b in
                                   zip(*(lambda c: (c[:-1], c[1:]))(np.concatenate([[0], np.cumsum(counts[test])])))])
                record({"row": full_row, "column": column, "split": k, **evaluate(member, song_p, patch_p, test),
                        "seconds": round(time.time() - t0, 1)})
                say(f"{full_row}/{column} split {k}: song F1 {done[(full_row, column, k)]['song_f1']:.3f} "
                    f"({time.time() - t0:.0f} s)")
            fe_scores = [done[(fe_row, column, k)]["song_f1"] for k in range(args.fe_splits) if (fe_row, column, k) in done]
            say(f"{fe_row}/{column}: song F1 {np.mean(fe_scores):.3f}")
            write_report(out, done, methods, columns, args.target)
    write_report(out, done, methods, columns, args.target)
    say(f"done; {out / 'speech_transfer.md'}")


def target_songs(args, cache):
    """(song ids, quadrant codes, split groups, audio source) of the target corpus; 4Q's groups
    are artists, Emotify's songs (it has no artist that repeats)."""
    from trompa_mer.audio_cache import AudioCache
    from trompa_mer.errors import MERError

    if args.target == "4q":
        from trompa_mer.datasets.fourq import read_artists, read_quadrants

        root = Path(args.fourq)
        labels = read_quadrants(root / "annotations.csv")
        audio = AudioCache.from_folder(root / "audio", cache / "4q16k")
        without = sorted(set(labels) - set(audio))
        if without:
            raise MERError(f"{root / 'audio'}: no audio for annotated song {without[0]!r}"
                           + (f" (and {len(without) - 1} more)" if len(without) > 1 else ""))
        songs = np.array(sorted(labels))
        artists = read_artists(root / "metadata.csv", list(songs))
        return (songs, np.array([labels[s] for s in songs], dtype=np.int64),
                np.array([artists[s] for s in songs]), audio)
    from trompa_mer.datasets.emotify import track_labels

    labels = track_labels(Path(args.emotify) / "annotations.csv", "av-median")
    audio = AudioCache.from_folder(Path(args.emotify) / "audio", cache / "emotify16k")
    songs = np.array(sorted((str(s) for s in labels.index if str(s) in audio), key=lambda s: int(s) if s.isdigit() else s))
    y = np.array([int(labels.loc[type(labels.index[0])(s)]) for s in songs])
    return songs, y, songs.copy(), audio


def music_holdout(target, groups, seed):
    """(set-aside indices, evaluated indices): a seeded third of the songs for the music column's
    pre-training; on 4Q a third of the artists' songs (GroupShuffleSplit), so no evaluated
    artist's clip is pre-trained on."""
    if target == "4q":
        from sklearn.model_selection import GroupShuffleSplit

        evaluated, held = next(GroupShuffleSplit(n_splits=1, test_size=1 / 3, random_state=seed)
                               .split(np.zeros(len(groups)), groups=groups))
        return np.sort(held), np.sort(evaluated)
    order = np.random.default_rng(seed).permutation(len(groups))
    n_music = len(groups) // 3
    return np.sort(order[:n_music]), np.sort(order[n_music:])


def evaluation_splits(args, y, groups):
    """[(train, test)] over the evaluated songs: Emotify stratified song splits, 4Q stratified
    folds grouped by artist."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

    if args.target == "4q":
        splitter = StratifiedGroupKFold(n_splits=args.fe_splits, shuffle=True, random_state=args.seed)
        return list(splitter.split(np.zeros(len(y)), y, groups))
    splitter = StratifiedShuffleSplit(n_splits=args.fe_splits, test_size=args.test_size, random_state=args.seed)
    return list(splitter.split(np.zeros(len(y)), y))


def write_report(out, done, methods, columns, target="emotify"):
    import pandas as pd
    from scipy.stats import ttest_rel

    from trompa_mer import atomic

    if not done:
        return
    table = pd.DataFrame(list(done.values()))
    table.to_csv(out / "cells.csv", index=False)
    lines = [f"# Speech-pretrained encoders on {TITLES[target]}", "",
             "Macro F1, mean ± sd over song splits (n = splits); p: paired t-test over the same splits "
             "against the same row from random initialisation.", ""]
    rows_summary = []
    for metric in ("song_f1", "patch_f1"):
        lines += [f"## {'Song' if metric == 'song_f1' else 'Patch (1 s)'} macro F1", "",
                  "| row | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        for method in methods:
            for kind in ("FE", "Full"):
                row = f"{method.upper()}-{kind}"
                cells = []
                base = table[(table.row == row) & (table.column == "random")].set_index("split")[metric]
                for column in columns:
                    part = table[(table.row == row) & (table.column == column)].set_index("split")[metric]
                    if part.empty:
                        cells.append("–")
                        continue
                    text = f"{part.mean():.3f} ± {part.std(ddof=1) if len(part) > 1 else 0:.3f} (n={len(part)})"
                    common = part.index.intersection(base.index)
                    p = None
                    if column != "random" and len(common) >= 2:
                        p = float(ttest_rel(part[common], base[common]).pvalue)
                        text += f", p={p:.2f}"
                    cells.append(text)
                    rows_summary.append({"metric": metric, "row": row, "column": column, "mean": part.mean(),
                                         "sd": part.std(ddof=1) if len(part) > 1 else 0.0, "n": len(part), "p_vs_random": p})
                lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines.append("")
    atomic.write_text(out / "speech_transfer.md", "\n".join(lines) + "\n")
    pd.DataFrame(rows_summary).to_csv(out / "summary.csv", index=False)


if __name__ == "__main__":
    from trompa_mer.cli import main_wrapper

    main_wrapper(main)
