"""Arousal/valence regression members: window features -> (arousal, valence), and quadrants.

A regression member predicts arousal and valence (-1..1) for every window; a song's values are
the mean of its windows'. To sit in a committee beside the quadrant classifiers (consensus
entropy, get_hard_tracks, retrain, the simulator) it also gives quadrant probabilities, from
a predictive distribution of (a, v) around its prediction mu:

    a ~ N(mu_a, s_a^2),  v ~ N(mu_v, s_v^2),  independent
    P(Q1) = P(a >= 0) P(v >= 0) = Phi(mu_a / s_a) Phi(mu_v / s_v), and so on for Q2..Q4

where the spread s (one per axis) is the residual spread of the member's song predictions
on held-out songs (pre-training sets it with `set_spread`; a member fitted alone uses its
training residuals, which understate it); the spread is always `residual_spread`, the root
mean square of the residuals. docs/regression.md shows how well calibrated these
probabilities are on held-out songs.

Targets (y of fit/update: target kind "av", a quadrants.Labels):
- fit needs (arousal, valence) on every row;
- update takes a listener's answers: where an answer carries the listener's own values the
  member trains towards them; where it names only a quadrant, towards that quadrant's
  centroid, the mean (a, v) of the pre-training targets in that quadrant. Given only the
  quadrant, that centroid is the least-squares best guess of the values the listener meant
  (the conditional mean of the training targets), and it is a point the member's own
  predictive distribution puts firmly in the answered quadrant.
"""
from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr

from . import hyperparameters as _hp
from .errors import MERError
from .members import BoostedTrees, Member, check_windows, skops_dump, skops_load
from .quadrants import N_CLASSES, Labels

# A spread floor: a member that fits its training songs exactly would otherwise claim certainty.
MIN_SPREAD = 0.05
# The spread of a member with no residuals to measure it on.
DEFAULT_SPREAD = 0.5
# Used for a quadrant without training targets: the middle of the quadrant.
QUADRANT_MIDDLES = np.array([[0.5, 0.5], [0.5, -0.5], [-0.5, -0.5], [-0.5, 0.5]])
DEFAULT_SGD_AV_PARAMS = dict(_hp.SGD_AV_PARAMS)
DEFAULT_XGB_AV_PARAMS = dict(_hp.XGB_AV_PARAMS)


def quadrant_log_proba(mu, spread) -> np.ndarray:
    """(n, 4) log P(Q1..Q4) under independent Gaussians N(mu, spread^2) per axis."""
    mu = np.asarray(mu, dtype=np.float64).reshape(-1, 2)
    z = mu / np.asarray(spread, dtype=np.float64)
    a_hi, a_lo = log_ndtr(z[:, 0]), log_ndtr(-z[:, 0])
    v_hi, v_lo = log_ndtr(z[:, 1]), log_ndtr(-z[:, 1])
    # Q1 a+ v+, Q2 a+ v-, Q3 a- v-, Q4 a- v+
    return np.stack([a_hi + v_hi, a_hi + v_lo, a_lo + v_lo, a_lo + v_hi], axis=1)


def residual_spread(residuals) -> np.ndarray:
    """The predictive spread per axis from residuals (target - prediction), rows x (arousal,
    valence): their root mean square, floored at MIN_SPREAD (DEFAULT_SPREAD without rows).

    The root mean square, not the standard deviation about the residuals' mean: a member that
    is off by a bias b with scatter s is off by sqrt(b² + s²) on average, and its quadrant
    probabilities must say so; the deviation about the mean would leave the bias out and make
    a biased member over-confident. The one place the spread is computed (fit, pre-training,
    the simulator and the examples call it)."""
    residuals = np.asarray(residuals, dtype=np.float64).reshape(-1, 2)
    if not len(residuals):
        return np.full(2, DEFAULT_SPREAD)
    return np.maximum(np.sqrt(np.mean(np.square(residuals), axis=0)), MIN_SPREAD)


def quadrant_centroids(labels: Labels) -> np.ndarray:
    """(4, 2): mean (a, v) of the rows of each quadrant (QUADRANT_MIDDLES where none)."""
    out = QUADRANT_MIDDLES.copy()
    for q in range(N_CLASSES):
        rows = labels.av[labels.quadrant == q]
        if len(rows):
            out[q] = rows.mean(axis=0)
    return out


