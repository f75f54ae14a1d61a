"""Retrain a listener's committee on their answers to the pending songs.

  python retrain_model.py -i USER_ID -a ANNOTATIONS.json [--update {batch,cumulative}]

ANNOTATIONS.json: {"song_id": "Q1".."Q4" | {"arousal": a, "valence": v}, ...} (a, v in -1..1)
"""

import sys

from trompa_mer.commands import settings
from trompa_mer import loop
from trompa_mer.cli import add_scale, main_wrapper, skipped_note, user_parser
from trompa_mer.users import UPDATE_STRATEGIES


def parse_args(argv=None):
    parser = user_parser(
        "Update every member of the listener's committee on their answers. The "
        "answers must be a non-empty subset of the pending songs; pending songs "
        "left out count as skipped and are not asked again.")
    parser.add_argument("-a", "--annotations", required=True,
                        help='a JSON file {"song_id": "Q1".."Q4", ...} (ids case-insensitive), '
                             "or the same JSON object given inline. An answer may instead be the "
                             'listener\'s own values, {"song_id": {"arousal": a, "valence": v}} '
                             "with numbers in -1..1 (its quadrant: a >= 0 and v >= 0 is Q1, 0 "
                             "counts as positive); both forms may be mixed. Regression members "
                             "(sgd-av, xgb-av) train towards the values, the other members on "
                             "the quadrant")
    parser.add_argument("--update", choices=UPDATE_STRATEGIES, default=loop.UPDATE_STRATEGY,
                        help="batch: continue the current committee on this round's answers "
                             "(the original); cumulative: start again from the committee the user "
                             "was created with and update it on every answer so far (default "
                             f"{loop.UPDATE_STRATEGY}: better in the offline experiments, "
                             "docs/experiments.md)")
    add_scale(parser, "the answers' arousal and valence values")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    summary = loop.retrain(args.user_id, args.annotations, settings.USERS_DIR, settings.FEATS_DIR,
                           update=args.update, lock_timeout=settings.LOCK_TIMEOUT_S, scale=args.scale,
                           **settings.AUDIO_FOLDERS)
    if summary.get("skipped_members"):
        print(skipped_note(summary["skipped_members"]) + (
            "; they were not updated (the answers are kept: a cumulative update with the audio trains "
            "them on every answer so far)" if summary["update"] == "cumulative" else
            "; they were not updated and, with --update batch, will not learn this round's answers"),
            file=sys.stderr)
    skipped = f", {len(summary['skipped'])} skipped" if summary["skipped"] else ""
    print(f"user {summary['user_id']}: iteration {summary['iteration']}, {summary['answered']} "
          f"answers{skipped}, {summary['update']} update on {summary['trained_songs']} songs "
          f"({summary['trained_windows']} windows)")


if __name__ == "__main__":
    main_wrapper(main)
