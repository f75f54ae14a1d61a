"""Committee members: one small class per algorithm, one protocol for every kind.

Every member declares `algorithm` (its registry name) and `input_kind`, one of INPUT_KINDS,
which says what its X is; the committee builds that input once per batch for all members of
the kind (committee.Committee.member_input). The verbs, in scikit-learn's spirit:
  fit(X, y, sample_weight=None) -> self       train from scratch
  update(X, y) -> self                        continue on a labeled batch (may lack quadrants)
  predict_proba(X) -> (n, 4)                  Q1..Q4, finite, rows sum to 1
  copy() -> member                            an independent copy (the simulator restarts from it)
  save(path_without_suffix) -> [file names]   every write atomic
  load(path_without_suffix)  (classmethod)
Registering a new kind of member: a class with these verbs, an entry in registry.py, and,
for a new input kind, an entry in INPUT_KINDS and one branch in Committee.member_input
(docs/INTERFACES.md walks through an example).

Each member writes its model file plus `<name>.json` (algorithm, hyperparameters, temperature).
`temperature` T > 1 softens a member's probabilities (p ** (1/T), renormalized); the committee
sets it when cross-validation shows a member is over-confident (GaussianNB is, badly).

Formats: scikit-learn estimators with skops (loaded against an explicit list of trusted types,
so a member file can never run code), XGBoost boosters in XGBoost's own UBJSON.
"""
from __future__ import annotations

import contextlib
import copy as _copy
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import log_expit, logsumexp

from . import atomic
from .errors import MERError
from .finite import check_arrays
from .quadrants import CLASSES, N_CLASSES

# One source of defaults, shared with settings.py; the scripts pass settings' values explicitly.
from . import hyperparameters as _hp  # noqa: E402

# What a member's X is, by input kind (one row of predict_proba per row of X):
INPUT_KINDS = {
    "features": "standardized window features (windows x features, float32); the committee "
                "averages a song's window probabilities",
    "audio": "SongAudio: song ids and an audio source (song id -> 16 kHz samples); one row per song",
    "crowd+features": "per song: the other listeners' crowd columns (trompa_mer.crowd) followed "
                      "by the song's standardized mean window features",
    "song-stats": "per song: the mean, then the standard deviation, over its windows of the "
                  "standardized window features (songs x 2*features, float32; committee.song_statistics)",
}

# What a member's y is, by target kind (fit and update):
TARGET_KINDS = {
    "quadrant": "quadrant indices 0..3, one per row of X",
    "av": "quadrants.Labels: a quadrant per row and, where known, (arousal, valence) in -1..1 "
          "(fit needs arousal/valence on every row; update takes quadrant-only rows too)",
}


@dataclass
class SongAudio:
    """The X of an audio member: songs by id and where to read their audio."""

    song_ids: list
    source: object  # Mapping song id -> mono float32 samples at 16 kHz (audio_cache.AudioCache)

    def __len__(self) -> int:
        return len(self.song_ids)


DEFAULT_SGD_PARAMS = dict(_hp.SGD_PARAMS)
DEFAULT_XGB_PARAMS = dict(_hp.XGB_PARAMS)
DEFAULT_XGB_ROUNDS = _hp.XGB_ROUNDS
DEFAULT_XGB_UPDATE_ROUNDS = _hp.XGB_UPDATE_ROUNDS

# The only types a skops member or scaler file may contain. Anything else is refused.
SKOPS_TRUSTED_TYPES = [
    "sklearn.naive_bayes.GaussianNB",
    "sklearn.linear_model._stochastic_gradient.SGDClassifier",
    "sklearn.linear_model._stochastic_gradient.SGDRegressor",
    "sklearn.multioutput.MultiOutputRegressor",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.neighbors._classification.KNeighborsClassifier",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "sklearn.svm._classes.SVC",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.gaussian_process._gpc.GaussianProcessClassifier",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.random.mtrand.RandomState",
    "builtins.int",
    "builtins.float",
    "builtins.str",
]


@contextlib.contextmanager
def hidden_modules(*names):
    """Inside, `import NAME` raises ImportError for each of `names` not imported yet (the
    import system's meaning of a None entry in sys.modules); on exit they are importable
    again. Yields the names it hid (one already imported is left alone)."""
    hidden = _hide_modules(names)
    try:
        yield hidden
    finally:
        _give_back_modules(hidden)


# hidden_modules' two halves, apart from its generator: mutmut does not mutate decorated functions
def _hide_modules(names) -> list:
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None
    return hidden


