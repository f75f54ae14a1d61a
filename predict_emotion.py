#!/usr/bin/env python3
"""Predict emotion quadrants for a feature CSV or an audio file.

  python predict_emotion.py -i FEATURES.csv|AUDIO -o OUT.json [-m MODEL_FILE|default | -u USER_ID [--song-id ID]]
"""
import argparse

import settings
from trompa_mer import loop
from trompa_mer.cli import add_user_id, main_wrapper
from trompa_mer.quadrants import QUADRANTS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Write per-window and song-level quadrant probabilities as JSON (keys "
                    "input_feats, output_probs, mean_probs, highest_prob_quad, "
                    "output_predictions, freq_pred, mode_quad). Features are standardized with "
                    "the committee's stored scaler. When the committee's listener members include "
                    "arousal/valence regression members (sgd-av, xgb-av), also arousal, valence "
                    "(the song, -1..1), output_arousal, output_valence (per window) and av_members.")
    parser.add_argument("-i", "--input", required=True,
                        help="a feature CSV (as extract_features.py writes, or DEAM's) or an "
                             "audio file (features are extracted on the fly)")
    parser.add_argument("-o", "--output", required=True, help="output .json file")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("-m", "--model", default=None,
                     help="'default' (the committee in MER_PRETRAINED_DIR, the default), a "
                          "committee folder, or one member file inside a committee folder")
    add_user_id(who, "-u", required=False,
                help_text="use this listener's committee (adds each algorithm's mean); for a "
                          "listener created with --crowd-member also their crowd-aware members "
                          "(keys crowd, listener_probs, listener_quad)")
    parser.add_argument("--song-id", dest="song_id", default=None,
                        help="with -u and crowd-aware members: the pool song the input is, so the "
                             "other listeners' annotations of it are used (default: the input "
                             "file's stem when it is a pool song, else the song counts as one no "
                             "other listener has annotated)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    result = loop.predict(args.input, args.output, settings.USERS_DIR, settings.PRETRAINED_DIR,
                          model=args.model, user_id=args.user_id,
                          lock_timeout=settings.LOCK_TIMEOUT_S, song_id=args.song_id)
    probs = " ".join(f"{q}={p:.3f}" for q, p in zip(QUADRANTS, result["mean_probs"]))
    print(f"{args.input}: {result['highest_prob_quad']} ({probs}; {len(result['output_predictions'])} "
          f"windows, {result['model']}) -> {args.output}")
    if "arousal" in result:
        print(f"  arousal {result['arousal']:+.3f}, valence {result['valence']:+.3f} "
              f"(mean of {', '.join(result['av_members'])})")
    if "listener_quad" in result:
        crowd = result["crowd"]
        probs = " ".join(f"{q}={p:.3f}" for q, p in zip(QUADRANTS, result["listener_probs"]))
        song = (f"song {crowd['song_id']}, {crowd['n_listeners']} other listeners" if crowd["song_id"]
                else "a song no other listener annotated")
        print(f"  for the listener (crowd-aware members, {song}): {result['listener_quad']} ({probs})")


if __name__ == "__main__":
    main_wrapper(main)
