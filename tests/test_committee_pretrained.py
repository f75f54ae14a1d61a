"""The committed default committee: it loads, it is small, and rebuilding it gives the same predictions."""
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, shared_path
from trompa_mer.committee import Committee
from trompa_mer.features import FEATURE_NAMES

PRETRAINED = ROOT / "models" / "pretrained"


def _committed():
    if not (PRETRAINED / "committee.json").exists():
        pytest.fail(f"{PRETRAINED}/committee.json is missing: the default committee must be committed")
    return Committee.load(PRETRAINED, feature_names=FEATURE_NAMES)


def test_default_committee_loads_and_is_small():
    committee = _committed()
    algorithms = committee.algorithms()
    for algorithm in ("gnb", "sgd", "xgb"):
        assert algorithms.count(algorithm) == 5
    size = sum(p.stat().st_size for p in PRETRAINED.iterdir() if p.is_file())
    assert size < 8 * 2**20, f"default committee is {size / 2**20:.1f} MiB"
    manifest = committee.manifest
    assert manifest["corpus"]["name"] == "Emotify"
    assert manifest["command"].startswith("python deam_classifier.py")
    song = manifest["scores"]["song"]
    # the card's claim: every member algorithm beats the majority-class baseline
    for algorithm in ("gnb", "sgd", "xgb", "committee"):
        assert song[algorithm]["f1_weighted"][0] > song["majority"]["f1_weighted"][0]
    card = (PRETRAINED / "README.md").read_text()
    assert manifest["command"] in card


@pytest.mark.slow
def test_rebuilding_the_default_committee_gives_identical_predictions(tmp_path):
    shared_path("emotify", "audio")
    committee = _committed()
    args = shlex.split(committee.manifest["command"])[2:]
    out = args.index("-o") + 1
    args[out] = str(tmp_path / "rebuilt")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(ROOT / "deam_classifier.py"), *args, "--quiet",
                             "--jobs", str(max(1, min(2, os.cpu_count() or 1)))],
                            capture_output=True, text=True, env=env, timeout=1800, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    rebuilt = Committee.load(tmp_path / "rebuilt", feature_names=FEATURE_NAMES)
    assert rebuilt.names() == committee.names()
    from trompa_mer.datasets import emotify
    import settings

    from trompa_mer.pool import load_pool

    pool = load_pool(emotify.emotify_features(settings.SHARED_DATA_DIR / "emotify", settings.CACHE_DIR,
                                              progress=False))
    np.testing.assert_array_equal(rebuilt.song_proba(pool), committee.song_proba(pool))
    assert json.loads((tmp_path / "rebuilt" / "committee.json").read_text())["scores"] == \
        committee.manifest["scores"]