def _give_back_modules(hidden) -> None:
    for name in hidden:
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]


def import_sklearn():
    """scikit-learn's base and linear models, first imported without pandas and pyarrow.

    sklearn.utils.fixes imports pandas at module level (about 0.25 s with pyarrow) only to bind
    a name `pd` that nothing in scikit-learn reads, and a loop step that trains an SGD member
    never hands it a DataFrame. Hidden only while scikit-learn's modules are first imported,
    pandas stays importable afterwards, and scikit-learn recognises a DataFrame given to it
    later through sys.modules, not through that name.
    """
    if "sklearn.linear_model" not in sys.modules:
        with hidden_modules("pandas", "pyarrow"):
            import sklearn.base  # noqa: F401
            import sklearn.linear_model  # noqa: F401
    return sys.modules["sklearn"]


def skops_io():
    """skops.io, imported without its scikit-learn walk.

    On import skops.io builds a default trust list with sklearn.utils.all_estimators(), which
    imports every scikit-learn module (and through them torch and dask): over ten seconds on
    a busy machine, in every script call. Files here are loaded against SKOPS_TRUSTED_TYPES
    only, so that default list is not needed and the walk is skipped.
    """
    if "skops.io" not in sys.modules:
        import_sklearn()
        import sklearn.utils

        original = sklearn.utils.all_estimators
        sklearn.utils.all_estimators = lambda *args, **kwargs: []
        try:
            with hidden_modules("pandas", "pyarrow"):
                import skops.io  # noqa: F401
        finally:
            sklearn.utils.all_estimators = original
    return sys.modules["skops.io"]


def skops_dump(obj, path) -> None:
    sio = skops_io()

    with atomic.atomic_open(path, "wb") as handle:
        handle.write(sio.dumps(obj))


def skops_load(path):
    """Load a skops file, refusing any type outside SKOPS_TRUSTED_TYPES with a MERError."""
    return skops_loads(read_skops_bytes(path), path)


def read_skops_bytes(path) -> bytes:
    """A skops file's bytes (a missing file raises FileNotFoundError, as loaders expect)."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as err:
        raise MERError(f"{path}: not a readable skops file ({type(err).__name__}: {err})") from None


def skops_loads(data: bytes, path):
    """skops_load of bytes already read from `path` (named in messages)."""
    sio = skops_io()

    try:
        untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in SKOPS_TRUSTED_TYPES]
    except Exception as err:  # skops raises assorted errors on a damaged file
        raise MERError(f"{path}: not a readable skops file ({type(err).__name__}: {err})") from None
    if untrusted:
        raise MERError(f"{path}: contains types that are not trusted: {', '.join(untrusted)}")
    try:
        return sio.loads(data, trusted=SKOPS_TRUSTED_TYPES)
    except Exception as err:
        raise MERError(f"{path}: not a readable skops file ({type(err).__name__}: {err})") from None


def import_xgboost():
    """xgboost, imported without scikit-learn when scikit-learn is not loaded yet.

    xgboost's package init imports scikit-learn, when it is installed, for its sklearn-style
    wrappers (XGBClassifier...), which this package never uses: the members drive the native
    Booster API. That import is most of a loop step's start-up (scikit-learn imports
    scipy.stats and pandas: ~0.8 s of the 1.1 s `import xgboost` takes here), and a ranking
    by committees whose other members score with numpy alone needs none of it. Hiding
    scikit-learn for the duration of xgboost's import sends xgboost down its own
    no-scikit-learn branch; scikit-learn stays importable for whatever needs it afterwards.
    """
    with hidden_modules("sklearn"):
        import xgboost
    return xgboost


def _temperature(value, where) -> float:
    """A member's temperature: a finite number > 0 (T > 1 softens, T < 1 sharpens)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        raise MERError(f"{where}: field 'temperature' is {value!r}, expected a finite number > 0")
    return float(value)


def _check_xy(X, y=None, where: str = "features"):
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise MERError(f"{where}: expected a 2-D array windows x features, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise MERError(f"{where}: contains NaN or infinite values")
    if y is None:
        return X, None
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise MERError(f"{where}: {X.shape[0]} rows but {y.shape} labels")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= N_CLASSES):
        raise MERError(f"{where}: labels must be quadrant indices 0..3, got {np.unique(y)[:5]}")
    return X, y.astype(np.int64)


