#!/usr/bin/env python3
"""Manage listeners: list them, show one's rounds, export their answers, undo their last
round, delete one.

  python manage_users.py list [--json]
  python manage_users.py show -i USER_ID [--json]
  python manage_users.py export -i USER_ID [-o FILE.csv|FILE.json|-] [--format csv|json] [--scale LOW..HIGH]
  python manage_users.py undo -i USER_ID
  python manage_users.py delete -i USER_ID --yes
  python manage_users.py gc
"""
# The step lives in the package (trompa_mer/commands/manage_users.py), so the installed command
# `trompa-mer manage-users` and this script are one program.
from trompa_mer.commands.manage_users import main, parse_args  # noqa: F401
from trompa_mer.cli import main_wrapper

if __name__ == "__main__":
    main_wrapper(main)
