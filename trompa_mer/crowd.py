"""Crowd-aware member: predict one listener from the other listeners *and* the audio.

Inputs per (listener, song): the relative frequencies of Q1..Q4 among the *other* listeners of
the song (never the listener's own), log(1 + number of those listeners), an indicator for "no
other listener", then the song's (standardized) audio features.

Model: multinomial logistic regression. Pre-training is leave-one-out: one example per (other
listener v, song s) with v's quadrant as label and the crowd features of s computed without v
(and without the target listener). Personalization refits on the listener's answers with a
Gaussian prior centred on the pre-trained weights, so a batch with one quadrant moves the
model only as far as the evidence allows and all four classes keep their weights. The prior
strength is chosen by cross-validation on the training listeners (never on test songs).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import logsumexp

from . import atomic
from .errors import MERError
from .members import Member
from .quadrants import N_CLASSES

CROWD_COLUMNS = ["crowd_Q1", "crowd_Q2", "crowd_Q3", "crowd_Q4", "crowd_log_listeners", "crowd_none"]
N_CROWD = len(CROWD_COLUMNS)
PRIOR_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)


def _crowd_block(counts: np.ndarray) -> np.ndarray:
    """(n, 4) quadrant counts of other listeners -> (n, 6) crowd features."""
    counts = np.asarray(counts, dtype=float)
    n = counts.sum(axis=1)
    freqs = np.divide(counts, n[:, None], out=np.zeros_like(counts), where=n[:, None] > 0)
    return np.column_stack([freqs, np.log1p(n), (n == 0).astype(float)])


def song_counts(annotations: pd.DataFrame, songs, exclude_users=()) -> np.ndarray:
    """(len(songs), 4) quadrant counts per song among listeners not in `exclude_users`."""
    table = annotations[~annotations["user"].isin(set(map(str, exclude_users)))]
    counts = pd.crosstab(table["song"], table["quadrant"]).reindex(columns=range(N_CLASSES), fill_value=0)
    return counts.reindex(list(songs), fill_value=0).to_numpy(dtype=float, copy=True)


def crowd_features(annotations: pd.DataFrame, songs, exclude_users=()) -> np.ndarray:
    """Crowd features of `songs` for a listener: every listener in `exclude_users` left out."""
    return _crowd_block(song_counts(annotations, songs, exclude_users))


def leave_one_out_examples(annotations: pd.DataFrame, exclude_user=None):
    """One example per (listener v != exclude_user, song): (songs, crowd features without v and
    without exclude_user, v's quadrant, v)."""
    table = annotations if exclude_user is None else annotations[annotations["user"] != str(exclude_user)]
    songs = table["song"].to_numpy()
    labels = table["quadrant"].to_numpy(dtype=np.int64)
    counts = song_counts(table, songs)
    counts[np.arange(len(labels)), labels] -= 1  # remove v's own annotation
    return songs, _crowd_block(counts), labels, table["user"].to_numpy()


def _loss_grad(theta, X, Y, W0, b0, strength):
    """Cross-entropy of a multinomial LR + (strength / 2) * squared distance to (W0, b0)."""
    p = X.shape[1]
    W = theta[:p * N_CLASSES].reshape(p, N_CLASSES)
    b = theta[p * N_CLASSES:]
    logits = X @ W + b
    log_p = logits - logsumexp(logits, axis=1, keepdims=True)
    loss = -(Y * log_p).sum() + 0.5 * strength * (((W - W0) ** 2).sum() + ((b - b0) ** 2).sum())
    residual = np.exp(log_p) - Y
    grad_W = X.T @ residual + strength * (W - W0)
    grad_b = residual.sum(axis=0) + strength * (b - b0)
    return loss, np.concatenate([grad_W.ravel(), grad_b])


def fit_with_prior(X, y, W0, b0, strength):
    """MAP multinomial LR under a Gaussian prior centred on (W0, b0).

    Written out (scipy's L-BFGS on a 20-line objective) because scikit-learn's logistic
    regression only shrinks towards zero, not towards a given weight vector.
    """
    X = np.asarray(X, dtype=float)
    Y = np.eye(N_CLASSES)[np.asarray(y, dtype=np.int64)]
    theta0 = np.concatenate([W0.ravel(), b0])
    result = minimize(_loss_grad, theta0, args=(X, Y, W0, b0, float(strength)), jac=True, method="L-BFGS-B",
                      options={"maxiter": 200})
    p = X.shape[1]
    return result.x[:p * N_CLASSES].reshape(p, N_CLASSES), result.x[p * N_CLASSES:]


class CrowdMember(Member):
    """Multinomial LR on [crowd features | standardized audio]; update = refit under the prior.

    Every update refits on all the listener's answers so far (kept in the member), starting from
    the pre-trained weights: the prior is what the member remembers of the crowd.
    """

    algorithm = "crowd"
    input_kind = "crowd+features"
    model_suffix = ".npz"

    def __init__(self, temperature: float = 1.0, C: float = 1.0, prior_strength: float = 10.0):
        super().__init__(temperature)
        self.C = float(C)
        self.prior_strength = float(prior_strength)
        self.W0 = self.b0 = self.W = self.b = None
        self.answers_X = np.zeros((0, 0))
        self.answers_y = np.zeros(0, dtype=np.int64)

    def params(self):
        return {"C": self.C, "prior_strength": self.prior_strength}

    @classmethod
    def _from_meta(cls, meta):
        params = meta.get("params", {})
        return cls(C=params.get("C", 1.0), prior_strength=params.get("prior_strength", 10.0))

    def _fit(self, X, y, sample_weight):
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=self.C, max_iter=1000)
        model.fit(X, y, sample_weight=sample_weight)
        W = np.zeros((X.shape[1], N_CLASSES))
        b = np.full(N_CLASSES, -10.0)  # a quadrant never seen in training: (almost) never predicted
        for row, c in enumerate(model.classes_.astype(int)):
            if len(model.classes_) == 2:  # binary sklearn stores one row for the second class
                W[:, model.classes_[1]] = model.coef_[0]
                b[model.classes_[1]] = model.intercept_[0]
                b[model.classes_[0]] = 0.0
                break
            W[:, c] = model.coef_[row]
            b[c] = model.intercept_[row]
        self.W0, self.b0, self.W, self.b = W, b, W.copy(), b.copy()
        self.answers_X = np.zeros((0, X.shape[1]))
        self.answers_y = np.zeros(0, dtype=np.int64)

    def _update(self, X, y):
        self.answers_X = np.vstack([self.answers_X, X])
        self.answers_y = np.concatenate([self.answers_y, y])
        self.W, self.b = fit_with_prior(self.answers_X, self.answers_y, self.W0, self.b0, self.prior_strength)

    def _log_proba(self, X):
        return np.asarray(X, dtype=float) @ self.W + self.b

    def _save_model(self, path):
        with atomic.atomic_open(path, "wb") as handle:
            np.savez(handle, W0=self.W0, b0=self.b0, W=self.W, b=self.b, answers_X=self.answers_X,
                     answers_y=self.answers_y)

    def _load_model(self, path):
        try:
            with np.load(path, allow_pickle=False) as data:
                for key in ("W0", "b0", "W", "b", "answers_X", "answers_y"):
                    setattr(self, key, np.asarray(data[key]))
        except (OSError, ValueError, KeyError) as err:
            raise MERError(f"{path}: not a readable crowd member ({err})") from None


