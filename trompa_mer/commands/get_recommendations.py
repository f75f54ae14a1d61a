"""Recommend, for each quadrant, the song of a playlist group the listener's committee rates highest
(a --crowd-member listener's crowd-aware members).

  python get_recommendations.py -i USER_ID -r GROUP [--playlists CSV] [--json]
"""
import json
import sys

from trompa_mer.commands import settings
from trompa_mer import loop
from trompa_mer.cli import main_wrapper, skipped_note, user_parser


def parse_args(argv=None):
    parser = user_parser(
        "For each quadrant Q1..Q4, the song of GROUP with the highest probability "
        "for it under the listener's committee (a --crowd-member listener's "
        "crowd-aware members), among the group's songs not "
        "recommended to this listener before; the picks are recorded.")
    parser.add_argument("-r", "--group", required=True, help="the playlist group to recommend from")
    parser.add_argument("--playlists", default=str(settings.PLAYLISTS),
                        help=f"CSV with columns group, song (default {settings.PLAYLISTS}, MER_PLAYLISTS)")
    parser.add_argument("--json", action="store_true", help='print {"Q1": song, ...} as JSON')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    result = loop.recommend(args.user_id, args.group, args.playlists, settings.USERS_DIR,
                            settings.FEATS_DIR, lock_timeout=settings.LOCK_TIMEOUT_S, **settings.AUDIO_FOLDERS)
    if result.get("skipped_members"):
        print(skipped_note(result["skipped_members"]), file=sys.stderr)
    picks = result["picks"]
    if args.json:
        print(json.dumps(picks))
    else:
        for quadrant, song in picks.items():
            print(f"{quadrant}\t{song if song is not None else '-'}")


if __name__ == "__main__":
    main_wrapper(main)
