"""The check every script makes before it imports numpy & co.: run outside the project's
virtual environment, a script prints how to set it up instead of a ModuleNotFoundError
traceback. Standard library only (it runs before anything else can be imported), and kept
free of syntax newer than Python 3.6 so an old interpreter gets the hint too."""
import importlib.util
import os
import sys

# what every script imports (requirements.txt); the scripts that need more name it
REQUIRED = ("numpy", "pandas", "scipy", "sklearn", "xgboost", "skops", "joblib")
PIP_NAMES = {"sklearn": "scikit-learn"}
MINIMUM_PYTHON = (3, 11)
# the README's "Quick start" set-up, and how to use the environment it makes
SETUP = ("  make demo                   # once: creates .venv and installs the pinned requirements\n"
         "  source .venv/bin/activate   # in each shell (or run .venv/bin/python instead of python)")


def missing_packages(extra=()) -> list:
    """The top-level modules of REQUIRED + `extra` that this interpreter cannot import."""
    return [name for name in (*REQUIRED, *extra) if importlib.util.find_spec(name) is None]


def setup_hint(missing, script=None) -> str:
    """The message for an interpreter without the packages (or too old)."""
    python = sys.executable or "this Python"
    version = ".".join(str(n) for n in sys.version_info[:3])
    script = script or os.path.basename(sys.argv[0] or "the script")
    if sys.version_info < MINIMUM_PYTHON:
        why = "needs Python {}.{} or newer".format(*MINIMUM_PYTHON)
    else:
        names = ", ".join(PIP_NAMES.get(name, name) for name in missing)
        why = "needs the Python package(s) {}, not installed".format(names)
    if script.endswith(".py"):
        then = "python " + script
    else:  # the installed command: its environment may also get the packages from pip
        then = script
        why += " (install them into that environment with `pip install .`, or use the project's .venv)"
    return ("error: {} {} for {} (Python {}): the project's virtual environment is not active. "
            "Set it up and use it (README, \"Quick start\"):\n{}\n  then: {} ...".format(
                script, why, python, version, SETUP, then))


def require_packages(extra=(), script=None) -> None:
    """Exit with status 1 and the set-up hint when the packages are missing or Python is too
    old; return at once otherwise (a few module look-ups, nothing imported)."""
    missing = missing_packages(extra)
    if missing or sys.version_info < MINIMUM_PYTHON:
        sys.stderr.write(setup_hint(missing, script) + "\n")
        sys.exit(1)
