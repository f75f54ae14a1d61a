#!/usr/bin/env python3
"""Which members make the best committee on 4Q? Every member algorithm is cross-validated once
on the artist-grouped protocol; then every committee composition (a subset of the algorithms)
is scored on the same splits, exactly as deam_classifier.py scores its committee: the mean of
the members' tempered song probabilities, each algorithm's temperature chosen by held-out
song-level log loss.

  python experiments/fourq_members.py -m gnb,sgd,xgb,song-sgd,song-gnb,song-xgb --repeats 3

Prints each algorithm's and each composition's song macro F1 (mean ± sd over splits), sorted,
and how far each algorithm's probabilities are from uniform on held-out songs (mean and 95th
percentile of max |p - 1/4| after tempering: a member within .02 of uniform adds nothing to the
consensus entropy). docs/pretraining.md ("4Q") has the measured table.

With --encoder DIR|random an encoder member (docs/speech_encoders.md) joins as the algorithm
"encoder", scored on the same splits: the encoder stays frozen (feature extractor), each split
trains the dense layers and heads on its training songs' patches. "random" is a randomly
initialised encoder whose band and batch-norm statistics come from unlabelled clips of another
corpus (--calibration-audio, Emotify by default), so nothing of a held-out 4Q song is seen.

  python experiments/fourq_members.py -m xgb,musicnn --encoder random --repeats 3
"""
import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import settings  # noqa: E402
from trompa_mer.cli import main_wrapper, positive_int  # noqa: E402


def composition_scores(report, algorithms):
    from trompa_mer.pretrain import _best_temperature, scores, temper

    held = report["held_out"]
    n_splits = len(held[algorithms[0]])
    temps = {a: _best_temperature(np.concatenate([p for _, _, p in held[a]]),
                                  np.concatenate([t for _, t, _ in held[a]])) for a in algorithms}
    rows = []
    for k in range(n_splits):
        truth = held[algorithms[0]][k][1]
        mean = np.mean([temper(held[a][k][2], temps[a]) for a in algorithms], axis=0)
        rows.append(scores(truth, mean.argmax(axis=1))["f1_macro"])
    return float(np.mean(rows)), float(np.std(rows)), temps


def save_held_out(path, held_out, song_ids):
    """One .npz: song_ids, and per algorithm a and split k a_k_test, a_k_truth, a_k_proba."""
    import io

    from trompa_mer import atomic

    arrays = {"song_ids": np.asarray(song_ids)}
    for algorithm, splits in held_out.items():
        for k, (test, truth, proba) in enumerate(splits):
            arrays.update({f"{algorithm}_{k}_test": test, f"{algorithm}_{k}_truth": truth,
                           f"{algorithm}_{k}_proba": proba})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic.write_bytes(path, buffer.getvalue())


def study_encoder(args):
    """The encoder of --encoder: loaded, or randomly initialised with another corpus' statistics."""
    import torch

    from trompa_mer import encoder as E
    from trompa_mer import logmel
    from trompa_mer.audio_cache import AudioCache, get_audio

    if args.encoder != "random":
        return E.load_encoder(args.encoder)[0].eval()
    source = AudioCache.from_folder(args.calibration_audio, settings.CACHE_DIR / "calibration16k")
    chosen = np.random.default_rng(settings.SEED).permutation(sorted(source))[:args.calibration_songs]
    frames = [logmel.logmel(get_audio(source, s)) for s in sorted(chosen)]
    mean, std = logmel.band_stats(np.concatenate(frames, axis=1))
    torch.manual_seed(settings.SEED)
    encoder = E.PatchEncoder(args.encoder_method, args.encoder_width, mean, std)
    patches = np.concatenate([logmel.patches(get_audio(source, s)) for s in sorted(chosen)])
    return E.calibrate_batch_norm(encoder, patches)


