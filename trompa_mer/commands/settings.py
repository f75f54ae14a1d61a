"""Paths and hyperparameters shared by the scripts (the commands of trompa_mer.commands; the
root settings.py is this module). Only the commands read it: the rest of the package gets its
values passed in.

Every path can be moved with an environment variable, so a Docker volume or a test can point the
whole toolkit elsewhere. The defaults are relative to the project folder: the checkout the
package is in (where the root scripts are), or, for a package installed with pip, the current
folder (MER_ROOT sets it):
  MER_MODELS_DIR   models root (default <project>/models)
  MER_DATA_DIR     data root (default <project>/data)
  MER_PRETRAINED_DIR, MER_USERS_DIR, MER_FEATS_DIR, MER_ANNOTATIONS, MER_PLAYLISTS,
  MER_SHARED_DATA  finer overrides (defaults derived from the two roots)
  MER_AUDIO_DIR    the pool's audio, one file per song, song id = lowercased file stem
                   (default <data>/audio); read only when the user's committee has audio
                   members (the default committee's musicnn members, the CNN, encoders; docs/loop.md);
                   unset with no <data>/audio folder, those members are left out (a note says so)
  MER_AUDIO_CACHE_DIR  16 kHz .npy copies of that audio (default <cache>/audio16k, one
                   subfolder per audio folder), so the audio folder may be read-only
  MER_CACHE_DIR    caches (default <project>/.cache)
  MER_COST_NOTE_SECONDS  long work (decoding, pre-training, encoder members) prints one
                   `note: about N min ...` line, estimated from the rate of its first items,
                   when the estimate reaches this many seconds (default 60)
"""
from __future__ import annotations

from trompa_mer.environment import require_packages

# every script reads settings before it imports numpy & co.: outside the project's virtual
# environment it stops here with the set-up command instead of a ModuleNotFoundError traceback
require_packages()

import os  # noqa: E402
from pathlib import Path  # noqa: E402

from trompa_mer import hyperparameters as _hp  # noqa: E402



def _project_root() -> Path:
    """MER_ROOT, else the checkout holding this package (the root scripts beside it), else the
    current folder (a package installed with pip, run as `trompa-mer STEP`)."""
    if os.environ.get("MER_ROOT"):
        return Path(os.environ["MER_ROOT"]).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "settings.py").is_file() and (checkout / "create_user.py").is_file():
        return checkout
    return Path.cwd()


ROOT = _project_root()


def _path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().resolve() if value else default


def _refuse(var: str, value: str, expected: str):
    # settings are read when a script starts, before its error handling: exit with one line
    raise SystemExit(f"error: environment variable {var}: expected {expected}, got {value!r}")


def _int(var: str, default: int, minimum: int | None = None) -> int:
    value = os.environ.get(var)
    if not value:
        return default
    expected = "a whole number" + (f" >= {minimum}" if minimum is not None else "")
    try:
        number = int(value.strip())
    except ValueError:
        _refuse(var, value, expected)
    if minimum is not None and number < minimum:
        _refuse(var, value, expected)
    return number


def _float(var: str, default: float, minimum: float | None = None, below: float | None = None) -> float:
    value = os.environ.get(var)
    if not value:
        return default
    expected = "a number" + (f" >= {minimum:g}" if minimum is not None else "") + (
        f" below {below:g}" if below is not None else "")
    try:
        number = float(value.strip())
    except ValueError:
        _refuse(var, value, expected)
    if number != number or number in (float("inf"), float("-inf")) or (
            minimum is not None and number < minimum) or (below is not None and number >= below):
        _refuse(var, value, expected)
    return number


# --- paths -------------------------------------------------------------------------------
MODELS_DIR = _path("MER_MODELS_DIR", ROOT / "models")
DATA_DIR = _path("MER_DATA_DIR", ROOT / "data")
PRETRAINED_DIR = _path("MER_PRETRAINED_DIR", MODELS_DIR / "pretrained")
USERS_DIR = _path("MER_USERS_DIR", MODELS_DIR / "users")
FEATS_DIR = _path("MER_FEATS_DIR", DATA_DIR / "feats")


def _default_annotations() -> Path:
    json_path = DATA_DIR / "annotations.json"
    csv_path = DATA_DIR / "annotations.csv"
    return csv_path if csv_path.exists() and not json_path.exists() else json_path


ANNOTATIONS = _path("MER_ANNOTATIONS", _default_annotations())
PLAYLISTS = _path("MER_PLAYLISTS", DATA_DIR / "playlists.csv")
# The real corpora beside the project (never copied into it).
SHARED_DATA_DIR = _path("MER_SHARED_DATA", ROOT.parent / "shared" / "data")
CACHE_DIR = _path("MER_CACHE_DIR", ROOT / ".cache")
AUDIO_DIR = _path("MER_AUDIO_DIR", DATA_DIR / "audio")
AUDIO_CACHE_DIR = _path("MER_AUDIO_CACHE_DIR", CACHE_DIR / "audio16k")
# cost notes before long work (trompa_mer.cost): printed when the measured estimate reaches this
COST_NOTE_S = _float("MER_COST_NOTE_SECONDS", 60.0, minimum=0.0)
# what the loop steps whose committee may have audio members are passed: no audio folder (None)
# when MER_AUDIO_DIR is unset and <data>/audio does not exist, a pool of feature files only (the
# committee's audio members are then left out, with a note); a folder MER_AUDIO_DIR names must exist
AUDIO_FOLDERS = {"audio_dir": AUDIO_DIR if os.environ.get("MER_AUDIO_DIR") or AUDIO_DIR.is_dir() else None,
                 "audio_cache_dir": AUDIO_CACHE_DIR}

# --- hyperparameters ---------------------------------------------------------------------
SEED = _int("MER_SEED", _hp.SEED)
CV_SPLITS = _int("MER_CV_SPLITS", 5, minimum=2)
TEST_SIZE = _float("MER_TEST_SIZE", 0.2, minimum=0.0, below=1.0)
JOBS = _int("MER_JOBS", 1, minimum=1)
LOCK_TIMEOUT_S = _float("MER_LOCK_TIMEOUT", 60.0, minimum=0.0)
# get_hard_tracks.py --candidates: how many unlabelled songs a round's committee scores (a
# seeded random sample; the whole pool when it has no more). Chosen by measurement so that a
# ranking after a retrain stays within ~3 s whole process at any pool size (docs/scale.md).
CANDIDATES = _int("MER_CANDIDATES", _hp.CANDIDATES, minimum=1)

# Member defaults live in the package (trompa_mer/hyperparameters.py), one source for both.
XGB_PARAMS = {**_hp.XGB_PARAMS, "seed": SEED}
XGB_ROUNDS = _int("MER_XGB_ROUNDS", _hp.XGB_ROUNDS, minimum=1)
XGB_UPDATE_ROUNDS = _int("MER_XGB_UPDATE_ROUNDS", _hp.XGB_UPDATE_ROUNDS, minimum=1)
SGD_PARAMS = dict(_hp.SGD_PARAMS)
XGB_AV_PARAMS = {**_hp.XGB_AV_PARAMS, "seed": SEED}  # arousal/valence regression members
SGD_AV_PARAMS = dict(_hp.SGD_AV_PARAMS)
SONG_SGD_PARAMS = dict(_hp.SONG_SGD_PARAMS)  # song members (one row per song)
SONG_XGB_PARAMS = {**_hp.SONG_XGB_PARAMS, "seed": SEED}
SONG_XGB_ROUNDS = _int("MER_SONG_XGB_ROUNDS", _hp.SONG_XGB_ROUNDS, minimum=1)