def check_windows(X, where: str = "features") -> np.ndarray:
    """X as float32 windows x features, refused when not 2-D or not finite."""
    return _check_xy(X, None, where)[0]


def _normalize_log(log_p: np.ndarray, temperature: float) -> np.ndarray:
    """Rows of log-probabilities (any offset) -> probabilities, tempered, finite, summing to 1."""
    # in place on one float64 copy: the committee calls this for every member on every chunk
    # of the pool, where scipy's logsumexp cost several times the rest of the scoring
    log_p = np.array(log_p, dtype=np.float64)
    if temperature != 1.0:
        log_p /= float(temperature)
    if not np.isfinite(log_p).all():
        # -inf (a class with zero prior) stays a zero probability; a row without any finite
        # value (all -inf, or NaN) becomes uniform
        log_p[np.isnan(log_p)] = -np.inf
        log_p[~np.isfinite(log_p).any(axis=1)] = 0.0
    if log_p.size:
        log_p -= log_p.max(axis=1, keepdims=True)
    np.exp(log_p, out=log_p)
    log_p /= log_p.sum(axis=1, keepdims=True)
    return log_p


class Member:
    """Base class: the metadata sidecar and the common verbs."""

    algorithm = "base"
    input_kind = "features"
    target_kind = "quadrant"
    model_suffix = ".skops"
    # True for members with predict_margin(X, prefix) whose earlier rounds never change
    # (boosted trees): the committee then caches their margins on a pool (pool_scoring)
    margin_cacheable = False

    def __init__(self, temperature: float = 1.0):
        self.temperature = float(temperature)
        self.n_features: int | None = None

    # subclasses implement _fit, _update, _log_proba, _save_model, _load_model, params
    def params(self) -> dict:
        return {}

    def fit(self, X, y, sample_weight=None):
        X, y = _check_xy(X, y)
        if X.shape[0] == 0:
            raise MERError("features: cannot fit on zero windows")
        self.n_features = X.shape[1]
        self._fit(X, y, None if sample_weight is None else np.asarray(sample_weight, float))
        return self

    def update(self, X, y):
        X, y = _check_xy(X, y)
        if X.shape[0] == 0:
            return self
        self._check_width(X)
        self._update(X, y)
        return self

    def predict_proba(self, X) -> np.ndarray:
        X, _ = _check_xy(X)
        self._check_width(X)
        if X.shape[0] == 0:
            return np.zeros((0, N_CLASSES))
        return self.proba_from_log(self._log_proba(X))

    def copy(self):
        """An independent copy of this trained member."""
        return _copy.deepcopy(self)

    def proba_from_log(self, log_p) -> np.ndarray:
        """Log-probabilities (any row offset) -> this member's tempered probabilities.

        A NaN is refused: inputs are finite, so it can only come from non-finite weights, and
        normalising would hide it as a uniform row."""
        if np.isnan(log_p).any():
            raise MERError(f"{self.algorithm} member: non-finite output (NaN); its weights are not "
                           "finite (rebuild the committee or the member)")
        return _normalize_log(log_p, self.temperature)

    # The committee scores many windows with several members at once through these two hooks.
    def linear_form(self):
        """(W (features x 4), b (4,)) when this member's log-probabilities are
        `log_proba_from_decision(X @ W + b)` (up to a row constant), else None. The committee
        then evaluates all such members with one matrix product over the windows."""
        return None

    def log_proba_from_decision(self, Z) -> np.ndarray:
        return Z

    def _checked_model(self):
        """The model object whose arrays save() checks for non-finite values."""
        return getattr(self, "model", None)

    def _check_width(self, X):
        if self.n_features is None:
            raise MERError(f"{self.algorithm} member: not trained yet")
        if X.shape[1] != self.n_features:
            raise MERError(f"features: expected {self.n_features} columns, got {X.shape[1]}")

    def save(self, path_without_suffix) -> list[str]:
        base = Path(path_without_suffix)
        model_path = base.with_name(base.name + self.model_suffix)
        meta_path = base.with_name(base.name + ".json")
        # no non-finite weights on disk: the model's fitted arrays and the member's own arrays
        check_arrays([self._checked_model()]
                     + [v for v in vars(self).values() if isinstance(v, np.ndarray)], model_path)
        self._save_model(model_path)
        atomic.write_json(meta_path, {
            "algorithm": self.algorithm,
            "input_kind": self.input_kind,
            "n_features": self.n_features,
            "temperature": self.temperature,
            "params": self.params(),
            "model_file": model_path.name,
            **self._extra_meta(),
        })
        return [model_path.name, meta_path.name]

    @classmethod
    def load(cls, path_without_suffix):
        base = Path(path_without_suffix)
        meta_path = base.with_name(base.name + ".json")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise MERError(f"{meta_path}: not valid JSON ({err})") from None
        if not isinstance(meta, dict):
            raise MERError(f"{meta_path}: expected a JSON object, got {type(meta).__name__}")
        if meta.get("algorithm") != cls.algorithm:
            raise MERError(f"{meta_path}: field 'algorithm' is {meta.get('algorithm')!r}, "
                           f"expected {cls.algorithm!r}")
        member = cls._from_meta(meta)
        member.temperature = _temperature(meta.get("temperature", 1.0), meta_path)
        n_features = meta.get("n_features")
        if n_features is not None and (isinstance(n_features, bool) or not isinstance(n_features, int)
                                       or n_features < 1):
            raise MERError(f"{meta_path}: field 'n_features' is {n_features!r}, expected a positive whole number")
        member.n_features = n_features
        member._read_extra_meta(meta, meta_path)
        member._load_model(base.with_name(base.name + cls.model_suffix))
        return member

    @classmethod
    def _from_meta(cls, meta):
        return cls()

    def _extra_meta(self) -> dict:
        """Fields a kind adds to its metadata sidecar (beside algorithm, params, ...)."""
        return {}

    def _read_extra_meta(self, meta: dict, meta_path) -> None:
        """Read back what `_extra_meta` wrote (checked: the file is untrusted input)."""


