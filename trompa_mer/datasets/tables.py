"""Reading the small CSV tables people write by hand or export from spreadsheets (playlists,
annotations): any of , ; tab as separator, a UTF-8 byte-order mark accepted, every failure a
MERError naming the file and what was expected."""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from ..errors import MERError


def read_csv_table(path, expected: str, noun: str = "CSV") -> pd.DataFrame:
    """The CSV at `path` as strings (header row first); `noun` names the file and `expected`
    says what it should hold, for the messages ("playlist", "a CSV with columns group, song")."""
    path = Path(path)
    if path.is_dir():
        raise MERError(f"{path}: is a folder (expected {expected})")
    if not path.is_file():
        raise MERError(f"{path}: {noun} file not found (expected {expected})")
    for sep in (None, ","):  # sniffed separator; a file it cannot sniff (one column) as ','
        try:
            return pd.read_csv(path, sep=sep, engine="python", dtype=str, skipinitialspace=True,
                               encoding="utf-8-sig")
        except csv.Error:
            continue
        except pd.errors.EmptyDataError:
            raise MERError(f"{path}: the file is empty (expected {expected})") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
            raise MERError(f"{path}: cannot parse as CSV ({' '.join(str(err).split())}; expected "
                           f"{expected})") from None
    raise MERError(f"{path}: cannot parse as CSV (expected {expected})")
