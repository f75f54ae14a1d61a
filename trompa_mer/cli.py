"""What every top-level script shares: one-line errors, exit codes, argparse types."""
from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback

from .errors import MERError


def main_wrapper(fn) -> None:
    """Run `fn()`; report any failure as one stderr line `error: ...` and exit 1.

    A MERError is the message itself; an OSError (disk full, permission denied, a missing
    file) names the file and the system's reason; anything else is one line naming the
    exception (MER_DEBUG=1 shows the traceback too). Warnings (trompa_mer.errors.warn) are
    printed as `warning: ...` lines."""
    import warnings

    from .errors import MERWarning

    def show(message, category, *_args, **_kwargs):
        if issubclass(category, MERWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            print(f"warning: {category.__name__}: {message}", file=sys.stderr)

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        code = fn()
    except MERError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as err:
        print(f"error: {os_error_line(err)}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:  # one line for the platform; the traceback on request
        if os.environ.get("MER_DEBUG"):
            traceback.print_exc()
        print(f"error: unexpected {type(err).__name__}: {' '.join(str(err).split())} "
              f"(MER_DEBUG=1 shows the traceback)", file=sys.stderr)
        sys.exit(1)
    finally:
        warnings.showwarning = previous
    sys.exit(code or 0)


def os_error_line(err: OSError) -> str:
    """An OSError as one line: the file, the system's reason, what it means here."""
    where = err.filename if err.filename is not None else "file system"
    if isinstance(err, FileNotFoundError):
        return f"{where}: no such file or folder"
    reason = err.strerror or str(err)
    hint = ""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "; free some space and run the command again (what was already saved is unchanged)"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "; check the folder's permissions"
    return " ".join(f"{where}: {reason}{hint}".split())


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def candidates_count(text: str):
    """--candidates: a positive whole number of songs, or 'all' (None: every song)."""
    if text.strip().lower() == "all":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number of songs or 'all', got {text!r}")


def user_parser(description: str) -> argparse.ArgumentParser:
    """The parser of a per-user script: its description and the -i/--user-id flag."""
    parser = argparse.ArgumentParser(description=description)
    add_user_id(parser)
    return parser


def add_user_id(parser, flag: str = "-i", required: bool = True,
                help_text: str = "the listener's id: letters, digits, '_' and '-' only") -> None:
    """The user id flag of every per-user script: -i (predict_emotion: -u), --user-id, and the
    original's spellings --user_id and --input_user (how the original platform calls
    create_user.py, get_hard_tracks.py and retrain_model.py)."""
    parser.add_argument(flag, "--user-id", "--user_id", "--input_user", dest="user_id", required=required,
                        help=help_text)


def scale_type(text: str):
    """argparse type of --scale LOW..HIGH (scales.Scale)."""
    from .scales import Scale

    try:
        return Scale.parse(text, "scale")
    except MERError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("scale: "))


def add_scale(parser, what: str) -> None:
    """The --scale flag: `what` says which values it applies to."""
    parser.add_argument("--scale", type=scale_type, default=None, metavar="LOW..HIGH",
                        help=f"{what} on this scale instead of -1..1 (e.g. 1..9: 1 is -1, 5 the "
                             f"neutral 0, 9 is +1); stored on -1..1 inside. A scale starting with "
                             f"'-' is written --scale=-3..3")


def skipped_note(skipped: dict, inputs: int = 1) -> str:
    """One stderr line naming the members left out and why."""
    names = ", ".join(sorted(skipped))
    why = next(iter(skipped.values())) if isinstance(next(iter(skipped.values())), str) else None
    if why is None:  # batch: {name: [inputs]}
        count = max(len(v) for v in skipped.values())
        return (f"note: member(s) {names} skipped for {count} of {inputs} inputs: they read audio and those "
                f"inputs are feature CSVs (give the audio files to use them)")
    return f"note: member(s) {names} skipped: {why}"
