"""Predict emotion quadrants for feature CSVs or audio files.

  python predict_emotion.py -i FEATURES.csv|AUDIO -o OUT.json|- [-m MODEL_FILE|default | -u USER_ID [--song-id ID]]
  python predict_emotion.py -i FOLDER|FILE... -o OUT_FOLDER|OUT.jsonl|- [-m ...|-u USER_ID] [--scale LOW..HIGH]
"""
import argparse
import json
import sys
from pathlib import Path

from trompa_mer.commands import settings
from trompa_mer import loop
from trompa_mer.cli import add_scale, add_user_id, main_wrapper, skipped_note
from trompa_mer.errors import MERError
from trompa_mer.quadrants import QUADRANTS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Write per-window and song-level quadrant probabilities as JSON (keys "
                    "input_feats, output_probs, mean_probs, highest_prob_quad, "
                    "output_predictions, freq_pred, mode_quad). Features are standardized with "
                    "the committee's stored scaler. When the committee's listener members include "
                    "arousal/valence regression members (sgd-av, xgb-av), also arousal, valence "
                    "(the song, -1..1 or --scale), output_arousal, output_valence (per window) and "
                    "av_members. Several inputs (or a folder): one JSON per song in an existing "
                    "folder, JSON Lines in a .jsonl file, or JSON Lines on stdout (-o -), with "
                    "progress on stderr.")
    parser.add_argument("-i", "--input", required=True, nargs="+",
                        help="a feature CSV (as extract_features.py writes, or DEAM's) or an "
                             "audio file (features are extracted on the fly); or several, or "
                             "folders searched recursively for them")
    parser.add_argument("-o", "--output", required=True,
                        help="one input: a .json file, or - for stdout. Several: an existing folder "
                             "(<song_id>.json each, song id = lowercased file name without "
                             "extension), a .jsonl file, or - (JSON Lines on stdout). The folder of "
                             "an output file must exist")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("-m", "--model", default=None,
                     help="'default' (the committee in MER_PRETRAINED_DIR, the default), a "
                          "committee folder, or one member file inside a committee folder")
    add_user_id(who, "-u", required=False,
                help_text="use this listener's committee (adds each algorithm's mean); for a "
                          "listener created with --crowd-member also their crowd-aware members "
                          "(keys crowd, listener_probs, listener_quad)")
    parser.add_argument("--song-id", dest="song_id", default=None,
                        help="one input, with -u and crowd-aware members: the pool song the input is, "
                             "so the other listeners' annotations of it are used (default: the input "
                             "file's stem when it is a pool song, else the song counts as one no "
                             "other listener has annotated)")
    add_scale(parser, "predicted arousal and valence")
    parser.add_argument("--no-pool", action="store_true",
                        help="several inputs: extract every audio file's features again, even when "
                             "the pool (MER_FEATS_DIR) has the song's feature CSV (the default "
                             "reuses it)")
    parser.add_argument("-q", "--quiet", action="store_true", help="several inputs: no progress lines")
    return parser.parse_args(argv)


def single(args):
    output = args.output
    result = loop.predict(args.input[0], output, settings.USERS_DIR, settings.PRETRAINED_DIR,
                          model=args.model, user_id=args.user_id, lock_timeout=settings.LOCK_TIMEOUT_S,
                          song_id=args.song_id, scale=args.scale)
    # with -o - the JSON is stdout; what a person reads goes to stderr
    say = (lambda text: print(text, file=sys.stderr)) if output == "-" else print
    if output == "-":
        print(json.dumps(result))
    probs = " ".join(f"{q}={p:.3f}" for q, p in zip(QUADRANTS, result["mean_probs"]))
    say(f"{args.input[0]}: {result['highest_prob_quad']} ({probs}; {len(result['output_predictions'])} "
        f"windows, {result['model']}) -> {output if output != '-' else 'stdout'}")
    if "arousal" in result:
        on = f" on {args.scale}" if args.scale else ""
        say(f"  arousal {result['arousal']:+.3f}, valence {result['valence']:+.3f}{on} "
            f"(mean of {', '.join(result['av_members'])})")
    if "listener_quad" in result:
        crowd = result["crowd"]
        probs = " ".join(f"{q}={p:.3f}" for q, p in zip(QUADRANTS, result["listener_probs"]))
        song = (f"song {crowd['song_id']}, {crowd['n_listeners']} other listeners" if crowd["song_id"]
                else "a song no other listener annotated")
        say(f"  for the listener (crowd-aware members, {song}): {result['listener_quad']} ({probs})")
    if result.get("skipped_members"):
        print(skipped_note(result["skipped_members"]), file=sys.stderr)


def batch(args):
    if args.song_id is not None:
        raise MERError("--song-id: used with one input only (each song of a batch is its file's stem)")

    def report(i, n, path, result, error):
        if error is not None:
            print(f"error: {error}", file=sys.stderr)
        elif not args.quiet:
            pool = " (pool features)" if "features_source" in result else ""
            print(f"[{i}/{n}] {path}: {result['highest_prob_quad']}{pool}", file=sys.stderr)

    summary = loop.predict_batch(args.input, args.output, settings.USERS_DIR, settings.PRETRAINED_DIR,
                                 model=args.model, user_id=args.user_id, lock_timeout=settings.LOCK_TIMEOUT_S,
                                 scale=args.scale, feats_dir=None if args.no_pool else settings.FEATS_DIR,
                                 report=report)
    if summary["skipped_members"]:
        print(skipped_note(summary["skipped_members"], summary["inputs"]), file=sys.stderr)
    where = {"stdout": "stdout (JSON Lines)", "jsonl": args.output,
             "folder": f"{args.output} (one JSON per song)"}[summary["mode"]]
    print(f"{summary['predicted']} of {summary['inputs']} inputs predicted ({summary['model']}) -> {where}"
          + (f"; {len(summary['failed'])} failed (above)" if summary["failed"] else ""), file=sys.stderr)
    return 1 if summary["failed"] else 0


def main(argv=None):
    args = parse_args(argv)
    if len(args.input) == 1 and not Path(args.input[0]).is_dir():
        return single(args)
    return batch(args)


if __name__ == "__main__":
    main_wrapper(main)