class GaussianNBMember(Member):
    """Gaussian naive Bayes; update = partial_fit with the four classes fixed.

    `variance="tied"` (default) predicts with one variance per feature pooled over the classes
    (the per-class statistics are still kept, so partial_fit stays exact). With per-class
    variances, on Emotify the class with the widest spread (Q3) won nearly every window far
    from all means: song-level weighted F1 .15 vs .24 tied (docs/pretraining.md).
    """

    algorithm = "gnb"

    def __init__(self, temperature: float = 1.0, var_smoothing: float = 1e-9, variance: str = "tied"):
        super().__init__(temperature)
        from sklearn.naive_bayes import GaussianNB

        if variance not in ("tied", "per-class"):
            raise MERError(f"gnb variance: expected tied or per-class, got {variance!r}")
        self.var_smoothing = var_smoothing
        self.variance = variance
        self.model = GaussianNB(var_smoothing=var_smoothing)

    def params(self):
        return {"var_smoothing": self.var_smoothing, "variance": self.variance}

    @classmethod
    def _from_meta(cls, meta):
        params = meta.get("params", {})
        return cls(var_smoothing=params.get("var_smoothing", 1e-9),
                   variance=params.get("variance", "per-class"))

    def _fit(self, X, y, sample_weight):
        from sklearn.base import clone

        self.model = clone(self.model)
        self.model.partial_fit(X, y, classes=CLASSES, sample_weight=sample_weight)

    def _update(self, X, y):
        self.model.partial_fit(X, y)

    def _log_proba(self, X):
        # sklearn takes log(class prior); a quadrant never seen has prior 0 -> log(0) = -inf,
        # which is the right answer (probability 0) but would warn, so compute it quietly.
        with np.errstate(divide="ignore"):
            if self.variance == "per-class":
                return self.model.predict_joint_log_proba(X)
            weights, bias = self._tied_linear()
            # one float64 product: float32 would move probabilities by ~1e-5
            return np.asarray(X, dtype=np.float64) @ weights + bias

    def linear_form(self):
        return self._tied_linear() if self.variance == "tied" else None

    def _tied_linear(self):
        """(weights (features x 4), bias (4,)) with log p(c|x) = x @ weights + bias + row constant.

        With one variance per feature shared by the classes, the quadratic term
        -0.5 * sum(x**2 / var) is the same for every class: it cancels when the row is
        normalized (also after tempering, which divides it along with the rest), so the
        joint log-likelihood is linear in x. Recomputed per call: it costs microseconds and
        partial_fit changes the statistics.
        """
        model = self.model
        counts = model.class_count_
        pooled = (counts[:, None] * (model.var_ - model.epsilon_)).sum(axis=0) / counts.sum()
        inv_var = 1.0 / (pooled + model.epsilon_)
        weights = (model.theta_ * inv_var).T
        with np.errstate(divide="ignore"):
            bias = np.log(model.class_prior_) - 0.5 * ((model.theta_ ** 2) @ inv_var)
        return weights, bias

    def _save_model(self, path):
        skops_dump(self.model, path)

    def _load_model(self, path):
        self.model = skops_load(path)


