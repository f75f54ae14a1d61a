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


def agreement_weights(agree, shared, alpha: float = 2.0, power: float = 3.0, base: float = 0.4):
    """Vote weight of each other listener from how often they agreed with the listener on the
    songs both annotated: the agreement rate shrunk towards `base` by `alpha` pseudo-songs,
    raised to `power` (the constants were chosen on the development listeners)."""
    return ((agree + alpha * base) / (shared + alpha)) ** power


class ListenerVotes:
    """The other listeners' quadrants on one listener's songs, to weight the crowd by how often
    each other listener agreed with this one on the songs answered so far ("listeners like me").

    Measured on listeners outside the benchmark before it was built (docs/experiments.md): a
    vote weighted this way named the listener's quadrant more often than the plain majority.
    Weight of listener w: ((agreements + alpha * base) / (shared answered songs + alpha)) ** power,
    so with no answers every weight is equal and the block equals crowd_features exactly.
    """

    def __init__(self, annotations: pd.DataFrame, songs, user, alpha: float = 2.0, power: float = 3.0,
                 base: float = 0.4):
        self.alpha, self.power, self.base = float(alpha), float(power), float(base)
        position = {s: i for i, s in enumerate(songs)}
        others = annotations[(annotations["user"] != str(user)) & annotations["song"].isin(position)]
        listeners, column = np.unique(others["user"].to_numpy(), return_inverse=True)
        self.votes = np.full((len(position), len(listeners)), -1, dtype=np.int8)
        self.votes[others["song"].map(position).to_numpy(), column] = others["quadrant"].to_numpy(dtype=np.int8)
        self.onehot = (self.votes[:, :, None] == np.arange(N_CLASSES)).astype(float)  # (songs, listeners, 4)

    def _weights(self, agree, seen):
        return agreement_weights(agree, seen, self.alpha, self.power, self.base)

    def crowd_block(self, answered, answers) -> np.ndarray:
        """(songs, 6) crowd features with every other listener weighted by their agreement with
        `answers` (quadrants of the song positions `answered`). An answered song's own row is
        weighted without that song (its label would otherwise favour the listeners who agree
        on it)."""
        answered = np.asarray(answered, dtype=np.int64)
        answers = np.asarray(answers, dtype=np.int64)
        hit = (self.votes[answered] == answers[:, None]).astype(float)  # (answered, listeners)
        seen = (self.votes[answered] >= 0).astype(float)
        agree, shared = hit.sum(axis=0), seen.sum(axis=0)
        counts = np.einsum("swk,w->sk", self.onehot, self._weights(agree, shared))
        for row, song in enumerate(answered):
            counts[song] = self.onehot[song].T @ self._weights(agree - hit[row], shared - seen[row])
        block = _crowd_block(counts)
        n = self.onehot.sum(axis=(1, 2))  # the number of listeners stays a count, not a weight
        block[:, 4] = np.log1p(n)
        block[:, 5] = (n == 0).astype(float)
        return block


def weighted_leave_one_out_examples(annotations: pd.DataFrame, exclude_user, rng, max_answers: int = 60,
                                    alpha: float = 2.0, power: float = 3.0, base: float = 0.4):
    """leave_one_out_examples as ListenerVotes will see them: each other listener v "has answered"
    a random number (0..max_answers) of their songs, the others are weighted by their agreement
    with v on those, and v's remaining songs are the examples (crowd features without v and
    without exclude_user). Teaches the member how far an agreement-weighted vote can be trusted
    after a given number of answers."""
    table = annotations[annotations["user"] != str(exclude_user)]
    users, u_idx = np.unique(table["user"].to_numpy(), return_inverse=True)
    songs, s_idx = np.unique(table["song"].to_numpy(), return_inverse=True)
    labels = np.full((len(users), len(songs)), -1, dtype=np.int8)
    labels[u_idx, s_idx] = table["quadrant"].to_numpy(dtype=np.int8)
    onehot = (labels[:, :, None] == np.arange(N_CLASSES)).astype(float)  # (listeners, songs, 4)
    out_songs, blocks, out_labels, out_listeners = [], [], [], []
    for v in range(len(users)):
        theirs = np.flatnonzero(labels[v] >= 0)
        if len(theirs) < 2:
            continue
        n_answers = int(rng.integers(0, min(max_answers, len(theirs) - 1) + 1))
        order = rng.permutation(theirs)
        answered, examples = order[:n_answers], order[n_answers:]
        hit = (labels[:, answered] == labels[v, answered]).sum(axis=1).astype(float)
        seen = (labels[:, answered] >= 0).sum(axis=1).astype(float)
        weights = agreement_weights(hit, seen, alpha, power, base)
        weights[v] = 0.0
        counts = np.einsum("w,wsk->sk", weights, onehot[:, examples])
        block = _crowd_block(counts)
        n = onehot[:, examples].sum(axis=(0, 2)) - 1  # listeners besides v, a count
        block[:, 4], block[:, 5] = np.log1p(n), (n == 0).astype(float)
        out_songs.append(songs[examples])
        blocks.append(block)
        out_labels.append(labels[v, examples].astype(np.int64))
        out_listeners.append(np.full(len(examples), users[v], dtype=object))
    return (np.concatenate(out_songs), np.vstack(blocks), np.concatenate(out_labels),
            np.concatenate(out_listeners))


