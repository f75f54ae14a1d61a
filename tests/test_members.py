import warnings

import numpy as np
import pytest

from trompa_mer import members as M
from trompa_mer.errors import MERError
from trompa_mer.registry import member_class

ALGORITHMS = sorted(M.MEMBER_TYPES)


def _data(n=400, d=12, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[:, 0] += 2.0 * y  # learnable signal
    return X, y


def _member(algorithm):
    kwargs = {"rounds": 10, "update_rounds": 3} if algorithm in ("xgb", "song-xgb") else {}
    return M.make_member(algorithm, **kwargs)


def _check_proba(p, n):
    assert p.shape == (n, 4)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert p.min() >= 0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_one_quadrant_update_keeps_four_finite_columns(algorithm):
    X, y = _data()
    member = _member(algorithm).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for quadrant in range(4):
            member.update(X[:7] + quadrant, np.full(7, quadrant))
            _check_proba(member.predict_proba(X), len(X))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_never_seen_quadrant_is_silent_and_finite(algorithm):
    X, y = _data()
    seen = y != 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        member = _member(algorithm).fit(X[seen], y[seen])
        p = member.predict_proba(X)
    _check_proba(p, len(X))
    # the unseen quadrant is (almost) never the answer, the seen ones are learned
    assert p[:, 3].mean() < 0.1
    assert (p.argmax(axis=1)[seen] == y[seen]).mean() > 0.5
    # and a later batch of that quadrant teaches it
    before = p[y == 3, 3].mean()
    for _ in range(5):
        member.update(X[y == 3][:40], np.full(40, 3))
    assert member.predict_proba(X)[y == 3, 3].mean() > before


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_save_load_round_trip_identical(tmp_path, algorithm):
    X, y = _data()
    member = _member(algorithm).fit(X, y)
    member.temperature = 2.5
    files = member.save(tmp_path / "m0")
    assert all((tmp_path / f).is_file() for f in files)
    loaded = member_class(algorithm).load(tmp_path / "m0")
    assert loaded.algorithm == algorithm
    assert loaded.input_kind == ("song-stats" if algorithm.startswith("song-") else "features")
    assert loaded.temperature == 2.5
    np.testing.assert_array_equal(loaded.predict_proba(X), member.predict_proba(X))
    # updates continue identically after a round trip
    member.update(X[:9], np.full(9, 1))
    loaded.update(X[:9], np.full(9, 1))
    np.testing.assert_allclose(loaded.predict_proba(X), member.predict_proba(X), atol=1e-12)


def test_temperature_softens_without_changing_the_ranking():
    X, y = _data()
    member = M.make_member("gnb").fit(X, y)
    sharp = member.predict_proba(X)
    member.temperature = 8.0
    soft = member.predict_proba(X)
    np.testing.assert_array_equal(sharp.argmax(axis=1), soft.argmax(axis=1))
    assert soft.max(axis=1).mean() < sharp.max(axis=1).mean()


def test_sgd_extreme_inputs_stay_finite():
    X, y = _data()
    member = M.make_member("sgd").fit(X, y)
    _check_proba(member.predict_proba(X * 1e6), len(X))


def test_xgb_update_continues_the_same_booster_in_place():
    X, y = _data()
    member = M.make_member("xgb", rounds=5, update_rounds=3).fit(X, y)
    booster = member.booster
    member.update(X[:5], np.zeros(5, dtype=int))
    assert member.booster is booster
    assert booster.num_boosted_rounds() == 8


def test_wrong_width_and_labels_refused():
    X, y = _data()
    member = M.make_member("gnb").fit(X, y)
    with pytest.raises(MERError, match="expected 12 columns"):
        member.predict_proba(X[:, :5])
    with pytest.raises(MERError, match="0..3"):
        member.update(X[:3], np.array([0, 4, 1]))


class NotAModel:
    def __init__(self):
        self.payload = 1


def test_untrusted_skops_file_refused(tmp_path):
    M.skops_dump(NotAModel(), tmp_path / "evil.skops")
    with pytest.raises(MERError, match="not trusted.*NotAModel"):
        M.skops_load(tmp_path / "evil.skops")
    (tmp_path / "junk.skops").write_bytes(b"not a zip file")
    with pytest.raises(MERError, match="junk.skops"):
        M.skops_load(tmp_path / "junk.skops")


def test_load_refuses_other_algorithm(tmp_path):
    X, y = _data()
    M.make_member("gnb").fit(X, y).save(tmp_path / "m")
    with pytest.raises(MERError, match="algorithm"):
        M.SGDMember.load(tmp_path / "m")


def test_unknown_algorithm_refused():
    with pytest.raises(MERError, match="gnb, sgd, xgb"):
        member_class("svm")


@pytest.mark.parametrize("algorithm", M.COMPARISON_TYPES)
def test_comparison_models_give_four_columns(algorithm):
    X, y = _data(n=120)
    model = M.ComparisonModel(algorithm).fit(X[y < 3], y[y < 3])
    p = model.predict_proba(X)
    _check_proba(p, len(X))
    assert np.all(p[:, 3] == 0)


def test_gnb_variants_round_trip(tmp_path):
    X, y = _data()
    X[y == 2, 1:] *= 5.0  # one quadrant far more spread out
    tied = M.GaussianNBMember().fit(X, y)
    per_class = M.GaussianNBMember(variance="per-class").fit(X, y)
    assert tied.variance == "tied"
    # per-class variances hand the widest class the windows far from every mean; tied ones do not
    far = np.full((1, X.shape[1]), 6.0, dtype=np.float32)  # far out on the noise columns
    far[0, 0] = 2.0 * 1  # at quadrant Q2's mean on the signal column
    assert tied.predict_proba(far).argmax() == 1
    assert per_class.predict_proba(far).argmax() == 2
    per_class.save(tmp_path / "g")
    loaded = M.GaussianNBMember.load(tmp_path / "g")
    assert loaded.variance == "per-class"
    np.testing.assert_array_equal(loaded.predict_proba(X), per_class.predict_proba(X))
    with pytest.raises(MERError, match="variance"):
        M.GaussianNBMember(variance="full")
