"""Pre-train a spectrogram encoder without labels (SCAE or CPC) on folders of audio.

  python pretrain_encoder.py --method scae --audio ../shared/data/speech/english --out models/encoders/scae-en
  python pretrain_encoder.py --method cpc --audio ../shared/data/speech/english \\
      --audio ../shared/data/speech/mandarin --hours-per-folder 0.475 --out models/encoders/cpc-mix

Writes <out>/encoder.pt (weights) + <out>/encoder.json (checksummed manifest), <out>/log.csv
(per epoch) and <out>/checkpoint.pt (after every epoch): running the same command again
resumes. Long work (decoding, training) first prints `note: about N min ...`, estimated
from the rate of its first files or batches (MER_COST_NOTE_SECONDS, default 60, sets when).
See docs/speech_encoders.md.
"""
import argparse
import shlex
import sys

from trompa_mer.commands import settings
from trompa_mer.cli import main_wrapper, positive_int


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True,
                   help="scae (denoising convolutional autoencoder) or cpc (contrastive predictive coding)")
    p.add_argument("--audio", action="append", required=True, metavar="DIR",
                   help="folder of audio files (repeatable; each folder is one 'language' or source)")
    p.add_argument("--hours-per-folder", type=float, default=None,
                   help="use at most this many hours of each folder, files in a seeded random order "
                        "(e.g. 0.475 with two 0.95 h folders: a mixture of half of each); only the "
                        "files used, and at most one more, are decoded (default: all)")
    p.add_argument("--max-files-per-folder", type=positive_int, default=None,
                   help="use at most this many files of each folder, in the same seeded order; only "
                        "the files used are decoded (with --hours-per-folder: at most one more, to "
                        "learn its length) (default: all)")
    p.add_argument("--width", type=int, default=8,
                   help="filters of the first conv block; the blocks have w, 2w, 4w (the paper: 32) "
                        "(default %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=10, help="training epochs (default %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="patches per batch for scae (default 64), 6-patch sequences per batch for cpc "
                        "(default 16; the other sequences are the negatives)")
    p.add_argument("--seed", type=int, default=settings.SEED,
                   help="seed of initialisation, file selection, order and noise (default %(default)s)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; resumed when it holds a checkpoint)")
    p.add_argument("--cache-dir", default=str(settings.CACHE_DIR / "logmel"),
                   help="where decoded audio and log-mel frames of each folder are cached (default %(default)s)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N] (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    from trompa_mer import cost, encoder

    cost.configure(settings.COST_NOTE_S)
    encoder.check_method(args.method)
    encoder.check_width(args.width)
    train, heldout, summary = encoder.pretraining_data(
        args.audio, args.cache_dir, args.hours_per_folder, args.max_files_per_folder, args.seed,
        progress=not args.quiet)
    command = "python pretrain_encoder.py " + shlex.join(
        a for a in argv if a != "--quiet")
    _, manifest = encoder.pretrain(args.method, train, heldout, args.out, width=args.width,
                                   epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                   device=args.device, progress=not args.quiet, command=command,
                                   data_summary=summary)
    training = manifest["training"]
    print(f"{args.out}: {args.method} encoder, width {args.width}, {summary['hours_train']} h of audio, "
          f"final train loss {training['final_train_loss']}, held-out {training['final_heldout_loss']}")


if __name__ == "__main__":
    main_wrapper(main)