def _finite_array(value, shape, where, field, positive=False) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != shape or not np.isfinite(array).all() or (positive and (array <= 0).any()):
        raise MERError(f"{where}: field {field!r} is {value!r}, expected {'positive ' if positive else ''}"
                       f"finite numbers of shape {shape}")
    return array


class AVRegressor(Member):
    """Base of the regression members: targets, spread, quadrant probabilities, metadata."""

    target_kind = "av"

    def __init__(self, temperature: float = 1.0, spread=None, centroids=None):
        super().__init__(temperature)
        self.spread = np.full(2, DEFAULT_SPREAD) if spread is None else np.asarray(spread, dtype=np.float64)
        self.centroids = QUADRANT_MIDDLES.copy() if centroids is None else np.asarray(centroids, dtype=np.float64)

    # --- subclasses: _fit_av(X, av, sample_weight), _update_av(X, av), _predict_av(X) --------
    def model_params(self) -> dict:
        return {}

    def params(self) -> dict:
        return {**self.model_params(), "spread": self.spread.tolist(), "centroids": self.centroids.tolist()}

    @classmethod
    def _from_meta(cls, meta):
        params = dict(meta.get("params", {}))
        where = f"{cls.algorithm} member metadata"
        spread = _finite_array(params.pop("spread", None), (2,), where, "spread", positive=True)
        centroids = _finite_array(params.pop("centroids", None), (N_CLASSES, 2), where, "centroids")
        member = cls._from_params(params)
        member.spread, member.centroids = spread, centroids
        return member

    @classmethod
    def _from_params(cls, params):
        return cls()

    def _labels(self, X, y, where) -> Labels:
        labels = Labels.coerce(y)
        if len(labels) != X.shape[0]:
            raise MERError(f"{where}: {X.shape[0]} rows but {len(labels)} labels")
        return labels

    def fit(self, X, y, sample_weight=None):
        X = check_windows(X)
        labels = self._labels(X, y, "features")
        if X.shape[0] == 0:
            raise MERError("features: cannot fit on zero windows")
        if not labels.has_av.all():
            raise MERError(f"{self.algorithm} member: training needs arousal and valence on every row "
                           f"({int((~labels.has_av).sum())} rows have only a quadrant)")
        self.n_features = X.shape[1]
        self.centroids = quadrant_centroids(labels)
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self._fit_av(X, labels.av, weights)
        self.spread = residual_spread(labels.av - self._predict_av(X))
        return self

    def targets(self, labels: Labels) -> np.ndarray:
        """(n, 2): the listener's own values where given, else the answered quadrant's centroid."""
        return np.where(labels.has_av[:, None], labels.av, self.centroids[labels.quadrant])

    def update(self, X, y):
        X = check_windows(X)
        labels = self._labels(X, y, "features")
        if X.shape[0] == 0:
            return self
        self._check_width(X)
        self._update_av(X, self.targets(labels))
        return self

    def set_spread(self, spread) -> None:
        """The predictive spread per axis (held-out residual spread; floored at MIN_SPREAD)."""
        spread = np.asarray(spread, dtype=np.float64).reshape(2)
        if not np.isfinite(spread).all():
            raise MERError(f"{self.algorithm} member: spread must be finite, got {spread}")
        self.spread = np.maximum(spread, MIN_SPREAD)

    def predict_av(self, X) -> np.ndarray:
        """(n, 2) arousal and valence per row, clipped to -1..1."""
        X = check_windows(X)
        self._check_width(X)
        if X.shape[0] == 0:
            return np.zeros((0, 2))
        return np.clip(self._predict_av(X), -1.0, 1.0)

    def _log_proba(self, X):
        return quadrant_log_proba(np.clip(self._predict_av(X), -1.0, 1.0), self.spread)