def _loss_grad(theta, X, Y, W0, b0, strength_W, strength_b):
    """Cross-entropy of a multinomial LR + half the strength-weighted squared distance to (W0, b0).

    strength_W: one strength per row of W (shape (p, 1)); strength_b: the intercepts' strength.
    """
    p = X.shape[1]
    W = theta[:p * N_CLASSES].reshape(p, N_CLASSES)
    b = theta[p * N_CLASSES:]
    logits = X @ W + b
    log_p = logits - logsumexp(logits, axis=1, keepdims=True)
    loss = -(Y * log_p).sum() + 0.5 * ((strength_W * (W - W0) ** 2).sum() + strength_b * ((b - b0) ** 2).sum())
    residual = np.exp(log_p) - Y
    grad_W = X.T @ residual + strength_W * (W - W0)
    grad_b = residual.sum(axis=0) + strength_b * (b - b0)
    return loss, np.concatenate([grad_W.ravel(), grad_b])


def fit_with_prior(X, y, W0, b0, strength, strength_rows=None, strength_b=None):
    """MAP multinomial LR under a Gaussian prior centred on (W0, b0).

    strength: the prior strength of every weight; strength_rows (one per row of W) and
    strength_b (the intercepts) override it block by block.
    Written out (scipy's L-BFGS on a 20-line objective) because scikit-learn's logistic
    regression only shrinks towards zero, not towards a given weight vector.
    """
    X = np.asarray(X, dtype=float)
    Y = np.eye(N_CLASSES)[np.asarray(y, dtype=np.int64)]
    rows = np.full(X.shape[1], float(strength)) if strength_rows is None else np.asarray(strength_rows, float)
    s_b = float(strength) if strength_b is None else float(strength_b)
    theta0 = np.concatenate([W0.ravel(), b0])
    result = minimize(_loss_grad, theta0, args=(X, Y, W0, b0, rows[:, None], s_b), jac=True, method="L-BFGS-B",
                      options={"maxiter": 200})
    p = X.shape[1]
    return result.x[:p * N_CLASSES].reshape(p, N_CLASSES), result.x[p * N_CLASSES:]


def smoothed_freqs(crowd: np.ndarray, smoothing: float, base_rates) -> np.ndarray:
    """The crowd block's Q1..Q4 frequencies with `smoothing` Dirichlet pseudo-counts spread as
    `base_rates`: (counts + a * base_rates) / (n + a), the posterior mean of the song's
    quadrant distribution. n comes back from the log(1 + n) column, so the input is the plain
    crowd_features output; a song without other listeners gets `base_rates`."""
    crowd = np.asarray(crowd, dtype=float)
    freqs = crowd[:, :N_CLASSES]
    if smoothing <= 0:
        return freqs
    n = np.expm1(crowd[:, N_CLASSES])[:, None]
    return (freqs * n + smoothing * np.asarray(base_rates, dtype=float)) / (n + smoothing)


