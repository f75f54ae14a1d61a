"""Feature extraction on an existing Dask distributed cluster (`extract_features.py --scheduler`).

The workers decode and analyse the audio and send back each song's feature table; this process
(the client) writes every CSV with the same atomic writer as a local run (write_feature_csv).
So the files are written by one pandas (the client's: the bytes cannot depend on a worker's
installation), the output folder needs to be writable only here, a file is never half-written
by a worker that dies, and resuming (which songs are already complete) is decided here too.
The workers need the audio at the same absolute path as this machine sees it (a shared or
identically mounted folder) and the `trompa_mer` package importable (the project's Docker image,
or the same pinned requirements). A table is small (≈ 4 KB per second of audio), so sending it
back costs little next to the extraction.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from .errors import MERError

# this many songs in a row lost by the cluster itself (not failed by their own audio) stop the
# run: a scheduler or workers that cannot run the task at all would otherwise fail every song
GIVE_UP_AFTER = 16


def environment() -> dict:
    """The versions a song's features depend on: the decoder, openSMILE, the arithmetic, the
    package, and pandas (the table travels pickled)."""
    import numpy
    import opensmile
    import pandas
    import soundfile

    from . import __version__
    return {"trompa_mer": __version__, "opensmile": opensmile.__version__, "numpy": numpy.__version__,
            "pandas": pandas.__version__, "soundfile": soundfile.__version__,
            "libsndfile": soundfile.__libsndfile_version__}


def on_worker(task, expected: dict, audio_path: str):
    """A worker's task: `task(audio_path)`, unless this worker's environment() differs from the
    client's (`expected`), whose features could differ from a local run's: then the song's error."""
    theirs = environment()
    differ = [f"{name} {theirs.get(name)} (the client: {version})" for name, version in expected.items()
              if theirs.get(name) != version]
    if differ:
        return None, (f"{audio_path}: not extracted: a worker has {', '.join(differ)}, so its features "
                      f"could differ from a local run's; give the workers the client's pinned "
                      f"requirements (or the same image)")
    return task(audio_path)


def connect(address: str, timeout: float):
    """A Client of the scheduler at `address`, or a MERError that says why not within `timeout` s."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise MERError("--scheduler needs dask and distributed (pip install -r requirements.txt, or the "
                       "package's [cluster] extra)")
    from distributed.comm.addressing import parse_address, parse_host_port

    try:  # a malformed address is said so at once, not after the timeout
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls"):
            parse_host_port(location, 8786)
    except (ValueError, TypeError) as err:
        raise MERError(f"--scheduler {address!r}: not a Dask scheduler address ({err}); expected e.g. "
                       f"tcp://10.0.0.5:8786")
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        raise MERError(f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s "
                       f"({type(err).__name__}: {err}); is `dask scheduler` running there and its port "
                       f"open from this machine? (--scheduler-timeout sets the wait)")


@contextlib.contextmanager
def cluster_runner(address: str, timeout: float, log, task, write):
    """Connect to the cluster and yield run(todo): [(audio, csv)] -> (audio, error or None)
    per song as its CSV is written here. `task(audio_path)` runs on a worker and returns
    (table, None) or (None, error); `write(table, csv)` runs here (features.extract_table and
    features.write_feature_csv: passed in, so this module does not import features, which
    imports it). Closes the connection (not the cluster) at the end."""
    client = connect(address, timeout)
    # distributed's own log of a lost scheduler is tracebacks (the client's reconnection, its
    # batched stream); what they mean reaches the user as the songs' `failed:` lines and the
    # run's `error:` line, so its loggers are quiet while this client runs
    quiet = [logging.getLogger(name) for name in ["distributed", *logging.root.manager.loggerDict]
             if name.startswith("distributed.") or name == "distributed"]
    levels = [log_.level for log_ in quiet]
    for log_ in quiet:
        log_.setLevel(logging.CRITICAL)
    try:
        workers = client.scheduler_info().get("workers", {})
        threads = sum(w.get("nthreads", 1) for w in workers.values())
        if not workers:
            print(f"note: the scheduler at {address} has no workers yet; the songs wait for one",
                  file=log)
        # at most this many songs submitted at once: a million paths never sit in the scheduler
        in_flight = max(16, 4 * threads)
        yield lambda todo: _run(client, todo, in_flight, task, write)
    finally:
        client.close()
        for log_, level in zip(quiet, levels):
            log_.setLevel(level)


def _run(client, todo, in_flight: int, task, write):
    from dask.distributed import as_completed

    pending = iter(todo)
    submitted = {}
    expected = environment()

    def submit_next():
        item = next(pending, None)
        if item is None:
            return None
        # an absolute path: a worker's working folder is not this one
        future = client.submit(on_worker, task, expected, str(Path(item[0]).resolve()), pure=False)
        submitted[future.key] = item
        return future

    first = [f for f in (submit_next() for _ in range(in_flight)) if f is not None]
    finished = as_completed(first, loop=client.loop)  # this client, not a default one
    lost_in_a_row = 0
    for future in finished:
        src, dst = submitted.pop(future.key)
        try:
            table, error = future.result()
            lost_in_a_row = 0
        except Exception as err:  # the task itself was lost (a worker killed repeatedly, cancelled)
            reason = " ".join(f"{type(err).__name__}: {err}".split())  # one line
            lost_in_a_row += 1
            if lost_in_a_row >= GIVE_UP_AFTER:
                raise MERError(f"the cluster lost {lost_in_a_row} songs in a row, the last {src} ({reason}); "
                               f"stopping. The CSVs written are kept: the same command resumes. If the "
                               f"scheduler or the workers cannot deserialize the task, give them the "
                               f"client's environment (docs/scale.md)")
            table, error = None, f"{src}: not extracted on the cluster ({reason})"
        future.release()
        following = submit_next()
        if following is not None:
            finished.add(following)
        if error is None:
            try:
                write(table, dst)
            except (MERError, OSError) as err:
                error = f"{dst}: cannot write ({err})"
        yield src, error
