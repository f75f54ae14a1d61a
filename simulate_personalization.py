#!/usr/bin/env python3
"""Offline personalization experiments: simulate each listener answering the committee's queries
with their own recorded labels, and report per-user learning curves, F1, paired tests and plots.

Example (the TROMPA-MER benchmark, reads ../shared/data):
    python simulate_personalization.py --preset trompa-benchmark -o results/trompa
"""
# The step lives in the package (trompa_mer/commands/simulate_personalization.py), so the installed command
# `trompa-mer simulate-personalization` and this script are one program.
from trompa_mer.commands.simulate_personalization import build_parser, main  # noqa: F401
from trompa_mer.cli import main_wrapper

if __name__ == "__main__":
    main_wrapper(main)
