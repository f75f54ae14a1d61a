"""Crash-safe writes: a reader sees the old file or the new one, never half of either."""
from __future__ import annotations

import contextlib
import contextvars
import errno
import fcntl
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from .errors import MERError


def _umask_mode() -> int:
    # mkstemp creates files readable by their owner only; give the renamed file the mode a
    # plain open() would, so a committee written on a host stays readable in a container.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# folders being filled that nothing names yet (synced_once): a file renamed into one of them
# skips the fsync of its folder, which synced_once does once for all of them on exit
_synced_once: contextvars.ContextVar = contextvars.ContextVar("synced_once", default=frozenset())


@contextlib.contextmanager
def synced_once(folder):
    """For a new folder that nothing names yet (a committee being saved before it is swapped
    into place): inside the block, a file written atomically straight into `folder` is still
    fsynced itself, but the folder's own fsync, after each rename, is done once on exit. Its
    entries are then durable before anything renames the folder into place; a failure inside
    leaves a folder the caller discards anyway. (A committee's save fsynced its folder once
    per file, about 25 times.)"""
    folder = os.path.abspath(folder)
    token = _synced_once.set(_synced_once.get() | {folder})
    try:
        yield
    finally:
        _synced_once.reset(token)
    fsync_dir(Path(folder))


@contextlib.contextmanager
def _renamed_into_place(path: Path, prefix: str, suffix: str):
    """Yield a temporary file name beside `path`; on success fsync it and rename it over
    `path`, on any failure remove it."""
    if path.is_dir():
        raise MERError(f"{path}: is a folder (expected a file name to write)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    except OSError as err:  # name the file asked for, not the temporary beside it
        raise MERError(f"{path}: cannot write here ({err.strerror or err})") from None
    os.fchmod(fd, _umask_mode())
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        if os.path.abspath(path.parent) not in _synced_once.get():
            fsync_dir(path.parent)
    except OSError as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if err.errno is not None and (err.filename is None or str(err.filename) == str(tmp)):  # name ours
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    except Exception as err:
        # a library writing by file name (XGBoost, torch, skops) reports a full disk its own way
        # (XGBoost: a C++ check failure with a stack trace); judged before the partial file goes
        full = not isinstance(err, MERError) and disk_nearly_full(path.parent)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from err
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# a writer that fails with less than this left on its file system is taken to have run out
NEARLY_FULL_BYTES = 1 << 20


def disk_nearly_full(folder) -> bool:
    """Whether the file system holding `folder` has less than NEARLY_FULL_BYTES available."""
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):
        return False
    return stats.f_bavail * stats.f_frsize < NEARLY_FULL_BYTES


@contextlib.contextmanager
def atomic_open(path, mode: str = "w", **kwargs):
    """Open a temporary file beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    with _renamed_into_place(path, f".{path.name}.", ".tmp") as tmp:
        with open(tmp, mode, **kwargs) as handle:
            yield handle


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path` for a library that writes by file name.

    The temporary name keeps the final suffix, because some writers (XGBoost, torch) choose
    the format by it.
    """
    path = Path(path)
    with _renamed_into_place(path, f".{path.stem}.", f".tmp{path.suffix}") as tmp:
        yield tmp


def require_folder_of(path, flag: str = "-o/--output") -> None:
    """Refuse an output file whose folder does not exist (or is a file): a command never
    creates it silently, where a mistyped path would scatter results nobody finds."""
    folder = Path(path).parent
    if folder.is_dir():
        return
    if folder.exists():
        raise MERError(f"{flag} {path}: cannot write here: {folder} is a file, not a folder")
    raise MERError(f"{flag} {path}: folder {folder} does not exist (create it first)")


def write_text(path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_bytes(path, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_json(path, obj, indent: int | None = 2) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=indent)
        handle.write("\n")


def read_json_object(path) -> dict:
    """A JSON object from a file this package wrote (state, manifests); MERError naming the
    file when it is not valid JSON or not an object."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MERError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise MERError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def replace_dir(new_dir, final_dir) -> None:
    """Swap a fully written folder into place.

    The old folder is renamed aside first and removed after the new one is in place, so at
    every instant `final_dir` is either the complete old folder or the complete new one, apart
    from the moment between the two renames; `recover_dir` finishes an interrupted swap.
    """
    new_dir, final_dir = Path(new_dir), Path(final_dir)
    old = final_dir.with_name(final_dir.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final_dir.exists():
        os.replace(final_dir, old)
    os.replace(new_dir, final_dir)
    fsync_dir(final_dir.parent)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def recover_dir(final_dir) -> None:
    """Finish a swap that a crash interrupted between its two renames."""
    final_dir = Path(final_dir)
    old = final_dir.with_name(final_dir.name + ".old")
    if not final_dir.exists() and old.exists():
        os.replace(old, final_dir)


@contextlib.contextmanager
def flock(path: Path, who: str, timeout: float, shared: bool, poll: float = 0.05):
    """An flock on `path` (created if missing), waited for up to `timeout` seconds, then a
    MERError saying `who` is busy. The kernel releases it when the holder exits or is killed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _wait_for_flock(fd, path, who, timeout, shared, poll)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _wait_for_flock(fd: int, path: Path, who: str, timeout: float, shared: bool, poll: float) -> None:
    # apart from flock's generator: mutmut does not mutate decorated functions
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    deadline = time.monotonic() + max(0.0, float(timeout))
    while True:
        try:
            fcntl.flock(fd, mode)
            return
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            if time.monotonic() >= deadline:
                raise MERError(
                    f"{who} is busy: another process holds {path} "
                    f"(waited {timeout:g} s, setting MER_LOCK_TIMEOUT); try again later") from None
            time.sleep(poll)
