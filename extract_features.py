#!/usr/bin/env python3
"""Extract window features (openSMILE IS13, 1 s windows, 0.5 s hop) from audio.

  python extract_features.py -i song.mp3 -o song.csv
  python extract_features.py -i AUDIO_DIR -o FEATS_DIR --jobs 2 [--consolidate]
  python extract_features.py -i AUDIO_DIR -o FEATS_DIR --scheduler tcp://HOST:8786
  python extract_features.py --consolidate FEATS_DIR
"""
# The step lives in the package (trompa_mer/commands/extract_features.py), so the installed command
# `trompa-mer extract-features` and this script are one program.
from trompa_mer.commands.extract_features import main, parse_args  # noqa: F401
from trompa_mer.cli import main_wrapper

if __name__ == "__main__":
    main_wrapper(main)
