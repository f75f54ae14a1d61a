"""The fast prediction paths give the probabilities of the formulas they replaced (to 1e-6:
they round differently, the linear GaussianNB form loses less to cancellation)."""
import numpy as np
import pytest
from scipy.special import logsumexp

from trompa_mer.members import GaussianNBMember, XGBMember, _normalize_log


def _data(seed=0, n=400, d=12):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    X = (rng.normal(size=(n, d)) + y[:, None] * 0.7).astype(np.float32)
    return X, y


def _quadratic_gnb_log_proba(model, X):
    # the earlier implementation: full diagonal Mahalanobis distance with the pooled variance
    counts = model.class_count_
    pooled = (counts[:, None] * (model.var_ - model.epsilon_)).sum(axis=0) / counts.sum()
    inv_var = 1.0 / (pooled + model.epsilon_)
    X = np.asarray(X, dtype=np.float64)
    dist = ((X ** 2) @ inv_var)[:, None] - 2 * X @ (model.theta_ * inv_var).T \
        + ((model.theta_ ** 2) @ inv_var)[None, :]
    with np.errstate(divide="ignore"):
        return np.log(model.class_prior_) - 0.5 * dist


@pytest.mark.parametrize("temperature", [1.0, 3.5])
def test_tied_gnb_linear_form_equals_quadratic_form(temperature):
    X, y = _data()
    member = GaussianNBMember(temperature=temperature).fit(X, y)
    X_new = _data(seed=1)[0] * 3  # far from the means too
    expected = _normalize_log(_quadratic_gnb_log_proba(member.model, X_new), temperature)
    got = member.predict_proba(X_new)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert not np.allclose(got, 0.25)  # the data separates classes: not a degenerate check


def test_tied_gnb_linear_form_after_update_without_a_quadrant():
    X, y = _data()
    member = GaussianNBMember().fit(X[y != 2], y[y != 2])  # prior of Q3 is zero
    proba = member.predict_proba(X)
    assert np.all(proba[:, 2] == 0) and np.allclose(proba.sum(axis=1), 1)
    member.update(X[y == 2][:20], y[y == 2][:20])
    expected = _normalize_log(_quadratic_gnb_log_proba(member.model, X), 1.0)
    np.testing.assert_allclose(member.predict_proba(X), expected, rtol=0, atol=1e-6)
    assert np.all(member.predict_proba(X)[:, 2] > 0)


def test_xgb_inplace_predict_equals_dmatrix_predict():
    import xgboost as xgb

    X, y = _data(n=300)
    member = XGBMember(rounds=8).fit(X, y)
    X_new = _data(seed=2, n=200)[0]
    via_dmatrix = member.booster.predict(xgb.DMatrix(X_new)).reshape(-1, 4)
    # inplace_predict may differ from DMatrix predict in the last float32 bit
    np.testing.assert_allclose(np.exp(member._log_proba(X_new)), via_dmatrix, rtol=0, atol=1e-6)
    proba = member.predict_proba(X_new)
    np.testing.assert_allclose(proba, via_dmatrix / via_dmatrix.sum(axis=1, keepdims=True), atol=1e-6)
    # a non-contiguous float64 view gives the same answer
    wide = np.asfortranarray(X_new.astype(np.float64))
    np.testing.assert_array_equal(member.predict_proba(wide), proba)
    assert logsumexp(member._log_proba(X_new), axis=1).max() < 1e-5
