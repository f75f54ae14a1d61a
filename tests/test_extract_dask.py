"""extract_features.py --scheduler: extraction on a Dask distributed cluster (issue 22, item 4).

A LocalCluster of two worker processes on loopback TCP, reached by its address from a separate
`extract_features.py` process, as a remote cluster would be. Process workers (not threads in
the test's process): each imports trompa_mer and openSMILE itself and receives the task by
reference, as a real worker does; the cluster starts in ≈ 1 s and the whole file takes ≈ 12 s
on the shared 2-core machine."""
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT

pytest.importorskip("distributed")

RATE = 22050


def _run(*args):
    return subprocess.run([sys.executable, str(ROOT / "extract_features.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def _failed_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("failed:")]


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    # process workers, as a real cluster's: each imports trompa_mer and openSMILE itself
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp", host="127.0.0.1",
                      dashboard_address=":0") as local:  # any free port: not 8787, maybe in use
        yield local


@pytest.fixture
def audio(tmp_path):
    folder = tmp_path / "audio"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(22)
    for i, name in enumerate(["A.wav", "b.wav", "sub/C.wav", "d.wav"]):
        t = np.arange(int(rng.uniform(1.5, 3.0) * RATE)) / RATE
        clip = 0.4 * np.sin(2 * np.pi * (180 + 90 * i) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(str(folder / name), clip.astype(np.float32), RATE)
    (folder / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    return folder


def _songs_run_on(cluster) -> int:
    """How many songs the cluster's workers have finished (the scheduler counts the transitions
    of its tasks into each state; the broken file's task finishes too, returning its error)."""
    prefix = cluster.scheduler.task_prefixes.get("on_worker")
    return 0 if prefix is None else prefix.state_counts["memory"]


def test_cluster_extraction_equals_local_resumes_and_reports_failures(cluster, audio, tmp_path):
    local, dist = tmp_path / "local", tmp_path / "dist"
    res = _run("-i", audio, "-o", local, "-q")
    assert res.returncode == 1, res.stderr
    first = _run("-i", audio, "-o", dist, "--scheduler", cluster.scheduler_address)
    assert first.returncode == 1, first.stderr
    assert "4 extracted" in first.stdout and "0 already done" in first.stdout and "1 failed" in first.stdout
    failed = _failed_lines(first.stderr)
    assert len(failed) == 1 and "broken.wav" in failed[0], first.stderr
    assert "extracting features" in first.stderr  # the progress bar, on stderr
    assert _songs_run_on(cluster) == 5  # the cluster did the work, not this machine
    names = sorted(p.name for p in local.glob("*.csv"))
    assert names == ["a.csv", "b.csv", "c.csv", "d.csv"]
    assert sorted(p.name for p in dist.glob("*.csv")) == names
    for name in names:  # byte-identical to a local run
        assert (dist / name).read_bytes() == (local / name).read_bytes(), name
    assert not list(dist.glob(".*")), "no temporary files left"

    # resumed: nothing to extract
    (audio / "broken.wav").unlink()
    mtimes = {p.name: p.stat().st_mtime_ns for p in dist.glob("*.csv")}
    again = _run("-i", audio, "-o", dist, "--scheduler", cluster.scheduler_address, "-q")
    assert again.returncode == 0, again.stderr
    assert "0 extracted" in again.stdout and "4 already done" in again.stdout
    assert _songs_run_on(cluster) == 5
    assert {p.name: p.stat().st_mtime_ns for p in dist.glob("*.csv")} == mtimes

    # a missing and a truncated CSV are extracted again, the same bytes
    (dist / "a.csv").unlink()
    (dist / "c.csv").write_bytes((local / "c.csv").read_bytes()[:500])
    redo = _run("-i", audio, "-o", dist, "--scheduler", cluster.scheduler_address, "-q")
    assert redo.returncode == 0, redo.stderr
    assert "2 extracted (1 of them redone" in redo.stdout and "2 already done" in redo.stdout
    assert _songs_run_on(cluster) == 7
    for name in names:
        assert (dist / name).read_bytes() == (local / name).read_bytes(), name


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_scheduler_is_one_clear_error(audio, tmp_path):
    out = tmp_path / "feats"
    start = time.monotonic()
    res = _run("-i", audio, "-o", out, "--scheduler", f"tcp://127.0.0.1:{_free_port()}",
               "--scheduler-timeout", "2")
    assert time.monotonic() - start < 30
    assert res.returncode == 1
    assert res.stderr.startswith("error: cannot reach the Dask scheduler at") and res.stderr.count("\n") == 1, \
        res.stderr
    assert not list(out.glob("*.csv"))
    res = _run("-i", audio, "-o", out, "--scheduler", "scheduler-host:port")  # said at once, no wait
    assert res.returncode == 1 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith("error: --scheduler 'scheduler-host:port': not a Dask scheduler address")


def test_scheduler_refuses_options_it_cannot_honour(tmp_path, audio):
    res = _run("--help")
    assert "--scheduler ADDRESS" in res.stdout and "--scheduler-timeout SECONDS" in res.stdout
    res = _run("-i", audio, "-o", tmp_path / "f", "--scheduler", "tcp://127.0.0.1:1", "--jobs", "2")
    assert res.returncode == 2 and "--jobs and --scheduler" in res.stderr, res.stderr
    res = _run("-i", audio / "A.wav", "-o", tmp_path / "a.csv", "--scheduler", "tcp://127.0.0.1:1")
    assert res.returncode == 1 and "extracts a folder" in res.stderr and res.stderr.count("\n") == 1, res.stderr
    res = _run("--consolidate", tmp_path, "--scheduler", "tcp://127.0.0.1:1")
    assert res.returncode == 2 and "--scheduler extracts a folder" in res.stderr, res.stderr


def test_a_worker_with_other_versions_refuses_the_song(audio):
    """What each cluster task checks first: a worker whose openSMILE, NumPy, decoder, pandas or
    package differs from the client's reports the song instead of extracting it."""
    from trompa_mer import extract_dask
    from trompa_mer.features import extract_table

    wav = str(audio / "A.wav")
    table, error = extract_dask.on_worker(extract_table, extract_dask.environment(), wav)
    assert error is None and len(table) > 0
    client = {**extract_dask.environment(), "opensmile": "0.0.1"}
    table, error = extract_dask.on_worker(extract_table, client, wav)
    installed = extract_dask.environment()["opensmile"]
    assert table is None and f"a worker has opensmile {installed} (the client: 0.0.1)" in error and wav in error


def _refuse_to_load():
    raise RuntimeError("this task cannot be loaded\nhere")


class _Unloadable:
    """A task the cluster cannot deserialize, as on a scheduler or worker without the package."""

    def __reduce__(self):
        return _refuse_to_load, ()


def test_songs_the_cluster_loses_are_one_line_each_and_many_in_a_row_stop_the_run(cluster, tmp_path):
    import io

    from trompa_mer import extract_dask
    from trompa_mer.errors import MERError

    def never(table, path):
        raise AssertionError("nothing to write")

    todo = [(str(tmp_path / f"s{i}.wav"), str(tmp_path / f"s{i}.csv")) for i in range(40)]
    with extract_dask.cluster_runner(cluster.scheduler_address, 10, io.StringIO(), _Unloadable(), never) as run:
        few = list(run(todo[:3]))
        assert len(few) == 3 and all("not extracted on the cluster" in e and "\n" not in e for _, e in few), few
        with pytest.raises(MERError, match=f"lost {extract_dask.GIVE_UP_AFTER} songs in a row"):
            list(run(todo))


def test_cluster_extraction_refreshes_the_sharded_store_as_a_local_one(cluster, audio, tmp_path):
    """--consolidate after a cluster extraction: the same shards, byte for byte, as a local
    extraction's; a song extracted again rewrites its shard only."""
    import json
    import os

    (audio / "broken.wav").unlink()
    local, dist = tmp_path / "local", tmp_path / "dist"
    env = {**os.environ, "MER_POOL_SHARD_SONGS": "2"}

    def run(*args):
        return subprocess.run([sys.executable, str(ROOT / "extract_features.py"), *map(str, args)],
                              capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)

    assert run("-i", audio, "-o", local, "-q", "--consolidate").returncode == 0
    res = run("-i", audio, "-o", dist, "--scheduler", cluster.scheduler_address, "-q", "--consolidate")
    assert res.returncode == 0, res.stderr
    assert "pool " in res.stdout and "4 songs" in res.stdout

    def shards(folder):
        manifest = json.loads((folder / ".pool_shards" / "manifest.json").read_text())
        return manifest, {n: (folder / ".pool_shards" / n).read_bytes() for n in manifest["shards"]}

    (m_local, b_local), (m_dist, b_dist) = shards(local), shards(dist)
    assert b_local == b_dist and len(b_dist) == 2
    assert {n: (r["csvs"], r["lengths"], r["sha256"]) for n, r in m_local["shards"].items()} == \
        {n: (r["csvs"], r["lengths"], r["sha256"]) for n, r in m_dist["shards"].items()}
    # one song extracted again on the cluster: only its shard is rewritten
    before = {n: (dist / ".pool_shards" / n).stat().st_mtime_ns for n in m_dist["shards"]}
    (dist / "d.csv").unlink()
    res = run("-i", audio, "-o", dist, "--scheduler", cluster.scheduler_address, "-q", "--consolidate")
    assert res.returncode == 0 and "1 extracted" in res.stdout, res.stderr
    m_after, b_after = shards(dist)
    kept = [n for n, r in m_dist["shards"].items() if "d.csv" not in r["csvs"]]
    assert len(kept) == 1 and (dist / ".pool_shards" / kept[0]).stat().st_mtime_ns == before[kept[0]]
    assert sorted(b_after.values()) == sorted(b_local.values())  # the same bytes again
