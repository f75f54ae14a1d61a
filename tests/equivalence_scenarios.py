"""Scenarios whose outputs must not change when the package is restructured (issue 12).

Each scenario drives the top-level scripts in this process (test_loop_support.call) on the
generated loop assets and returns what a platform sees: the songs get_hard_tracks proposes,
the predict_emotion JSON, the recommendations. The simulator scenarios run a fixed-seed subset
of the TROMPA-MER benchmark preset (real data) and return results.csv.

The recorded outputs live in tests/golden/ and were written by the code *before* the
restructuring (`python tests/equivalence_scenarios.py --write`, commit noted in
tests/golden/README.md). tests/test_equivalence.py compares the current code against them.
Temporary paths are replaced by "<tmp>" so the records do not depend on where they ran.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from test_loop_support import (ROOT, build_committee, call, env_for, true_quadrant,  # noqa: E402
                               write_annotations, write_playlists, write_pool)

ROUNDS = 2
QUERIES = 4


def _env(base: Path) -> dict:
    return env_for(base, MER_PLAYLISTS=str(base / "data" / "playlists.csv"), MER_JOBS="1")


def make_assets(base: Path) -> dict:
    """The generated pool (24 songs), a tiny committee, annotations and playlists."""
    write_pool(base / "data" / "feats")
    build_committee(base / "pretrained")
    write_annotations(base / "data" / "annotations.csv")
    write_playlists(base / "data" / "playlists.csv")
    return _env(base)


def _ok(env, script, *args) -> str:
    result = call(env, script, *args)
    if result.returncode != 0:
        raise AssertionError(f"{script} {args} failed: {result.stderr}")
    return result.stdout


def _scrub(value, base: Path):
    """Replace the temporary folder by '<tmp>' and the checkout by '<repo>' in every string."""
    if isinstance(value, str):
        value = value.replace(str(base.resolve()), "<tmp>").replace(str(base), "<tmp>")
        return value.replace(str(ROOT), "<repo>")
    if isinstance(value, dict):
        return {k: _scrub(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, base) for v in value]
    return value


def _predict(env, user=None, model=None, song="song03") -> dict:
    out = env["dir"] / f"predict-{user or 'default'}-{song}.json"
    args = ["-i", env["feats"] / f"{song}.csv", "-o", out]
    if user:
        args += ["-u", user]
    if model:
        args += ["-m", model]
    _ok(env, "predict_emotion.py", *args)
    return _scrub(json.loads(out.read_text()), env["dir"])


def user_rounds(env, user: str, mode: str, *extra) -> dict:
    """create_user, then ROUNDS x (get_hard_tracks, retrain on 3 of 4 true answers); the picks,
    the prediction of two songs and the recommendations of a group after the rounds."""
    _ok(env, "create_user.py", "-i", user, "-m", mode, *extra)
    picks = []
    for round_no in range(ROUNDS):
        songs = _ok(env, "get_hard_tracks.py", "-i", user, "-q", QUERIES, "--json")
        songs = json.loads(songs)
        picks.append(songs)
        answers = {s: f"Q{true_quadrant(s) + 1}" for s in songs[:3]}
        _ok(env, "retrain_model.py", "-i", user, "-a", json.dumps(answers))
    state = json.loads((env["users"] / user / "state.json").read_text())
    recommended = json.loads(_ok(env, "get_recommendations.py", "-i", user, "-r", "g2", "--json"))
    return {"picks": picks, "answers": state["answers"], "skipped": state["skipped"],
            "committee": state["committee"], "crowd": state.get("crowd"),
            "predict_song03": _predict(env, user=user), "predict_song21": _predict(env, user=user, song="song21"),
            "recommend_g2": recommended}


def loop_outputs(base: Path) -> dict:
    """Every live-loop scenario on freshly generated assets under `base`."""
    env = make_assets(base)
    out = {
        "predict_default_song03": _predict(env),
        "predict_member_file": _predict(env, model=str(base / "pretrained" / "xgb_0.ubj")),
        "predict_shipped_committee": _predict(env, model=str(ROOT / "models" / "pretrained")),
    }
    for mode in ("mc", "hc", "mix", "rand"):
        out[f"user_{mode}"] = user_rounds(env, f"u_{mode}", mode)
    out["user_mc_balanced"] = user_rounds(env, "u_bal", "mc", "--balanced")
    out["user_mc_batch"] = _batch_rounds(env)
    out["user_crowd_mc"] = user_rounds(env, "u_crowd", "mc", "--crowd-member")
    out["user_crowd_hc"] = user_rounds(env, "u_crowdhc", "hc", "--crowd-member")
    return out


def _batch_rounds(env) -> dict:
    user = "u_batch"
    _ok(env, "create_user.py", "-i", user, "-m", "mc")
    picks = []
    for _ in range(ROUNDS):
        songs = json.loads(_ok(env, "get_hard_tracks.py", "-i", user, "-q", QUERIES, "--json"))
        picks.append(songs)
        _ok(env, "retrain_model.py", "-i", user, "--update", "batch",
            "-a", json.dumps({s: f"Q{true_quadrant(s) + 1}" for s in songs}))
    return {"picks": picks, "predict_song03": _predict(env, user=user)}


# --- the simulator on a fixed-seed subset of the TROMPA-MER benchmark ---------------------------
SIM_ARGS = ["--preset", "trompa-benchmark", "-n", "100", "-q", "4", "10", "-e", "3", "2",
            "--repeats", "1", "-j", "1", "--no-plots", "--quiet"]


def simulator_results(out_dir: Path, crowd: bool) -> pd.DataFrame:
    import subprocess

    env = _env(out_dir.parent)
    args = [*SIM_ARGS, "-o", str(out_dir)] + (["--crowd-member"] if crowd else [])
    run = subprocess.run([sys.executable, str(ROOT / "simulate_personalization.py"), *args],
                         env=env["env"], capture_output=True, text=True, timeout=1800)
    if run.returncode != 0:
        raise AssertionError(f"simulate_personalization.py {args} failed: {run.stderr[-2000:]}")
    return pd.read_csv(out_dir / "results.csv", dtype={"user": str})


def write_golden() -> None:
    import tempfile

    GOLDEN.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        outputs = loop_outputs(Path(tmp) / "loop")
    (GOLDEN / "loop.json").write_text(json.dumps(outputs, indent=1, sort_keys=True) + "\n")
    for crowd in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            table = simulator_results(Path(tmp) / "sim", crowd)
        table.to_csv(GOLDEN / f"simulate_{'crowd' if crowd else 'plain'}.csv", index=False)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/equivalence_scenarios.py --write  (rewrites tests/golden/)")
    write_golden()
