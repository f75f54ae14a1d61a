"""Cache files that are verified before they are used (issue 23: nothing trusted unchecked).

A cache entry is an .npy file plus a record (a dict kept in a JSON file beside it) holding the
sha256 of the file's bytes and the file's identity on disk when it was written or last
verified: [inode, size, mtime_ns, ctime_ns]. Reading opens the file once: when its identity is
the recorded one the file has not been written to or replaced since (any write or rename onto
it moves its ctime or changes its inode, and no user can set a ctime back), so it is used as it
is (memory-mapped where asked); otherwise its bytes are hashed through that same handle and
used only when they match (the caller records the new identity). A mismatch raises
`Unverified`, which callers turn into one warning and a recompute.
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np


class Unverified(Exception):
    """A cache file that does not match its record (the message says how)."""


def identity(st) -> list:
    """[inode, size, mtime_ns, ctime_ns] of an os.stat result."""
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def sha256_path(path) -> str:
    """The file's sha256, read in blocks (the committee store's own hash function)."""
    from .checksummed import sha256_file

    return sha256_file(path)


def record_of(path) -> dict:
    """{"sha256", "stat"} of a file just written (hashed through one handle)."""
    with open(path, "rb") as handle:
        digest = hashlib.sha256()
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
        return {"sha256": digest.hexdigest(), "stat": identity(os.fstat(handle.fileno()))}


def open_npy(path: Path, record, mmap: bool = False):
    """(array, new identity to record or None) of the .npy at `path`, checked against
    `record` ({"sha256", "stat"}) as the module says. Raises Unverified."""
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
        raise Unverified("has no checksum in its record")
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise Unverified("is missing") from None
    with handle:
        current = identity(os.fstat(handle.fileno()))
        refreshed = data = None
        if current != record.get("stat"):
            digest = hashlib.sha256()
            if mmap:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
            else:
                data = handle.read()
                digest.update(data)
            if digest.hexdigest() != record["sha256"]:
                raise Unverified("does not match its checksum (changed or damaged after it was written)")
            refreshed = current
        try:
            if not mmap:
                if data is None:
                    data = handle.read()
                return np.load(io.BytesIO(data), allow_pickle=False), refreshed
            handle.seek(0)
            version = np.lib.format.read_magic(handle)
            shape, fortran, dtype = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                     else np.lib.format.read_array_header_2_0)(handle)
            array = np.memmap(handle, dtype=dtype, mode="r", shape=shape, offset=handle.tell(),
                              order="F" if fortran else "C")
            return array, refreshed
        except (OSError, ValueError) as err:
            raise Unverified(f"is not a readable array ({err})") from None