def dirichlet_concentration(counts: np.ndarray, base_rates, grid=None) -> float:
    """Empirical Bayes: the Dirichlet concentration a (prior a * base_rates) with the highest
    Dirichlet-multinomial marginal likelihood of the songs' quadrant counts (songs with at least
    two listeners; the counts must not contain the listener being predicted)."""
    from scipy.special import gammaln

    counts = np.asarray(counts, dtype=float)
    counts = counts[counts.sum(axis=1) >= 2]
    if len(counts) == 0:
        return 1.0
    grid = np.exp(np.linspace(np.log(0.05), np.log(1000.0), 200)) if grid is None else np.asarray(grid, float)
    base = np.asarray(base_rates, dtype=float)
    n = counts.sum(axis=1)
    best, best_ll = 1.0, -np.inf
    for a in grid:
        alpha = a * base
        ll = (gammaln(a) - gammaln(n + a)).sum() + (gammaln(counts + alpha) - gammaln(alpha)).sum()
        if ll > best_ll:
            best, best_ll = float(a), ll
    return best


class CrowdMember(Member):
    """Multinomial LR on [crowd features | standardized audio]; update = refit under the prior.

    Every update refits on all the listener's answers so far (kept in the member), starting from
    the pre-trained weights: the prior is what the member remembers of the crowd.

    Inputs are always crowd_features' N_CROWD columns followed by the audio; the member derives
    its own design from them: `smoothing` > 0 replaces the frequencies by Dirichlet-smoothed
    ones towards `base_rates`; `interactions` adds the (smoothed) frequencies times
    log(1 + listeners), so the weight on the crowd can grow with its size. `crowd_prior_strength`
    (None = `prior_strength`) is the prior strength of the intercepts and the crowd block in
    personalization, `prior_strength` that of the audio block. Defaults reproduce the
    original member, and member files saved before these options load unchanged.
    """

    algorithm = "crowd"
    input_kind = "crowd+features"
    model_suffix = ".npz"

    def __init__(self, temperature: float = 1.0, C: float = 1.0, prior_strength: float = 10.0,
                 smoothing: float = 0.0, base_rates=None, interactions: bool = False,
                 crowd_prior_strength: float | None = None, class_weight: str | None = None):
        super().__init__(temperature)
        self.C = float(C)
        self.prior_strength = float(prior_strength)
        self.smoothing = float(smoothing)
        self.base_rates = (np.full(N_CLASSES, 1.0 / N_CLASSES) if base_rates is None
                           else np.asarray(base_rates, dtype=float))
        self.interactions = bool(interactions)
        self.crowd_prior_strength = None if crowd_prior_strength is None else float(crowd_prior_strength)
        self.class_weight = class_weight
        self.W0 = self.b0 = self.W = self.b = None
        self.answers_X = np.zeros((0, 0))
        self.answers_y = np.zeros(0, dtype=np.int64)

    def params(self):
        return {"C": self.C, "prior_strength": self.prior_strength, "smoothing": self.smoothing,
                "base_rates": [float(v) for v in self.base_rates], "interactions": self.interactions,
                "crowd_prior_strength": self.crowd_prior_strength, "class_weight": self.class_weight}

    @classmethod
    def _from_meta(cls, meta):
        params = meta.get("params", {})
        return cls(C=params.get("C", 1.0), prior_strength=params.get("prior_strength", 10.0),
                   smoothing=params.get("smoothing", 0.0), base_rates=params.get("base_rates"),
                   interactions=params.get("interactions", False),
                   crowd_prior_strength=params.get("crowd_prior_strength"),
                   class_weight=params.get("class_weight"))

    # --- the design the model sees ------------------------------------------------------
    def n_crowd_design(self) -> int:
        return N_CROWD + (N_CLASSES if self.interactions else 0)

    def design(self, X) -> np.ndarray:
        """crowd_features columns + audio -> the model's columns (identity with the defaults)."""
        X = np.asarray(X, dtype=float)
        if self.smoothing <= 0 and not self.interactions:
            return X
        crowd, audio = X[:, :N_CROWD], X[:, N_CROWD:]
        freqs = smoothed_freqs(crowd, self.smoothing, self.base_rates)
        blocks = [freqs, crowd[:, N_CLASSES:N_CROWD]]
        if self.interactions:
            blocks.append(freqs * crowd[:, [N_CLASSES]])
        return np.hstack([*blocks, audio])

    def strengths(self, n_columns: int, strength: float | None = None, crowd_strength: float | None = None):
        """(per-row strengths of W, intercept strength) for personalization."""
        audio_s = self.prior_strength if strength is None else float(strength)
        crowd_s = crowd_strength if crowd_strength is not None else (
            self.crowd_prior_strength if self.crowd_prior_strength is not None and strength is None else audio_s)
        rows = np.full(n_columns, audio_s)
        rows[:self.n_crowd_design()] = crowd_s
        return rows, crowd_s

    def _fit(self, X, y, sample_weight):
        from sklearn.linear_model import LogisticRegression

        X = self.design(X)
        model = LogisticRegression(C=self.C, max_iter=1000, class_weight=self.class_weight)
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
        self.answers_X = np.zeros((0, self.n_features))
        self.answers_y = np.zeros(0, dtype=np.int64)

    def _update(self, X, y):
        self.answers_X = np.vstack([self.answers_X, X])
        self.answers_y = np.concatenate([self.answers_y, y])
        design = self.design(self.answers_X)
        rows, s_b = self.strengths(design.shape[1])
        self.W, self.b = fit_with_prior(design, self.answers_y, self.W0, self.b0, self.prior_strength, rows, s_b)

    def _log_proba(self, X):
        return self.design(X) @ self.W + self.b

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


