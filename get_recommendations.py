#!/usr/bin/env python3
"""Recommend, for each quadrant, the song of a playlist group the listener's committee rates highest
(a --crowd-member listener's crowd-aware members).

  python get_recommendations.py -i USER_ID -r GROUP [--playlists CSV] [--json]
"""
# The step lives in the package (trompa_mer/commands/get_recommendations.py), so the installed command
# `trompa-mer get-recommendations` and this script are one program.
from trompa_mer.commands.get_recommendations import main, parse_args  # noqa: F401
from trompa_mer.cli import main_wrapper

if __name__ == "__main__":
    main_wrapper(main)
