#!/usr/bin/env python3
"""Propose the songs a listener should annotate next (the most ambiguous for their mode).

  python get_hard_tracks.py -i USER_ID -q NUM_TRACKS [--strategy NAME] [--candidates N|all] [--json]
"""
# The step lives in the package (trompa_mer/commands/get_hard_tracks.py), so the installed command
# `trompa-mer get-hard-tracks` and this script are one program.
from trompa_mer.commands.get_hard_tracks import main, parse_args  # noqa: F401
from trompa_mer.cli import main_wrapper

if __name__ == "__main__":
    main_wrapper(main)
