"""Extract window features (openSMILE IS13, 1 s windows, 0.5 s hop) from audio.

  python extract_features.py -i song.mp3 -o song.csv
  python extract_features.py -i AUDIO_DIR -o FEATS_DIR --jobs 2 [--consolidate]
  python extract_features.py -i AUDIO_DIR -o FEATS_DIR --scheduler tcp://HOST:8786
  python extract_features.py --consolidate FEATS_DIR
"""
import argparse

from trompa_mer.environment import require_packages

require_packages(("opensmile", "soundfile"))  # a set-up hint, not a traceback, outside the venv

from trompa_mer import features, pool  # noqa: E402
from trompa_mer.cli import main_wrapper, positive_int  # noqa: E402


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Extract openSMILE IS13 ComParE window features (frameTime + 260 columns, "
                    "';'-separated) from one audio file or a folder of them.")
    parser.add_argument("-i", "--input", help="an audio file (wav, mp3, flac, ogg) or a folder searched "
                        "recursively for them")
    parser.add_argument("-o", "--output", help="output .csv file (file mode) or output folder "
                        "(folder mode: one <song_id>.csv per file, song id = lowercased file name "
                        "without extension)")
    parser.add_argument("-j", "--jobs", type=positive_int, default=None,
                        help="folder mode: files extracted in parallel (default 1)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="folder mode: extract on an existing Dask distributed cluster, e.g. "
                        "tcp://10.0.0.5:8786 (the workers read the audio at the same path; the CSVs "
                        "are written here; docs/scale.md)")
    parser.add_argument("--scheduler-timeout", type=positive_float, default=10.0, metavar="SECONDS",
                        help="how long to try reaching the scheduler (default 10)")
    parser.add_argument("--consolidate", nargs="?", const=True, default=None, metavar="FEATS_DIR",
                        help="consolidate a folder of feature CSVs into the sharded pool store "
                        "(FEATS_DIR/.pool_shards) the other scripts read, rewriting only the shards of "
                        "new, changed or removed songs; with -i DIR -o OUTDIR, consolidate OUTDIR after "
                        "extracting; alone, give the folder")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.input is None and args.output is None:
        if not isinstance(args.consolidate, str):
            parser.error("give -i INPUT -o OUTPUT, or --consolidate FEATS_DIR")
    elif args.input is None or args.output is None:
        parser.error("-i/--input and -o/--output go together")
    if args.scheduler is not None:
        if args.input is None:
            parser.error("--scheduler extracts a folder: give -i AUDIO_DIR -o FEATS_DIR")
        if args.jobs is not None:
            parser.error("--jobs and --scheduler do not go together: the cluster's workers set how many "
                         "songs run at once")
    args.jobs = 1 if args.jobs is None else args.jobs
    return args


def consolidate(folder, quiet):
    # the sharded store refreshed: only the shards of new, changed or removed songs are
    # written, and every shard is checked against the manifest (a damaged one is rebuilt)
    table = pool.load_pool(folder, progress=not quiet, verify=True)
    skipped = f", {len(table.skipped)} unreadable CSVs skipped (see the warnings)" if table.skipped else ""
    print(f"pool {folder}: {len(table.song_ids)} songs, {table.n_windows} windows{skipped}")


def main(argv=None):
    args = parse_args(argv)
    if args.input is None:
        consolidate(args.consolidate, args.quiet)
        return 0
    summary = features.extract_input(args.input, args.output, jobs=args.jobs, progress=not args.quiet,
                                     scheduler=args.scheduler, connect_timeout=args.scheduler_timeout)
    if summary["mode"] == "file":
        print(f"{args.output}: {summary['windows']} windows")
        return 0
    redone = f" ({summary['redone']} of them redone: incomplete CSVs)" if summary["redone"] else ""
    print(f"{summary['found']} audio files: {summary['extracted']} extracted{redone}, "
          f"{summary['skipped']} already done, {len(summary['failed'])} failed")
    if args.consolidate:
        consolidate(args.output, args.quiet)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    main_wrapper(main)
