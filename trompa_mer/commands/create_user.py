"""Create a listener's folder: a copy of the committee, the query mode and the state.

  python create_user.py -i USER_ID -m {mc,hc,mix,rand} [--balanced] [--committee DIR]
                        [--annotations FILE] [--crowd-member] [--exist-ok]
"""

from trompa_mer.commands import settings
from trompa_mer import loop
from trompa_mer.cli import main_wrapper, user_parser
from trompa_mer.consensus import MODES


def parse_args(argv=None):
    parser = user_parser(
        "Create models/users/<USER_ID>/ (root: MER_USERS_DIR) with a copy of the "
        "committee and the listener's state.")
    parser.add_argument("-m", "--mode", required=True, choices=MODES,
                        help="query mode: mc machine consensus, hc human consensus (other "
                             "listeners' annotations), mix the higher of both, rand random")
    parser.add_argument("--balanced", action="store_true",
                        help="ask the top q/4 songs per predicted quadrant instead of the top q")
    parser.add_argument("--committee", default=str(settings.PRETRAINED_DIR),
                        help=f"committee folder to copy (default {settings.PRETRAINED_DIR}, "
                             "MER_PRETRAINED_DIR)")
    parser.add_argument("--annotations", default=str(settings.ANNOTATIONS),
                        help="hc/mix and --crowd-member: multi-listener annotations, a TROMPA-MER "
                             "export (.json) or a CSV user,song,quadrant|arousal,valence (default "
                             f"{settings.ANNOTATIONS}, MER_ANNOTATIONS)")
    parser.add_argument("--crowd-member", action="store_true",
                        help="also pre-train crowd-aware members for this listener (other listeners' "
                             "quadrant frequencies + the song's audio features, leave-one-out on "
                             "--annotations with this listener's own annotations left out) and store "
                             "the crowd features of every pool song (MER_FEATS_DIR); the listener's "
                             "predictions then come from them (docs/loop.md). Needs --annotations")
    parser.add_argument("--exist-ok", action="store_true",
                        help="an existing user with the same mode is not an error (left unchanged)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    summary = loop.create_user(args.user_id, args.mode, settings.USERS_DIR, args.committee,
                               balanced=args.balanced, annotations_path=args.annotations,
                               exist_ok=args.exist_ok, lock_timeout=settings.LOCK_TIMEOUT_S,
                               crowd_member=args.crowd_member, feats_dir=settings.FEATS_DIR,
                               seed=settings.SEED)
    verb = "created" if summary["created"] else "already exists, left unchanged:"
    extra = ""
    if summary.get("consensus_songs") is not None:
        extra = f", human consensus of {summary['consensus_songs']} songs"
        if summary.get("pool_songs"):
            extra += (f" covering {summary['consensus_pool_songs']} of the {summary['pool_songs']} pool songs "
                      f"({100 * summary['consensus_pool_songs'] / summary['pool_songs']:.0f}%)")
        else:
            extra += " (no pool yet: coverage unknown)"
    if summary.get("crowd_members"):
        extra += (f", {summary['crowd_members']} crowd-aware members pre-trained on "
                  f"{summary['crowd_examples']} other listeners' annotations (crowd features of "
                  f"{summary['crowd_songs']} pool songs, {summary['crowd_songs_without_listeners']} "
                  f"without other listeners)")
    print(f"user {summary['user_id']} {verb} mode {summary['mode']}"
          f"{' (balanced)' if summary['balanced'] else ''}{extra} in {summary['folder']}")


if __name__ == "__main__":
    main_wrapper(main)