class SGDAVMember(AVRegressor):
    """Linear regression by SGD (squared loss, L2), one regressor per axis; update = one more
    partial_fit pass over the answered windows, as the SGD classifier does.

    Standardized features are clipped to +-`clip` first: Emotify has windows with standardized
    values over 100, and squared-loss SGD steps on them diverged (held-out R² -1.4 for arousal,
    -3.4 for valence; clipped at 3: 0.04 and -0.07, as a closed-form ridge; docs/regression.md).
    """

    algorithm = "sgd-av"

    def __init__(self, temperature: float = 1.0, params: dict | None = None, seed: int = _hp.SEED,
                 clip: float = _hp.SGD_AV_CLIP, **kw):
        super().__init__(temperature, **kw)
        self.sgd_params = dict(DEFAULT_SGD_AV_PARAMS if params is None else params)
        self.seed = int(seed)
        if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not np.isfinite(clip) or clip <= 0:
            raise MERError(f"sgd-av member: field 'clip' is {clip!r}, expected a finite number > 0")
        self.clip = float(clip)
        self.model = self._new_model()

    def _new_model(self):
        from sklearn.linear_model import SGDRegressor
        from sklearn.multioutput import MultiOutputRegressor

        return MultiOutputRegressor(SGDRegressor(random_state=self.seed, **self.sgd_params))

    def model_params(self):
        return {**self.sgd_params, "seed": self.seed, "clip": self.clip}

    @classmethod
    def _from_params(cls, params):
        seed = params.pop("seed", _hp.SEED)
        clip = params.pop("clip", _hp.SGD_AV_CLIP)
        return cls(params=params, seed=seed, clip=clip)

    def _clipped(self, X):
        return np.clip(np.asarray(X, dtype=np.float64), -self.clip, self.clip)

    def _fit_av(self, X, av, sample_weight):
        self.model = self._new_model()
        self.model.fit(self._clipped(X), av, sample_weight=sample_weight)

    def _update_av(self, X, av):
        self.model.partial_fit(self._clipped(X), av)

    def _predict_av(self, X):
        coef = np.stack([est.coef_ for est in self.model.estimators_], axis=1)
        intercept = np.array([est.intercept_[0] for est in self.model.estimators_])
        return self._clipped(X) @ coef + intercept

    def _save_model(self, path):
        skops_dump(self.model, path)

    def _load_model(self, path):
        model = skops_load(path)
        if len(getattr(model, "estimators_", ())) != 2:
            raise MERError(f"{path}: expected a two-output (arousal, valence) regressor")
        self.model = model


class XGBAVMember(BoostedTrees, AVRegressor):
    """Gradient-boosted regression trees for (arousal, valence) through XGBoost's native API
    (one tree per output per round); update adds rounds on the answered windows in place, as
    the XGBoost classifier does (members.BoostedTrees: training, rounds, copy, file)."""

    algorithm = "xgb-av"

    def __init__(self, temperature: float = 1.0, params: dict | None = None, rounds: int = _hp.XGB_ROUNDS,
                 update_rounds: int = _hp.XGB_UPDATE_ROUNDS, **kw):
        super().__init__(temperature, **kw)
        self.xgb_params = dict(DEFAULT_XGB_AV_PARAMS if params is None else params)
        self.xgb_params.setdefault("seed_per_iteration", True)
        self.rounds = int(rounds)
        self.update_rounds = int(update_rounds)
        self.booster = None

    def model_params(self):
        return self.booster_params()

    @classmethod
    def _from_params(cls, params):
        return cls(**cls.booster_kwargs(params))

    def _fit_av(self, X, av, sample_weight):
        self._train_booster(X, av, sample_weight)

    def _update_av(self, X, av):
        self._add_rounds(X, av)

    def _predict_av(self, X):
        X = np.ascontiguousarray(X, dtype=np.float32)
        return np.asarray(self.booster.inplace_predict(X), dtype=np.float64).reshape(-1, 2)


REGRESSION_TYPES: dict[str, type] = {"sgd-av": SGDAVMember, "xgb-av": XGBAVMember}


def make_regressor(algorithm: str, **kwargs) -> AVRegressor:
    if algorithm not in REGRESSION_TYPES:
        raise MERError(f"regression member: expected one of {', '.join(REGRESSION_TYPES)}, got {algorithm!r}")
    return REGRESSION_TYPES[algorithm](**kwargs)
