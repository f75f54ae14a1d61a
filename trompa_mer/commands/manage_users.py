"""Manage listeners: list them, show one's rounds, export their answers, undo their last
round, delete one.

  python manage_users.py list [--json]
  python manage_users.py show -i USER_ID [--json]
  python manage_users.py export -i USER_ID [-o FILE.csv|FILE.json|-] [--format csv|json] [--scale LOW..HIGH]
  python manage_users.py undo -i USER_ID
  python manage_users.py delete -i USER_ID --yes
  python manage_users.py gc
"""
import argparse
import json
import sys

from trompa_mer.commands import settings
from trompa_mer import manage
from trompa_mer.cli import add_scale, add_user_id, main_wrapper
from trompa_mer.errors import MERError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Listener management over the users folder (MER_USERS_DIR, default "
                    "models/users).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="every listener: id, mode, round, answers, pending, "
                                               "committee size", description="List every listener.")
    listing.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    show = commands.add_parser("show", help="one listener's rounds (history)",
                               description="Show one listener's rounds: asked, answered, skipped, when.")
    add_user_id(show)
    show.add_argument("--json", action="store_true", help="print the rounds as JSON")
    export = commands.add_parser("export", help="one listener's answers as CSV or JSON",
                                 description="Export one listener's answers: song, quadrant, arousal, "
                                             "valence (empty for a quadrant-only answer), round, "
                                             "answered_at.")
    add_user_id(export)
    export.add_argument("-o", "--output", default="-",
                        help="a .csv or .json file (its folder must exist), or - for stdout (default)")
    export.add_argument("--format", choices=manage.EXPORT_FORMATS, default=None,
                        help="csv or json (default: the output's suffix; csv on stdout)")
    add_scale(export, "arousal and valence")
    undo = commands.add_parser("undo", help="take back the listener's last round",
                               description="Take back the listener's last answered round: the "
                                           "committee before it comes back exactly, its answers "
                                           "are withdrawn and its songs are pending again. One "
                                           "round back only.")
    add_user_id(undo)
    delete = commands.add_parser("delete", help="forget a listener (their folder, nothing else)",
                                 description="Delete the listener's folder, then remove the shared "
                                             "store's files no other listener refers to.")
    add_user_id(delete)
    delete.add_argument("--yes", action="store_true", help="required: deleting cannot be undone")
    commands.add_parser("gc", help="remove the shared store's files no listener refers to",
                        description="Remove the shared store's files (models/users/.shared) that no "
                                    "listener's committee refers to (after folders were removed by hand).")
    return parser.parse_args(argv)


def _print_list(rows, as_json):
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print(f"no users in {settings.USERS_DIR}")
        return
    header = f"{'user':<20} {'mode':<6} {'round':>5} {'answers':>7} {'pending':>7} {'members':>7}"
    print(header)
    for row in rows:
        if "problem" in row:
            print(f"{row['user_id']:<20} unreadable: {row['problem']}")
            continue
        mode = row["mode"] + ("+b" if row["balanced"] else "")
        print(f"{row['user_id']:<20} {mode:<6} {row['round']:>5} {row['answers']:>7} {row['pending']:>7} "
              f"{row['members']:>7}")


def _print_history(info, as_json):
    if as_json:
        print(json.dumps(info, indent=2))
        return
    print(f"user {info['user_id']}: mode {info['mode']}{' (balanced)' if info['balanced'] else ''}, "
          f"created {info['created']}, {info['round']} rounds, {info['answers']} answers, "
          f"{info['skipped']} skipped")
    for entry in info["history"]:
        answers = ", ".join(f"{s}={q}" for s, q in entry.get("answers", {}).items())
        skipped = f"; skipped {', '.join(entry['skipped'])}" if entry.get("skipped") else ""
        print(f"  round {entry.get('round')}: asked {entry.get('asked_at')}, answered {entry.get('answered_at')} "
              f"({entry.get('update')} update): {answers}{skipped}")
    if info["pending"]:
        print(f"  pending since {info['pending_since']}: {', '.join(info['pending'])}")


def main(argv=None):
    args = parse_args(argv)
    users, timeout = settings.USERS_DIR, settings.LOCK_TIMEOUT_S
    if args.command == "list":
        _print_list(manage.list_users(users), args.json)
    elif args.command == "show":
        _print_history(manage.user_history(users, args.user_id, timeout), args.json)
    elif args.command == "export":
        result = manage.export_answers(users, args.user_id, args.output, args.format, args.scale, timeout)
        if result["output"] is None:
            sys.stdout.write(result["text"])
        else:
            print(f"user {args.user_id}: {result['answers']} answers -> {result['output']}")
    elif args.command == "undo":
        result = manage.undo_round(users, args.user_id, timeout)
        print(f"user {args.user_id}: round {result['undone']} undone, back at round {result['iteration']}; "
              f"{len(result['withdrawn'])} answers withdrawn, {len(result['pending'])} songs pending again "
              f"({', '.join(result['pending'])}): answer them with retrain_model.py")
    elif args.command == "delete":
        if not args.yes:
            raise MERError(f"delete: user {args.user_id!r} would be forgotten for good; add --yes to delete")
        result = manage.delete_user(users, args.user_id, timeout)
        print(f"user {args.user_id} deleted ({result['folder']})")
        _print_garbage(result)
    else:
        _print_garbage({"garbage": manage.collect_garbage(users, timeout)})


def _print_garbage(result):
    if "garbage_error" in result:
        print(f"warning: shared files not collected: {result['garbage_error']} (run manage_users.py gc "
              f"after fixing it)", file=sys.stderr)
        return
    garbage = result["garbage"]
    print(f"shared store: {garbage['removed']} files no user refers to removed "
          f"({garbage['freed_bytes'] / 1e6:.2f} MB), {garbage['kept']} kept")


if __name__ == "__main__":
    main_wrapper(main)
