#!/usr/bin/env python3
"""Retrain a listener's committee on their answers to the pending songs.

  python retrain_model.py -i USER_ID -a ANNOTATIONS.json [--update {batch,cumulative}]

ANNOTATIONS.json: {"song_id": "Q1".."Q4" | {"arousal": a, "valence": v}, ...} (a, v in -1..1)
"""
# The step lives in the package (trompa_mer/commands/retrain_model.py), so the installed command
# `trompa-mer retrain-model` and this script are one program.
from trompa_mer.commands.retrain_model import main, parse_args  # noqa: F401
from trompa_mer.cli import main_wrapper

if __name__ == "__main__":
    main_wrapper(main)