def _heldout_loss(member, X, y, fit_idx, eval_idx, strength, crowd_strength):
    design = member.design(X)
    rows, s_b = member.strengths(design.shape[1], strength, crowd_strength)
    W, b = fit_with_prior(design[fit_idx], y[fit_idx], member.W0, member.b0, strength, rows, s_b)
    logits = design[eval_idx] @ W + b
    log_p = logits - logsumexp(logits, axis=1, keepdims=True)
    return -log_p[np.arange(len(eval_idx)), y[eval_idx]].mean()


def prior_losses(member: CrowdMember, X, y, listeners, rng, grid=PRIOR_GRID, crowd_grid=None,
                 max_listeners: int = 12, min_answers: int = 20) -> np.ndarray:
    """Summed held-out log-loss per (audio strength, crowd strength) when personalizing `member`
    to training listeners: each listener's examples (songs `member` never saw) split 60/40.
    crowd_grid None: one strength for every weight (a (len(grid), 1) table)."""
    listeners = np.asarray(listeners)
    names, sizes = np.unique(listeners, return_counts=True)
    names = names[sizes >= min_answers]
    shape = (len(grid), 1 if crowd_grid is None else len(crowd_grid))
    losses = np.zeros(shape)
    if len(names) == 0:
        return losses
    names = rng.choice(names, size=min(max_listeners, len(names)), replace=False)
    for name in names:
        idx = rng.permutation(np.flatnonzero(listeners == name))
        cut = int(0.6 * len(idx))
        for g, strength in enumerate(grid):
            for h in range(shape[1]):
                crowd_s = strength if crowd_grid is None else crowd_grid[h]
                losses[g, h] += _heldout_loss(member, X, y, idx[:cut], idx[cut:], strength, crowd_s)
    return losses


def choose_prior_strength(member: CrowdMember, X, y, listeners, rng, grid=PRIOR_GRID,
                          max_listeners: int = 12, min_answers: int = 20) -> float:
    """The prior strength with the lowest held-out log-loss when personalizing `member` to
    training listeners: each listener's examples (songs `member` never saw) split 60/40."""
    losses = prior_losses(member, X, y, listeners, rng, grid, None, max_listeners, min_answers)
    if not losses.any():
        return member.prior_strength
    return float(grid[int(np.argmin(losses[:, 0]))])


# Named option sets for pretrain_crowd_members, so experiments and the live loop say which one
# they ran. "smoothed" was picked on listeners outside the benchmark (docs/experiments.md).
# "similar" pre-trains like "plain" and feeds the member crowd frequencies weighted by how
# often each other listener agreed with this one (ListenerVotes) once answers exist.
CROWD_VARIANTS = {
    "plain": {},
    "smoothed": {"smoothing": "eb", "interactions": True, "block_prior": True},
    "similar": {"listener_weights": True},
    "similar-pretrained": {"listener_weights": True, "weighted_examples": True},
}


