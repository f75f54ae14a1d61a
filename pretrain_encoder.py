#!/usr/bin/env python3
"""Pre-train a spectrogram encoder without labels (SCAE or CPC) on folders of audio.

  python pretrain_encoder.py --method scae --audio ../shared/data/speech/english --out models/encoders/scae-en
  python pretrain_encoder.py --method cpc --audio ../shared/data/speech/english \\
      --audio ../shared/data/speech/mandarin --hours-per-folder 0.475 --out models/encoders/cpc-mix

Writes <out>/encoder.pt (weights) + <out>/encoder.json (checksummed manifest), <out>/log.csv
(per epoch) and <out>/checkpoint.pt (after every epoch): running the same command again
resumes. See docs/speech_encoders.md.
"""
# The step lives in the package (trompa_mer/commands/pretrain_encoder.py), so the installed command
# `trompa-mer pretrain-encoder` and this script are one program.
from trompa_mer.commands.pretrain_encoder import main, parse_args  # noqa: F401
from trompa_mer.cli import main_wrapper

if __name__ == "__main__":
    main_wrapper(main)
