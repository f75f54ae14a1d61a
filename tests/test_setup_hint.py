"""Outside the project's virtual environment every script prints the README's set-up commands,
not a ModuleNotFoundError traceback. Run with this interpreter and -S (no site-packages: numpy
and the rest are missing whatever the machine has installed)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trompa_mer import environment

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in ROOT.glob("*.py") if p.name != "settings.py")


def _bare(script, *args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([sys.executable, "-S", str(ROOT / script), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_the_bare_interpreter_lacks_numpy(tmp_path):
    result = subprocess.run([sys.executable, "-S", "-c", "import numpy"], capture_output=True, text=True,
                            cwd=tmp_path, env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")})
    assert result.returncode == 1 and "No module named 'numpy'" in result.stderr, "the test needs -S to hide numpy"


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_prints_the_setup_command(script, tmp_path):
    assert script in {"create_user.py", "extract_features.py", "predict_emotion.py", "manage_users.py",
                      "get_hard_tracks.py", "retrain_model.py", "get_recommendations.py", "deam_classifier.py",
                      "demo.py", "pretrain_encoder.py", "simulate_personalization.py"}
    result = _bare(script, "--help", cwd=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"error: {script} needs the Python package(s) numpy, pandas")
    assert "virtual environment is not active" in lines[0] and sys.executable in lines[0]
    assert lines[1].split("#")[0].strip() == "make demo"
    assert lines[2].split("#")[0].strip() == "source .venv/bin/activate"
    assert lines[3].strip() == f"then: python {script} ..."
    # the commands are the README's
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "source .venv/bin/activate" in readme


def test_extraction_names_its_own_packages():
    assert environment.missing_packages(("opensmile", "no_such_package_here")) == ["no_such_package_here"]
    hint = environment.setup_hint(["sklearn", "no_such_package_here"], "extract_features.py")
    assert hint.startswith("error: extract_features.py needs the Python package(s) scikit-learn, "
                           "no_such_package_here, not installed")
    assert hint.endswith("then: python extract_features.py ...")
    installed = environment.setup_hint(["numpy"], "trompa-mer create-user")
    assert "needs the Python package(s) numpy, not installed (install them into that environment with " \
           "`pip install .`" in installed and installed.endswith("then: trompa-mer create-user ...")


def test_an_old_python_is_named(monkeypatch, capsys):
    monkeypatch.setattr(sys, "version_info", (3, 9, 18, "final", 0))
    with pytest.raises(SystemExit) as exit_:
        environment.require_packages(script="create_user.py")
    assert exit_.value.code == 1
    assert capsys.readouterr().err.startswith("error: create_user.py needs Python 3.11 or newer for ")


def test_inside_the_environment_nothing_happens(capsys):
    environment.require_packages(("opensmile", "soundfile"))
    assert capsys.readouterr().err == ""