class SGDMember(Member):
    """Logistic regression by SGD (log loss, L2); update = partial_fit with classes fixed.

    Beside its skops file a saved member writes `<name>.linear.npy`: its decision function's
    weights, one row per quadrant, with the intercept as the last column (float64, the
    model's own bits). A loaded member scores from that array alone and deserializes the
    scikit-learn model only when it is trained further or saved changed, so a ranking by a
    committee of SGD and XGBoost members imports no scikit-learn (import_xgboost). A member
    file without the array (written before it existed) loads the model at once, as before.
    """

    algorithm = "sgd"
    LINEAR_SUFFIX = ".linear.npy"

    def __init__(self, temperature: float = 1.0, params: dict | None = None, seed: int = 1987):
        super().__init__(temperature)
        self.sgd_params = dict(DEFAULT_SGD_PARAMS if params is None else params)
        self.seed = int(seed)
        self._model = None    # the SGDClassifier: built, or deserialized, on first use
        self._pending = None  # (verified skops bytes, their path) of a loaded member until then
        self._weights = None  # (4, features + 1) from the .linear.npy of a loaded member

    @property
    def model(self):
        if self._model is None:
            if self._pending is None:
                self._model = self._new_model()
            else:
                data, path = self._pending
                model = skops_loads(data, path)
                if self._weights is not None and not np.array_equal(self._stacked(model), self._weights):
                    raise MERError(f"{path}: the model's weights differ from its {self.LINEAR_SUFFIX} "
                                   "array saved beside it; rebuild the member")
                self._model, self._pending = model, None
        return self._model

    @model.setter
    def model(self, value):
        self._model, self._pending, self._weights = value, None, None

    @staticmethod
    def _stacked(model) -> np.ndarray:
        return np.hstack([np.asarray(model.coef_, dtype=np.float64),
                          np.asarray(model.intercept_, dtype=np.float64)[:, None]])

    def _new_model(self):
        import_sklearn()
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(random_state=self.seed, **self.sgd_params)

    def params(self):
        return {**self.sgd_params, "seed": self.seed}

    @classmethod
    def _from_meta(cls, meta):
        params = dict(meta.get("params", {}))
        seed = params.pop("seed", 1987)
        return cls(params=params, seed=seed)

    def _fit(self, X, y, sample_weight):
        self.model = self._new_model()
        if np.unique(y).size == N_CLASSES:
            self.model.fit(X, y, sample_weight=sample_weight)
        else:
            # fit() would learn only the classes present; epochs of partial_fit keep all four
            for _ in range(int(self.sgd_params.get("max_iter", 5))):
                self.model.partial_fit(X, y, classes=CLASSES, sample_weight=sample_weight)

    def _update(self, X, y):
        self.model.partial_fit(X, y, classes=CLASSES)  # the model is read now: _linear uses its weights

    def _log_proba(self, X):
        weights, bias = self._linear()
        return self.log_proba_from_decision(np.asarray(X, dtype=np.float64) @ weights + bias)

    def _linear(self):
        # the decision function of scikit-learn's linear models: X @ coef_.T + intercept_
        if self._model is None and self._weights is not None:
            # C-ordered copies, laid out as the model's own coef_ and intercept_: a strided view
            # would send the product down another BLAS path and change the last bits
            return np.ascontiguousarray(self._weights[:, :-1]).T, np.ascontiguousarray(self._weights[:, -1])
        return self.model.coef_.T, self.model.intercept_

    def linear_form(self):
        return self._linear()

    def log_proba_from_decision(self, Z):
        # sklearn normalizes one-vs-rest sigmoids by their sum, which is 0/0 = NaN when every
        # decision is very negative; the same normalization in log space stays finite.
        return log_expit(Z)

    def _checked_model(self):
        return self._model  # a model not deserialized yet is checked through its weights array

    def save(self, path_without_suffix) -> list[str]:
        files = super().save(path_without_suffix)
        base = Path(path_without_suffix)
        weights, bias = self._linear()
        with atomic.atomic_open(base.with_name(base.name + self.LINEAR_SUFFIX), "wb") as handle:
            np.save(handle, np.hstack([np.asarray(weights, dtype=np.float64).T,
                                       np.asarray(bias, dtype=np.float64)[:, None]]), allow_pickle=False)
        return [*files, base.name + self.LINEAR_SUFFIX]

    def _save_model(self, path):
        if self._model is None and self._pending is not None:
            atomic.write_bytes(path, self._pending[0])  # unchanged since loaded: the same bytes
        else:
            skops_dump(self.model, path)

    def _load_model(self, path):
        path = Path(path)
        linear_path = path.with_name(path.name[:-len(self.model_suffix)] + self.LINEAR_SUFFIX)
        self._model = self._weights = None
        self._pending = None
        if not linear_path.exists() or self.n_features is None:  # written before the sidecar existed
            self._model = skops_load(path)
            return
        self._pending = (read_skops_bytes(path), path)
        self._weights = self._read_weights(linear_path)

    def _read_weights(self, path) -> np.ndarray:
        try:
            weights = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise MERError(f"{path}: not a readable weights array ({err})") from None
        expected = (N_CLASSES, self.n_features + 1)
        if weights.dtype != np.float64 or weights.shape != expected:
            raise MERError(f"{path}: expected float64 weights of shape {expected} (quadrants x features "
                           f"+ intercept), got {weights.dtype} {weights.shape}")
        if not np.isfinite(weights).all():
            raise MERError(f"{path}: weights must be finite")
        return weights


