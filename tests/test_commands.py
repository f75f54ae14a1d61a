"""The installed command: `pip install` the project into a throwaway folder (--target, no
dependencies: this interpreter has them) and run `trompa-mer STEP ...` from another folder, as
a user who never saw the checkout would; the root scripts stay the same programs."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_loop_support import TEST_USER, call, loop_assets, loop_env, ok  # noqa: F401
from trompa_mer.commands import STEPS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The project installed with pip into a folder of its own: (its bin/trompa-mer, the folder)."""
    base = tmp_path_factory.mktemp("installed")
    source = base / "source"  # a copy: building never writes into the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "trompa_mer", source / "trompa_mer", ignore=shutil.ignore_patterns("__pycache__"))
    target = base / "target"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                             "--no-index", "--target", str(target), str(source)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    command = target / "bin" / "trompa-mer"
    assert command.is_file(), sorted(p.name for p in target.rglob("*"))[:20]
    return command, target


def _env(base_env, target, **extra):
    env = {k: v for k, v in base_env.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)  # only the installed copy: never the checkout
    env.update(extra)
    return env


def _run(installed, env, *args, cwd):
    command, _target = installed
    return subprocess.run([str(command), *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=180)


def test_help_lists_every_step_and_each_has_its_own(installed, tmp_path):
    env = _env(os.environ, installed[1])
    for flag in ("--help", "-h"):
        listing = _run(installed, env, flag, cwd=tmp_path)
        assert listing.returncode == 0 and listing.stdout.startswith("usage: trompa-mer COMMAND")
        assert [line.split()[0] for line in listing.stdout.split("commands:\n")[1].splitlines()] == list(STEPS)
    assert _run(installed, env, cwd=tmp_path).returncode == 2
    unknown = _run(installed, env, "create-usr", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown command 'create-usr'" in unknown.stderr and "create-user" in unknown.stderr
    for step in STEPS:
        result = _run(installed, env, step, "--help", cwd=tmp_path)
        assert result.returncode == 0, (step, result.stderr)
        assert result.stdout.startswith(f"usage: trompa-mer {step}"), (step, result.stdout[:200])


def test_every_root_script_has_help(loop_env):
    for step, (module, _what) in STEPS.items():
        result = call(loop_env, f"{module}.py", "--help")
        assert result.returncode == 0 and "usage:" in result.stdout, (module, result.stderr)


def test_the_loop_through_the_installed_command(installed, loop_env, tmp_path):
    env = _env(loop_env["env"], installed[1])
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([sys.executable, "-c", "import trompa_mer; print(trompa_mer.__file__)"], env=env,
                           cwd=work, capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(installed[1])), "the installed copy is the one run"

    def step(*args):
        result = _run(installed, env, *args, cwd=work)
        assert result.returncode == 0, (args, result.stderr)
        return result

    assert f"user {TEST_USER} created" in step("create-user", "-i", TEST_USER, "-m", "mc").stdout
    songs = step("get-hard-tracks", "-i", TEST_USER, "-q", 2).stdout.split()
    assert len(songs) == 2
    step("retrain-model", "-i", TEST_USER, "-a", json.dumps({songs[0]: "Q1", songs[1]: "Q3"}))
    state = json.loads((loop_env["users"] / TEST_USER / "state.json").read_text())
    assert state["iteration"] == 1 and set(state["answers"]) == set(songs)
    csv = loop_env["feats"] / "song04.csv"
    installed_json = json.loads(step("predict-emotion", "-i", csv, "-o", "-", "-u", TEST_USER).stdout)
    ok(loop_env, "predict_emotion.py", "-i", csv, "-o", tmp_path / "script.json", "-u", TEST_USER)
    assert installed_json == json.loads((tmp_path / "script.json").read_text()), "one program, two names"
    listed = json.loads(step("manage-users", "list", "--json").stdout)
    assert [(r["user_id"], r["round"]) for r in listed] == [(TEST_USER, 1)]
    # a usage error and a refusal keep the scripts' exit statuses and one-line errors
    assert _run(installed, env, "get-hard-tracks", "-i", TEST_USER, cwd=work).returncode == 2
    refused = _run(installed, env, "manage-users", "show", "-i", "zed", cwd=work)
    assert refused.returncode == 1 and refused.stderr.startswith("error: user 'zed': no such user")
    assert not list(work.iterdir()), "nothing written into the current folder when the paths are set"


def test_an_installed_package_defaults_to_the_current_folder(installed, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MER_")}
    env = _env(env, installed[1])
    result = _run(installed, env, "manage-users", "list", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"no users in {tmp_path.resolve() / 'models' / 'users'}"
    moved = _run(installed, {**env, "MER_ROOT": str(tmp_path / "project")}, "manage-users", "list", cwd=tmp_path)
    assert moved.stdout.strip() == f"no users in {tmp_path.resolve() / 'project' / 'models' / 'users'}"


def test_the_checkout_keeps_its_own_folders():
    import settings

    assert settings.ROOT == ROOT and settings.__name__ == "trompa_mer.commands.settings"
