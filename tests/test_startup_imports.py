"""Start-up: a loop step imports only what it uses (issue 22). Each check runs in a fresh
interpreter, since this process has imported everything already."""
import json
import subprocess
import sys

import pytest

from test_loop_support import ROOT, TEST_USER, loop_assets, loop_env, ok  # noqa: F401

# heavy libraries none of the loop scripts needs just to start (or to print --help)
NEVER_AT_START = ("torch", "scipy.stats", "pandas", "sklearn", "xgboost", "skops", "opensmile",
                  "soundfile", "joblib", "dask", "matplotlib")
STEPS = ("create_user", "get_hard_tracks", "retrain_model", "predict_emotion", "get_recommendations")


def modules_after(code: str, env=None) -> set:
    """The heavy modules of NEVER_AT_START (and xgboost, sklearn) present after running `code`."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps(sorted(m for m in {list(NEVER_AT_START)!r} if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("step", STEPS)
def test_importing_a_step_pulls_in_no_heavy_library(step):
    assert modules_after(f"import {step}") == set()


@pytest.mark.parametrize("step", STEPS)
def test_help_pulls_in_no_heavy_library(step):
    code = (f"import runpy, sys, contextlib, io\nsys.argv = ['{step}.py', '--help']\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        runpy.run_path('{step}.py', run_name='__main__')\n"
            f"    except SystemExit:\n        pass")
    assert modules_after(code) == set()


def test_the_ranking_modules_pull_in_no_heavy_library():
    assert modules_after("from trompa_mer import loop, consensus, pool, pool_scoring, committee, users") == set()


def test_a_ranking_by_a_committee_without_tree_or_network_members_imports_neither(loop_env, tmp_path):
    """mc ranking with a linear-only committee: no xgboost, no torch (the committee's member
    kinds decide what is imported); a committee with XGBoost members does import xgboost."""
    from trompa_mer.committee import Committee

    env = loop_env
    full = Committee.load(env["dir"] / "pretrained")
    linear = [i for i, (_, m) in enumerate(full.members) if m.algorithm in ("gnb", "sgd")]
    assert linear and len(linear) < len(full.members)
    full.subset(linear).save(tmp_path / "linear")
    ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc", "--committee", tmp_path / "linear")
    ok(env, "create_user.py", "-i", "trees", "-m", "mc")
    from trompa_mer.pool import open_pool

    open_pool(env["feats"])  # the store consolidated (reading CSVs is pandas' job), as on a platform
    code = ("import runpy, sys, contextlib, io\nsys.argv = ['get_hard_tracks.py', '-i', '{user}', '-q', '2']\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        runpy.run_path('get_hard_tracks.py', run_name='__main__')\n"
            "    except SystemExit as exit_:\n        assert not exit_.code, exit_.code")
    linear_modules = modules_after(code.format(user=TEST_USER), env["env"])
    assert "xgboost" not in linear_modules and "torch" not in linear_modules
    # (scikit-learn, needed to load the GaussianNB members, imports pandas and scipy.stats itself)
    assert "xgboost" in modules_after(code.format(user="trees"), env["env"])


def test_a_new_users_ranking_from_cached_scores_imports_no_member_library(loop_env):
    """Once the default committee's scores of the pool are cached, a new user's ranking reads
    them with the committee's verified manifest alone: neither scikit-learn nor XGBoost."""
    env = loop_env
    ok(env, "create_user.py", "-i", "first", "-m", "mc")
    ok(env, "get_hard_tracks.py", "-i", "first", "-q", "2")  # scores the whole pool, cached
    ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    code = ("import runpy, sys, contextlib, io\nsys.argv = ['get_hard_tracks.py', '-i', '" + TEST_USER +
            "', '-q', '2']\nwith contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        runpy.run_path('get_hard_tracks.py', run_name='__main__')\n"
            "    except SystemExit as exit_:\n        assert not exit_.code, exit_.code")
    assert modules_after(code, env["env"]) == set()


def test_a_ranking_after_a_retrain_by_sgd_and_xgboost_members_imports_no_scikit_learn(loop_env, tmp_path):
    """The shipped committee's member kinds: the SGD members score from their weights arrays,
    the scaler is plain arrays and XGBoost is imported without scikit-learn, so a ranking by a
    retrained committee (whose scores nothing has cached) imports XGBoost alone; the retrain
    itself needs scikit-learn (partial_fit) and writes the weights arrays anew."""
    from trompa_mer.committee import Committee
    from trompa_mer.pool import open_pool

    env = loop_env
    full = Committee.load(env["dir"] / "pretrained")
    shipped_kinds = [i for i, (_, m) in enumerate(full.members) if m.algorithm in ("sgd", "xgb")]
    full.subset(shipped_kinds).save(tmp_path / "sgd-xgb")
    ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc", "--committee", tmp_path / "sgd-xgb")
    asked = ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "3").stdout.split()
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({song: "Q2" for song in asked}))
    ok(env, "retrain_model.py", "-i", TEST_USER, "-a", answers)
    open_pool(env["feats"])
    code = ("import runpy, sys, contextlib, io\nsys.argv = ['get_hard_tracks.py', '-i', '" + TEST_USER +
            "', '-q', '2']\nwith contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        runpy.run_path('get_hard_tracks.py', run_name='__main__')\n"
            "    except SystemExit as exit_:\n        assert not exit_.code, exit_.code")
    assert modules_after(code, env["env"]) == {"xgboost"}