class BoostedTrees:
    """What the XGBoost members (quadrant classifier, arousal/valence regressor) share:
    training, in-place update rounds, a cheap copy and the booster file. Expects
    `xgb_params`, `rounds`, `update_rounds` and `booster` on the member."""

    model_suffix = ".ubj"

    @staticmethod
    def booster_kwargs(params: dict) -> dict:
        """Constructor arguments from a saved `params` dict (rounds kept beside the booster's)."""
        params = dict(params)
        rounds = params.pop("rounds", DEFAULT_XGB_ROUNDS)
        update_rounds = params.pop("update_rounds", DEFAULT_XGB_UPDATE_ROUNDS)
        return {"params": params, "rounds": rounds, "update_rounds": update_rounds}

    def booster_params(self) -> dict:
        return {**self.xgb_params, "rounds": self.rounds, "update_rounds": self.update_rounds}

    def _train_booster(self, X, label, sample_weight):
        xgb = import_xgboost()

        dtrain = xgb.DMatrix(X, label=label, weight=sample_weight)
        self.booster = xgb.train(self.xgb_params, dtrain, num_boost_round=self.rounds)

    def _add_rounds(self, X, label):
        """update_rounds more rounds on (X, label), added to the booster in place."""
        xgb = import_xgboost()

        dtrain = xgb.DMatrix(X, label=label)
        start = self.booster.num_boosted_rounds()
        for i in range(self.update_rounds):
            self.booster.update(dtrain, iteration=start + i)

    def copy(self):
        """deepcopy would copy the booster through a full serialize/parse round trip (tens of ms
        for 400 trees, and the simulator restores a committee every iteration); slicing all
        rounds is XGBoost's own C-level copy, several times cheaper."""
        twin = _copy.copy(self)
        twin.__dict__ = {k: (_copy.deepcopy(v) if k != "booster" else None) for k, v in self.__dict__.items()}
        twin.booster = self.booster[0:self.booster.num_boosted_rounds()]
        return twin

    def _save_model(self, path):
        with atomic.atomic_path(path) as tmp:
            self.booster.save_model(tmp)

    def _load_model(self, path):
        xgb = import_xgboost()

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(2, "no such file", str(path))
        try:
            booster = xgb.Booster(model_file=str(path))
        except xgb.core.XGBoostError as err:
            raise MERError(f"{path}: not a readable XGBoost model ({str(err).splitlines()[0]})") from None
        # training parameters (eta, depth, seed...) are not part of the saved model
        booster.set_param({k: v for k, v in self.xgb_params.items() if k != "num_class"})
        self.booster = booster


