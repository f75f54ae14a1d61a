"""What every top-level script shares: one-line errors, exit codes, argparse types."""
from __future__ import annotations

import argparse
import sys

from .errors import MERError


def main_wrapper(fn) -> None:
    """Run `fn()`; report a MERError (or a missing file) as one stderr line and exit 1."""
    try:
        code = fn()
    except MERError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except FileNotFoundError as err:
        print(f"error: {err.filename}: no such file or folder", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def user_parser(description: str) -> argparse.ArgumentParser:
    """The parser of a per-user script: its description and the -i/--user-id flag."""
    parser = argparse.ArgumentParser(description=description)
    add_user_id(parser)
    return parser


def add_user_id(parser, flag: str = "-i", required: bool = True,
                help_text: str = "the listener's id: letters, digits, '_' and '-' only") -> None:
    """The user id flag of every per-user script: -i (predict_emotion: -u), --user-id, and
    --user_id, the original's spelling."""
    parser.add_argument(flag, "--user-id", "--user_id", dest="user_id", required=required, help=help_text)
