"""Propose the songs a listener should annotate next (the most ambiguous for their mode).

  python get_hard_tracks.py -i USER_ID -q NUM_TRACKS [--strategy NAME] [--candidates N|all] [--json]
"""
import json
import sys

from trompa_mer.commands import settings
from trompa_mer import loop
from trompa_mer.cli import candidates_count, main_wrapper, positive_int, skipped_note, user_parser
from trompa_mer.strategies import DEFAULT_STRATEGY, STRATEGIES


def parse_args(argv=None):
    parser = user_parser(
        "Rank the pool songs (MER_FEATS_DIR) the listener has not been asked yet by "
        "the listener's query mode and record the top ones as pending. Asked again "
        "before the answers arrive, it returns the same pending songs.")
    parser.add_argument("-q", "--num-tracks", "--queries", dest="num_tracks", required=True,
                        type=positive_int, help="how many songs to propose")
    parser.add_argument("--strategy", default=None, metavar="NAME",
                        help=f"how an mc user's songs are ranked (default {DEFAULT_STRATEGY}, the mc "
                             f"ranking as always; other modes take only the default); recorded in the "
                             f"user's state and the round's history. "
                             + "; ".join(f"{s.name}: {s.summary}" for s in STRATEGIES.values())
                             + ". Any score strategy + '+density' (euclidean) or '+density-cosine' is "
                               "weighted by how typical the song is of the pool (docs/loop.md, "
                               "\"Query strategies\")")
    parser.add_argument("--candidates", type=candidates_count, default=settings.CANDIDATES,
                        help="mc, mix and --balanced with the default strategy: score a random sample of this many unlabelled "
                             "songs (drawn per user and round, recorded in the state) instead of all "
                             "of them, so a ranking's cost does not grow with the pool; 'all' ranks "
                             f"every song (default {settings.CANDIDATES}, MER_CANDIDATES; a pool with no "
                             "more unlabelled songs than this is ranked whole, as before)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list of song ids instead of one id per line")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    result = loop.get_hard_tracks(args.user_id, args.num_tracks, settings.USERS_DIR,
                                  settings.FEATS_DIR, lock_timeout=settings.LOCK_TIMEOUT_S,
                                  seed=settings.SEED, jobs=settings.JOBS, strategy=args.strategy,
                                  candidates=args.candidates,
                                  **settings.AUDIO_FOLDERS)
    if result.get("skipped_members"):
        print(skipped_note(result["skipped_members"]), file=sys.stderr)
    if result["reused"]:
        print(f"note: user {args.user_id} has {len(result['songs'])} pending songs from the last "
              f"call; answer them with retrain_model.py", file=sys.stderr)
    if args.json:
        print(json.dumps(result["songs"]))
    else:
        print("\n".join(result["songs"]))


if __name__ == "__main__":
    main_wrapper(main)
