import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import settings  # noqa: E402

SHARED = settings.SHARED_DATA_DIR


def shared_path(*parts) -> Path:
    """A path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (run beside ../shared/data)")
    return path


def one_error(result, *expected):
    """A script run refused with exit 1 and exactly one `error:` line holding every `expected` text."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def script_env(tmp_path):
    """Environment for running the top-level scripts against throwaway model/data roots."""
    env = dict(os.environ)
    env["MER_MODELS_DIR"] = str(tmp_path / "models")
    env["MER_DATA_DIR"] = str(tmp_path / "data")
    env["MER_PRETRAINED_DIR"] = str(ROOT / "models" / "pretrained")
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny CNNs are not faster with more threads on CI's 2 shared cores; use one per module."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config, items):
    """The slow real-data tests first: with two workers (pytest -n 2) the longest ones start
    at once instead of leaving one worker alone with them at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
