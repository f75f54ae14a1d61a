"""Restructuring the package must not change what users see (issue 12).

The records in tests/golden/ were written by the code before the member-protocol redesign
(tests/golden/README.md); these tests run the same scenarios on the current code and compare:
song ids, labels, keys and strings exactly, probabilities and F1 to 1e-12 (the same arithmetic
gives the same bits; the tolerance only absorbs JSON's decimal round trip).
"""
import json

import numpy as np
import pandas as pd
import pytest

from conftest import shared_path
from equivalence_scenarios import GOLDEN, loop_outputs, simulator_results


def assert_same(expected, actual, where="output"):
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        assert sorted(actual) == sorted(expected), f"{where}: keys {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            assert_same(expected[key], actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_same(e, a, f"{where}[{i}]")
    elif isinstance(expected, float) and not isinstance(actual, bool):
        assert isinstance(actual, (int, float)), where
        assert abs(expected - actual) <= 1e-12, f"{where}: {actual!r} != {expected!r}"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@pytest.fixture(scope="module")
def current_loop(tmp_path_factory):
    return loop_outputs(tmp_path_factory.mktemp("equivalence") / "loop")


def test_loop_outputs_unchanged(current_loop):
    expected = json.loads((GOLDEN / "loop.json").read_text())
    # the same JSON round trip the record went through
    actual = json.loads(json.dumps(current_loop, sort_keys=True))
    assert_same(expected, actual)


def test_the_comparison_catches_a_changed_probability():
    """Negative control: a probability moved by 1e-9 or a swapped pick is reported."""
    expected = json.loads((GOLDEN / "loop.json").read_text())
    changed = json.loads(json.dumps(expected))
    changed["user_mc"]["predict_song03"]["mean_probs"][0] += 1e-9
    with pytest.raises(AssertionError, match="mean_probs"):
        assert_same(expected, changed)
    changed = json.loads(json.dumps(expected))
    changed["user_crowd_mc"]["picks"][1].reverse()
    with pytest.raises(AssertionError, match="picks"):
        assert_same(expected, changed)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["plain", "crowd"])
def test_simulator_results_unchanged(tmp_path, variant):
    shared_path("trompa", "annotations.json")
    shared_path("trompa", "track_features.csv")
    expected = pd.read_csv(GOLDEN / f"simulate_{variant}.csv", dtype={"user": str}, keep_default_na=False)
    simulator_results(tmp_path / "sim", crowd=variant == "crowd")
    actual = pd.read_csv(tmp_path / "sim" / "results.csv", dtype={"user": str}, keep_default_na=False)
    assert list(actual.columns) == list(expected.columns)
    assert len(actual) == len(expected) and actual["user"].nunique() >= 3
    numeric = ["f1_weighted", "f1_macro"]
    for column in expected.columns:
        if column in numeric:
            np.testing.assert_allclose(actual[column].astype(float), expected[column].astype(float),
                                       rtol=0, atol=1e-12, err_msg=column)
        else:
            assert actual[column].astype(str).tolist() == expected[column].astype(str).tolist(), column
