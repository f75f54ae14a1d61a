#!/usr/bin/env python3
"""Create a listener's folder: a copy of the committee, the query mode and the state.

  python create_user.py -i USER_ID -m {mc,hc,mix,rand} [--balanced] [--committee DIR]
                        [--annotations FILE] [--crowd-member] [--exist-ok]
"""
# The step lives in the package (trompa_mer/commands/create_user.py), so the installed command
# `trompa-mer create-user` and this script are one program.
from trompa_mer.commands.create_user import main, parse_args  # noqa: F401
from trompa_mer.cli import main_wrapper

if __name__ == "__main__":
    main_wrapper(main)