def variant_options(name: str) -> dict:
    """pretrain_crowd_members's keyword arguments of a variant."""
    if name not in CROWD_VARIANTS:
        raise MERError(f"crowd variant: expected one of {', '.join(CROWD_VARIANTS)}, got {name!r}")
    return {k: v for k, v in CROWD_VARIANTS[name].items() if k != "listener_weights"}


def uses_listener_weights(name: str) -> bool:
    return bool(CROWD_VARIANTS.get(name, {}).get("listener_weights"))


def pretrain_crowd_members(annotations: pd.DataFrame, song_audio: dict, target_user, n_splits: int = 5,
                           test_size: float = 0.2, seed: int = 1987, C: float = 1.0, smoothing=0.0,
                           interactions: bool = False, block_prior: bool = False, class_weight=None,
                           cv_splits: int = 1, C_grid=None, weighted_examples: bool = False) -> list:
    """Leave-one-out pre-training for one target listener: 5 members on 5 song splits.

    song_audio: song id -> standardized audio feature vector (songs without one are skipped).
    The target's annotations are never used (neither as labels nor in crowd features).
    smoothing: Dirichlet pseudo-counts for the crowd frequencies (CrowdMember); "eb" = the
    empirical-Bayes concentration of the other listeners' song counts, towards their overall
    quadrant distribution. block_prior: choose the crowd block's and intercepts' prior strength
    separately from the audio block's. cv_splits: on how many splits' held-out songs the prior
    strength (and C, when C_grid is given) is chosen (1 = the first split, as originally).
    weighted_examples: pre-train on weighted_leave_one_out_examples (for ListenerVotes inputs).
    """
    from sklearn.model_selection import GroupShuffleSplit

    if weighted_examples:
        songs, crowd, labels, listeners = weighted_leave_one_out_examples(
            annotations, target_user, np.random.default_rng([seed, 60]))
    else:
        songs, crowd, labels, listeners = leave_one_out_examples(annotations, exclude_user=target_user)
    keep = np.array([s in song_audio for s in songs])
    songs, crowd, labels, listeners = songs[keep], crowd[keep], labels[keep], listeners[keep]
    if len(songs) < 10:
        raise MERError(f"crowd pre-training for {target_user}: only {len(songs)} examples")
    X = np.hstack([crowd, np.vstack([song_audio[s] for s in songs])]).astype(np.float32)
    others = annotations[annotations["user"] != str(target_user)]
    base_rates = np.bincount(others["quadrant"].to_numpy(dtype=np.int64), minlength=N_CLASSES) + 1.0
    base_rates = base_rates / base_rates.sum()
    if smoothing == "eb":
        smoothing = dirichlet_concentration(song_counts(others, sorted(set(others["song"]))), base_rates)
    options = {"smoothing": float(smoothing or 0.0), "base_rates": base_rates, "interactions": interactions,
               "class_weight": class_weight}
    rng = np.random.default_rng(seed)
    splitter = GroupShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)
    _, groups = np.unique(songs, return_inverse=True)
    splits = list(splitter.split(X, labels, groups))
    if C_grid is not None:  # C by held-out log-loss of the pre-trained member on the held-out songs
        scores = np.zeros(len(C_grid))
        for train, held_out in splits[:cv_splits]:
            for g, c in enumerate(C_grid):
                proba = CrowdMember(C=c, **options).fit(X[train], labels[train]).predict_proba(X[held_out])
                scores[g] -= np.log(np.clip(proba[np.arange(len(held_out)), labels[held_out]], 1e-12, None)).sum()
        C = float(C_grid[int(np.argmin(scores))])
    members = [CrowdMember(C=C, **options).fit(X[train], labels[train]) for train, _ in splits]
    crowd_grid = PRIOR_GRID if block_prior else None
    losses = sum(prior_losses(members[k], X[held_out].astype(float), labels[held_out], listeners[held_out], rng,
                              PRIOR_GRID, crowd_grid) for k, (_, held_out) in enumerate(splits[:cv_splits]))
    if np.any(losses):
        g, h = np.unravel_index(int(np.argmin(losses)), losses.shape)
        strength, crowd_strength = PRIOR_GRID[g], (PRIOR_GRID[h] if block_prior else None)
    else:
        strength, crowd_strength = members[0].prior_strength, None
    for member in members:
        member.prior_strength = float(strength)
        member.crowd_prior_strength = None if crowd_strength is None else float(crowd_strength)
    return members