def choose_prior_strength(member: CrowdMember, X, y, listeners, rng, grid=PRIOR_GRID,
                          max_listeners: int = 12, min_answers: int = 20) -> float:
    """The prior strength with the lowest held-out log-loss when personalizing `member` to
    training listeners: each listener's examples (songs `member` never saw) split 60/40."""
    listeners = np.asarray(listeners)
    names, sizes = np.unique(listeners, return_counts=True)
    names = names[sizes >= min_answers]
    if len(names) == 0:
        return member.prior_strength
    names = rng.choice(names, size=min(max_listeners, len(names)), replace=False)
    losses = np.zeros(len(grid))
    for name in names:
        idx = rng.permutation(np.flatnonzero(listeners == name))
        cut = int(0.6 * len(idx))
        fit_idx, eval_idx = idx[:cut], idx[cut:]
        Y_eval = np.eye(N_CLASSES)[y[eval_idx]]
        for g, strength in enumerate(grid):
            W, b = fit_with_prior(X[fit_idx], y[fit_idx], member.W0, member.b0, strength)
            logits = X[eval_idx] @ W + b
            log_p = logits - logsumexp(logits, axis=1, keepdims=True)
            losses[g] -= (Y_eval * log_p).sum() / len(eval_idx)
    return float(grid[int(np.argmin(losses))])


def pretrain_crowd_members(annotations: pd.DataFrame, song_audio: dict, target_user, n_splits: int = 5,
                           test_size: float = 0.2, seed: int = 1987, C: float = 1.0) -> list:
    """Leave-one-out pre-training for one target listener: 5 members on 5 song splits.

    song_audio: song id -> standardized audio feature vector (songs without one are skipped).
    The target's annotations are never used (neither as labels nor in crowd features).
    """
    from sklearn.model_selection import GroupShuffleSplit

    songs, crowd, labels, listeners = leave_one_out_examples(annotations, exclude_user=target_user)
    keep = np.array([s in song_audio for s in songs])
    songs, crowd, labels, listeners = songs[keep], crowd[keep], labels[keep], listeners[keep]
    if len(songs) < 10:
        raise MERError(f"crowd pre-training for {target_user}: only {len(songs)} examples")
    X = np.hstack([crowd, np.vstack([song_audio[s] for s in songs])]).astype(np.float32)
    rng = np.random.default_rng(seed)
    members = []
    splitter = GroupShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)
    _, groups = np.unique(songs, return_inverse=True)
    for k, (train, held_out) in enumerate(splitter.split(X, labels, groups)):
        member = CrowdMember(C=C).fit(X[train], labels[train])
        if k == 0:  # one strength for all members, from the first split's held-out songs
            strength = choose_prior_strength(member, X[held_out].astype(float), labels[held_out],
                                             listeners[held_out], rng)
        member.prior_strength = strength
        members.append(member)
    return members