class XGBMember(BoostedTrees, Member):
    """Gradient-boosted trees (multi:softprob, num_class=4) through XGBoost's native API.

    update() adds rounds to the existing booster in place (Booster.update, the loop xgb.train
    runs): xgb.train(xgb_model=booster) would serialize and copy the whole model each call,
    and the experiment engine calls update thousands of times. A batch with one quadrant is
    fine because num_class is fixed in the booster, not inferred from the labels.
    """

    algorithm = "xgb"
    margin_cacheable = True

    def __init__(self, temperature: float = 1.0, params: dict | None = None,
                 rounds: int = DEFAULT_XGB_ROUNDS, update_rounds: int = DEFAULT_XGB_UPDATE_ROUNDS):
        super().__init__(temperature)
        self.xgb_params = dict(DEFAULT_XGB_PARAMS if params is None else params)
        self.xgb_params.update(objective="multi:softprob", num_class=N_CLASSES)
        # reseed the sampler from (seed, iteration): updates after a save/load round trip
        # then draw the same rows and columns as updates of the in-memory booster
        self.xgb_params.setdefault("seed_per_iteration", True)
        self.rounds = int(rounds)
        self.update_rounds = int(update_rounds)
        self.booster = None

    def params(self):
        return self.booster_params()

    @classmethod
    def _from_meta(cls, meta):
        return cls(**cls.booster_kwargs(meta.get("params", {})))

    def _fit(self, X, y, sample_weight):
        self._train_booster(X, y, sample_weight)

    def _update(self, X, y):
        self._add_rounds(X, y)

    def _log_proba(self, X):
        margins = self.predict_margin(X)
        return margins - logsumexp(margins, axis=1, keepdims=True)

    def predict_margin(self, X, prefix=None) -> np.ndarray:
        """(n, 4) float32 raw scores (softmax gives the probabilities).

        prefix: (rounds, margins of the booster's first `rounds` rounds on these rows), e.g.
        from committee.TreeMarginCache; then only the later rounds are evaluated. A retrain
        appends rounds and never changes the earlier trees, so a pre-trained member's margins
        on the pool serve every later version of it.
        """
        # inplace_predict reads the float32 array directly: no DMatrix copy of the windows
        X = np.ascontiguousarray(X, dtype=np.float32)
        if prefix is None:
            return self.booster.inplace_predict(X, predict_type="margin").reshape(-1, N_CLASSES)
        rounds, known = prefix
        total = self.booster.num_boosted_rounds()
        if rounds == total:
            return np.array(known, dtype=np.float32)
        # base_margin zero: the later trees' sum alone (the intercept is already in `known`)
        later = self.booster.inplace_predict(X, predict_type="margin", iteration_range=(rounds, total),
                                             base_margin=np.zeros((len(X), N_CLASSES), np.float32))
        return np.asarray(known, dtype=np.float32) + later.reshape(-1, N_CLASSES)

    def leading_rounds_bytes(self, rounds: int) -> bytes:
        """The first `rounds` rounds as XGBoost's own UBJSON: equal bytes, equal trees."""
        return bytes(self.booster[:rounds].save_raw("ubj"))


