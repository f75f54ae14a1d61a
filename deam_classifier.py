#!/usr/bin/env python3
"""Pre-train and cross-validate committee members on a corpus; save the committee.

  python deam_classifier.py -cv 5 -m xgb                      # Emotify, report only
  python deam_classifier.py --dataset 4q -m xgb,musicnn --window-stride 2 -o models/pretrained  # the default committee
  python deam_classifier.py --dataset 4q -m sgd,xgb --window-stride 2 -o models/pretrained-features  # features only
  python deam_classifier.py --dataset 4q --protocol paper -cv 10 -m sgd,xgb   # comparable with Panda et al. 2018
  python deam_classifier.py -m all -o DIR                                     # the Emotify committee
  python deam_classifier.py --dataset deam --deam-features DIR -m gnb,sgd,rf
  python deam_classifier.py --task regression -cv 5                  # arousal/valence, Emotify
  python deam_classifier.py --task regression -m all,all-av          # regressors beside classifiers
"""
# The step lives in the package (trompa_mer/commands/deam_classifier.py), so the installed command
# `trompa-mer deam-classifier` and this script are one program.
from trompa_mer.commands.deam_classifier import main, parse_args  # noqa: F401
from trompa_mer.cli import main_wrapper

if __name__ == "__main__":
    main_wrapper(main)
