#!/usr/bin/env python3
"""Predict emotion quadrants for feature CSVs or audio files.

  python predict_emotion.py -i FEATURES.csv|AUDIO -o OUT.json|- [-m MODEL_FILE|default | -u USER_ID [--song-id ID]]
  python predict_emotion.py -i FOLDER|FILE... -o OUT_FOLDER|OUT.jsonl|- [-m ...|-u USER_ID] [--scale LOW..HIGH]
"""
# The step lives in the package (trompa_mer/commands/predict_emotion.py), so the installed command
# `trompa-mer predict-emotion` and this script are one program.
from trompa_mer.commands.predict_emotion import main, parse_args  # noqa: F401
from trompa_mer.cli import main_wrapper

if __name__ == "__main__":
    main_wrapper(main)
