"""Shared fixtures of the loop tests: a small generated pool, a tiny committee, annotations,
playlists, and a runner for the top-level scripts. (No tests here; imported by test_loop*.)"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
N_SONGS = 24
N_WINDOWS = 6
TEST_USER = "alice"


def song_ids(n=N_SONGS):
    return [f"song{i:02d}" for i in range(n)]


def true_quadrant(song: str) -> int:
    return int(song[-2:]) % 4


def make_windows(rng, quadrant: int, n: int) -> np.ndarray:
    from trompa_mer.features import FEATURE_NAMES

    X = rng.normal(size=(n, len(FEATURE_NAMES))).astype(np.float32)
    X[:, quadrant * 5:(quadrant + 1) * 5] += 1.5  # each quadrant shifts its own five columns
    return X


def write_pool(feats_dir: Path, n_songs=N_SONGS, n_windows=N_WINDOWS, seed=0) -> None:
    from trompa_mer.features import FEATURE_NAMES, write_feature_csv

    rng = np.random.default_rng(seed)
    feats_dir.mkdir(parents=True, exist_ok=True)
    for song in song_ids(n_songs):
        table = pd.DataFrame(make_windows(rng, true_quadrant(song), n_windows), columns=FEATURE_NAMES)
        table.insert(0, "frameTime", np.arange(n_windows) * 0.5)
        write_feature_csv(table, feats_dir / f"{song}.csv")


def build_committee(directory: Path, seed=1) -> None:
    from trompa_mer.examples import train_committee

    rng = np.random.default_rng(seed)
    # a weak committee: trained on few, noisy windows so the listener has something to teach
    y = rng.integers(0, 4, 160)
    X = np.concatenate([make_windows(rng, q, 1) for q in y])
    X += rng.normal(scale=2.0, size=X.shape).astype(np.float32)
    train_committee(X, y, directory, xgb_rounds=5, xgb_update_rounds=2)


def write_annotations(path: Path) -> pd.DataFrame:
    """Five other listeners and TEST_USER; the last four pool songs have no annotation."""
    rng = np.random.default_rng(2)
    rows = []
    for user in ["u1", "u2", "u3", "u4", "u5", TEST_USER]:
        for song in song_ids()[:N_SONGS - 4]:
            if rng.random() < 0.7:
                rows.append((user, song.upper(), f"Q{rng.integers(1, 5)}"))
    table = pd.DataFrame(rows, columns=["user", "song", "quadrant"])
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return table


def write_playlists(path: Path) -> None:
    rows = [("g1", s) for s in song_ids()[:6]] + [("g2", s) for s in song_ids()[6:]] + [("g3", "nofeatures")]
    pd.DataFrame(rows, columns=["group", "song"]).to_csv(path, index=False)


@pytest.fixture(scope="session")
def loop_assets(tmp_path_factory):
    """Pool + committee + annotations + playlists built once per session (read-only)."""
    base = tmp_path_factory.mktemp("loop_assets")
    write_pool(base / "data" / "feats")
    build_committee(base / "pretrained")
    write_annotations(base / "data" / "annotations.csv")
    write_playlists(base / "data" / "playlists.csv")
    return base


def env_for(base: Path, **extra) -> dict:
    """An environment pointing the scripts at assets under `base` (data/, pretrained/), plus
    `extra` variables; the folders the tests look into beside it."""
    env = dict(os.environ)
    env.update({
        "MER_MODELS_DIR": str(base / "models"),
        "MER_DATA_DIR": str(base / "data"),
        "MER_PRETRAINED_DIR": str(base / "pretrained"),
        "MER_ANNOTATIONS": str(base / "data" / "annotations.csv"),
        "MER_LOCK_TIMEOUT": "60",
        "PYTHONPATH": str(ROOT),
    })
    for var in ("MER_USERS_DIR", "MER_FEATS_DIR", "MER_PLAYLISTS", "MER_SEED"):
        env.pop(var, None)
    env.update(extra)
    return {"env": env, "dir": base, "users": base / "models" / "users", "feats": base / "data" / "feats"}


@pytest.fixture
def loop_env(loop_assets, tmp_path):
    """A fresh copy of the assets and an environment pointing the scripts at it."""
    shutil.copytree(loop_assets / "data", tmp_path / "data")
    shutil.copytree(loop_assets / "pretrained", tmp_path / "pretrained")
    return env_for(tmp_path)


def run(env, script, *args, cwd=None, timeout=180):
    """Run a top-level script as a listener's platform would."""
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], env=env["env"],
                          cwd=cwd or env["dir"], capture_output=True, text=True, timeout=timeout)


def ok(env, script, *args):
    result = run(env, script, *args)
    assert result.returncode == 0, f"{script} {args} failed: {result.stderr}"
    return result


def snapshot(folder: Path) -> dict:
    """Every file under `folder` (relative path -> bytes); {} when it does not exist."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_refused(result, *needles):
    """Exit status 1 and exactly one line on stderr that mentions every needle."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    return lines[0]


def read_state(env, user=TEST_USER) -> dict:
    return json.loads((env["users"] / user / "state.json").read_text())


def retrain_failing_each_rename(env, monkeypatch, answers, after_failure) -> int:
    """Retrain TEST_USER on `answers` with the n-th os.replace failing (disk full), for
    n = 1, 2, ... until a retrain gets through; after each failure state.json must be
    byte-identical, then after_failure(n) checks more. Returns the n that got through."""
    from trompa_mer import loop

    real_replace = os.replace
    state_path = env["users"] / TEST_USER / "state.json"
    n = 0
    while True:
        n += 1
        calls = {"count": 0}

        def failing(src, dst, *args, **kwargs):
            calls["count"] += 1
            if calls["count"] == n:
                raise OSError(28, "No space left on device (simulated)")
            return real_replace(src, dst, *args, **kwargs)

        before = state_path.read_bytes()
        monkeypatch.setattr(os, "replace", failing)
        try:
            loop.retrain(TEST_USER, answers, env["users"], env["feats"])
            return n
        except OSError:
            pass
        finally:
            monkeypatch.setattr(os, "replace", real_replace)
        assert state_path.read_bytes() == before, f"state changed when rename {n} failed"
        after_failure(n)


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def call(env, script, *args):
    """Run a script's main() in this process: the same argument parsing and error path as
    `run` (main_wrapper, exit status, stderr) without paying the interpreter start-up.
    The settings module is re-read under the test's environment and restored afterwards."""
    import contextlib
    import importlib
    import importlib.util
    import io

    import settings
    from trompa_mer.cli import main_wrapper

    saved = dict(os.environ)
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    try:
        os.environ.clear()
        os.environ.update(env["env"])
        importlib.reload(settings)
        spec = importlib.util.spec_from_file_location(f"_script_{Path(script).stem}", ROOT / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main_wrapper(lambda: module.main([str(a) for a in args]))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        importlib.reload(settings)
    return Result(code, stdout.getvalue(), stderr.getvalue())


def call_ok(env, script, *args):
    result = call(env, script, *args)
    assert result.returncode == 0, f"{script} {args} failed: {result.stderr}"
    return result