class SongStatistics:
    """Mixin for a member that reads one row per song (input kind "song-stats": the song's mean
    and standard deviation over its windows of the standardized window features) instead of one
    row per window.

    Why: a song's label describes the whole clip, and its windows are not independent samples;
    a window member's song probability is a mean of dependent, over-confident votes (GaussianNB's
    needed temperature 256 on Emotify), while a song member sees each song once, with how much
    the sound varies over the clip beside its average. The song rows are standardized with the
    training songs' means and deviations (`center`, `scale`, kept in the metadata sidecar), so
    the linear model's L2 penalty treats the columns alike; an update keeps them fixed.
    """

    input_kind = "song-stats"
    margin_cacheable = False  # the pool's margin cache holds window margins
    center = None
    scale = None

    def _standardized(self, X):
        return ((np.asarray(X, dtype=np.float64) - self.center) / self.scale).astype(np.float32)

    def _fit(self, X, y, sample_weight):
        X = np.asarray(X, dtype=np.float64)
        self.center = X.mean(axis=0)
        spread = X.std(axis=0)
        self.scale = np.where(spread > 1e-8, spread, 1.0)  # a constant column stays as it is
        super()._fit(self._standardized(X), y, sample_weight)

    def _update(self, X, y):
        super()._update(self._standardized(X), y)

    def _log_proba(self, X):
        return super()._log_proba(self._standardized(X))

    def linear_form(self):
        return None  # the committee's batched window scoring does not apply to song rows

    def _extra_meta(self) -> dict:
        return {"song_center": np.asarray(self.center, dtype=float).tolist(),
                "song_scale": np.asarray(self.scale, dtype=float).tolist()}

    def _read_extra_meta(self, meta: dict, meta_path) -> None:
        values = {}
        for field in ("song_center", "song_scale"):
            raw = meta.get(field)
            array = None
            if isinstance(raw, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
                array = np.asarray(raw, dtype=np.float64)
            if array is None or array.ndim != 1 or len(array) != self.n_features or not np.isfinite(array).all():
                raise MERError(f"{meta_path}: field {field!r}: expected {self.n_features} finite numbers")
            values[field] = array
        if (values["song_scale"] <= 0).any():
            raise MERError(f"{meta_path}: field 'song_scale': expected positive numbers")
        self.center, self.scale = values["song_center"], values["song_scale"]


class SongSGDMember(SongStatistics, SGDMember):
    """Logistic regression by SGD on a song's window statistics (update: partial_fit)."""

    algorithm = "song-sgd"


class SongGaussianNBMember(SongStatistics, GaussianNBMember):
    """GaussianNB on a song's window statistics (update: partial_fit)."""

    algorithm = "song-gnb"


class SongXGBMember(SongStatistics, XGBMember):
    """XGBoost trees on a song's window statistics (update: more rounds)."""

    algorithm = "song-xgb"


MEMBER_TYPES: dict[str, type] = {"gnb": GaussianNBMember, "sgd": SGDMember, "xgb": XGBMember,
                                 "song-sgd": SongSGDMember, "song-gnb": SongGaussianNBMember,
                                 "song-xgb": SongXGBMember}
# -m all: the window classifiers (the Emotify committee's members); -m all-song: the song members
WINDOW_CLASSIFIERS = ("gnb", "sgd", "xgb")
SONG_CLASSIFIERS = ("song-sgd", "song-gnb", "song-xgb")


def make_member(algorithm: str, **kwargs):
    """A new window-feature classifier (gnb, sgd, xgb); every kind: registry.member_class."""
    if algorithm not in MEMBER_TYPES:
        raise MERError(f"member algorithm: expected one of {', '.join(MEMBER_TYPES)}, got {algorithm!r}")
    return MEMBER_TYPES[algorithm](**kwargs)


# --- comparison-only models (reports of deam_classifier, never committee members) ---------
COMPARISON_TYPES = ("knn", "rf", "svc", "gbc", "gpc")
# Kernel methods scale badly with windows; they train on a stratified sample of this many
# windows (recorded in the report) so a comparison run stays in minutes.
COMPARISON_MAX_TRAIN = {"svc": 5000, "gpc": 1000, "gbc": 20000}


class ComparisonModel:
    """A scikit-learn classifier with fit / predict_proba (4 columns); no update, no save."""

    input_kind = "features"

    def __init__(self, algorithm: str, seed: int = 1987):
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
        from sklearn.gaussian_process import GaussianProcessClassifier
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.svm import SVC

        builders = {
            "knn": lambda: KNeighborsClassifier(n_neighbors=15),
            "rf": lambda: RandomForestClassifier(n_estimators=100, min_samples_leaf=2,
                                                 random_state=seed, n_jobs=1),
            "svc": lambda: CalibratedClassifierCV(SVC(random_state=seed), ensemble=False),
            # the histogram variant: GradientBoostingClassifier takes minutes per split here
            "gbc": lambda: HistGradientBoostingClassifier(max_iter=100, random_state=seed),
            "gpc": lambda: GaussianProcessClassifier(random_state=seed),
        }
        if algorithm not in builders:
            raise MERError(f"model: expected one of {', '.join(builders)}, got {algorithm!r}")
        self.algorithm = algorithm
        self.seed = seed
        self.model = builders[algorithm]()

    def fit(self, X, y, sample_weight=None):
        X, y = _check_xy(X, y)
        cap = COMPARISON_MAX_TRAIN.get(self.algorithm)
        if cap and X.shape[0] > cap:
            from sklearn.model_selection import train_test_split

            X, _, y, _ = train_test_split(X, y, train_size=cap, stratify=y, random_state=self.seed)
        from threadpoolctl import threadpool_limits

        # one OpenMP/BLAS thread: spinning threads on a shared machine cost far more than they gain
        with threadpool_limits(limits=1):
            self.model.fit(X, y)
        return self

    def predict_proba(self, X):
        X, _ = _check_xy(X)
        proba = np.zeros((X.shape[0], N_CLASSES))
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            proba[:, self.model.classes_.astype(int)] = self.model.predict_proba(X)
        proba = np.clip(np.nan_to_num(proba), 0, None)
        total = proba.sum(axis=1, keepdims=True)
        return np.where(total > 0, proba / np.where(total > 0, total, 1), 1.0 / N_CLASSES)