def encoder_held_out(data, splits_like, encoder, epochs, seed, batch_size=128, progress=False):
    """[(test song indices, truth, song proba)] of an encoder member (frozen encoder, heads trained
    per split) on the same held-out songs as `splits_like` (another algorithm's held_out list)."""
    from trompa_mer.errors import MERError
    from trompa_mer.pretrain import song_truth
    from trompa_mer.transfer import EncoderMember, embed_patches, song_patches

    y, groups = np.asarray(data.y, dtype=np.int64), np.asarray(data.groups).astype(str)
    song_ids, song_index = np.unique(groups, return_inverse=True)
    truth = song_truth(y, song_index, len(song_ids))
    patches = song_patches(song_ids, data.audio)
    counts = np.array([len(x) for x in patches])
    bounds = np.concatenate([[0], np.cumsum(counts)])
    embeddings = embed_patches(encoder, np.concatenate(patches), "cpu")
    rows = lambda songs: np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in songs])
    out = []
    for test, truth_like, _ in splits_like:
        if not np.array_equal(truth[test], truth_like):  # the same songs, in the same order
            raise MERError("encoder member: the held-out songs do not match the other members'")
        train = np.setdiff1d(np.arange(len(song_ids)), test)
        member = EncoderMember(encoder, transfer="feature-extractor", epochs=epochs, batch_size=batch_size,
                               seed=seed, device="cpu")
        member.fit_patches([patches[i] for i in train], truth[train], embeddings=embeddings[rows(train)])
        proba, _ = member.predict_proba_embeddings(embeddings[rows(test)], counts[test])
        out.append((test, truth[test], proba))
        if progress:
            print(f"encoder member: split {len(out)} of {len(splits_like)} done", file=sys.stderr, flush=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", default="gnb,sgd,xgb,song-sgd,song-gnb,song-xgb",
                   help="member algorithms to compare (committee kinds only) (default %(default)s)")
    p.add_argument("-cv", type=positive_int, default=5, help="folds per repeat (default %(default)s)")
    p.add_argument("--repeats", type=positive_int, default=3, help="repeats of the folds (default %(default)s)")
    p.add_argument("--window-stride", type=positive_int, default=2,
                   help="window members train on 1 in N windows (default %(default)s)")
    p.add_argument("--fourq", default=str(settings.SHARED_DATA_DIR / "4q"), help="4Q folder (default %(default)s)")
    p.add_argument("--jobs", type=positive_int, default=settings.JOBS, help="extraction processes")
    p.add_argument("--encoder", metavar="DIR|random", default=None,
                   help="also score an encoder member (algorithm 'encoder'): a pre-trained encoder "
                        "folder (pretrain_encoder.py --out) or 'random' (see above)")
    p.add_argument("--encoder-method", choices=("scae", "cpc"), default="scae",
                   help="with --encoder random: the architecture (default %(default)s)")
    p.add_argument("--encoder-width", type=positive_int, default=8,
                   help="with --encoder random: the width w (default %(default)s)")
    p.add_argument("--encoder-epochs", type=positive_int, default=15,
                   help="epochs of the dense layers and heads per split (default %(default)s)")
    p.add_argument("--calibration-audio", default=str(settings.SHARED_DATA_DIR / "emotify" / "audio"),
                   help="with --encoder random: unlabelled clips whose statistics the encoder takes "
                        "(default %(default)s)")
    p.add_argument("--calibration-songs", type=positive_int, default=100,
                   help="with --encoder random: how many of those clips, seeded (default %(default)s)")
    p.add_argument("--held-out", metavar="FILE.npz", default=None,
                   help="also write every algorithm's held-out song probabilities (per split: test song "
                        "indices, truth, probabilities; with the song ids) for compositions with members "
                        "scored elsewhere on the same splits (experiments/fourq_cnn.py)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch threads for the encoder member (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args()

    from trompa_mer import pretrain
    from trompa_mer.datasets.fourq import load_4q
    from trompa_mer.members import MEMBER_TYPES

    algorithms = pretrain.parse_algorithms(args.m)
    unknown = [a for a in algorithms if a not in MEMBER_TYPES and a not in pretrain.AUDIO_SONG_TYPES]
    if unknown:
        p.error(f"-m: only quadrant classifiers compose committees here, got {unknown}")
    from trompa_mer.commands import deam_classifier

    member_params = deam_classifier.member_parameters(deam_classifier.parse_args([]))
    data = load_4q(args.fourq, settings.CACHE_DIR, jobs=args.jobs, progress=not args.quiet)
    report, _ = pretrain.pretrain(data, algorithms, cv=args.cv, protocol="kfold", repeats=args.repeats,
                                  seed=settings.SEED, member_params=member_params, build_committee=False,
                                  progress=not args.quiet, window_stride=args.window_stride,
                                  keep_predictions=True)
    print(pretrain.format_report({k: v for k, v in report.items() if k not in ("held_out",)}))
    if args.encoder:
        import torch

        torch.set_num_threads(args.threads)
        encoder = study_encoder(args)
        report["held_out"]["encoder"] = encoder_held_out(data, report["held_out"][algorithms[0]], encoder,
                                                         args.encoder_epochs, settings.SEED, progress=True)
        mean, sd, _ = composition_scores(report, ["encoder"])
        print(f"\nencoder member ({args.encoder}): song macro F1 {mean:.3f} ± {sd:.3f} "
              f"over {report['splits']} splits")
        algorithms = algorithms + ["encoder"]
    if args.held_out:
        save_held_out(args.held_out, report["held_out"], np.unique(np.asarray(data.groups).astype(str)))
    print("\ndistance from uniform on held-out songs (tempered): mean and 95th percentile of max |p - 1/4|")
    for a in algorithms:
        _, _, temps = composition_scores(report, [a])
        proba = pretrain.temper(np.concatenate([q for _, _, q in report["held_out"][a]]), temps[a])
        gap = np.abs(proba - 0.25).max(axis=1)
        print(f"  {a:10} T {temps[a]:>5g}  mean {gap.mean():.3f}  p95 {np.percentile(gap, 95):.3f}")
    results = []
    for size in range(1, len(algorithms) + 1):
        for subset in itertools.combinations(algorithms, size):
            mean, sd, _ = composition_scores(report, list(subset))
            results.append((mean, sd, subset))
    print(f"\ncommittee compositions, song macro F1 over {report['splits']} splits (best first)")
    for mean, sd, subset in sorted(results, reverse=True):
        print(f"  {mean:.3f} ± {sd:.3f}  {'+'.join(subset)}")


if __name__ == "__main__":
    main_wrapper(main)
