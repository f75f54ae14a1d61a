"""Query strategies: which songs a committee asks a listener about, as small pure functions.

Every score function reads the committee's song probabilities, shaped members x songs x 4
(`member_proba`, as Committee.song_proba gives them), plus what the strategy needs (the songs'
features for density and diversity, the regression members' arousal/valence for max-std), and
returns one score per song: higher = ask sooner. The registry (STRATEGIES) names them for the
scripts; `scores_for` and `choose` are what the loop and the simulator call.

Consensus entropy is today's `mc` mode, computed by the same functions as consensus.mode_scores,
so the default ranking is bit for bit the one the loop always gave. The peers these agree with
(tests/test_strategies_peers.py): modAL 0.4.2.1 and scikit-activeml 1.0.1.

A name may carry a density weight: "margin+density" (euclidean) or "margin+density-cosine"
multiplies the strategy's scores by each song's information density (Settles & Craven 2008),
so that a song typical of the pool outranks an equally uncertain outlier.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import consensus as cons
from .errors import MERError
from .quadrants import N_CLASSES

DEFAULT_STRATEGY = "consensus-entropy"
METRICS = ("euclidean", "cosine")
DENSITY_SUFFIXES = {"+density": "euclidean", "+density-cosine": "cosine"}
# rows of songs compared at once in pairwise work: keeps a 10,000-song pool's temporaries
# at about 40 MB instead of a 800 MB square matrix
_CHUNK_ROWS = 512


# --- input checks -----------------------------------------------------------------------------
def _member_proba(member_proba) -> np.ndarray:
    p = np.asarray(member_proba, dtype=float)
    if p.ndim != 3 or p.shape[2] != N_CLASSES or p.shape[0] < 1:
        raise MERError(f"committee probabilities: expected an array of members x songs x {N_CLASSES}, "
                       f"got shape {p.shape}")
    return p


def _features(features, n_songs: int | None = None, what: str = "song features") -> np.ndarray:
    if features is None:
        raise MERError(f"{what}: this strategy needs the songs' features (songs x columns), got none")
    x = np.asarray(features, dtype=float)
    if x.ndim != 2 or (n_songs is not None and len(x) != n_songs):
        expected = f"{n_songs} songs x columns" if n_songs is not None else "songs x columns"
        raise MERError(f"{what}: expected {expected}, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise MERError(f"{what}: expected finite numbers, found NaN or infinity")
    return x


def _metric(metric: str) -> str:
    if metric not in METRICS:
        raise MERError(f"similarity metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    return metric


# --- committee disagreement -------------------------------------------------------------------
def consensus_entropy(member_proba) -> np.ndarray:
    """Entropy of the committee's mean probability (today's `mc`).

    Asks the listener about the songs whose quadrant the committee as a whole is least sure of,
    whether its members agree on that doubt or not."""
    return cons.entropy(cons.machine_consensus(_member_proba(member_proba)))


def _entropy_of_rows(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row, 0 log 0 = 0."""
    logs = np.log(np.where(p > 0, p, 1.0))  # log 1 = 0 where p = 0
    return -(p * logs).sum(axis=1)


def votes(member_proba) -> np.ndarray:
    """Each member's predicted quadrant, members x songs (the first of tied quadrants, as
    argmax and scikit-learn's predict choose)."""
    return _member_proba(member_proba).argmax(axis=2)


def vote_entropy(member_proba) -> np.ndarray:
    """Entropy of the members' votes (each member's predicted quadrant; Dagan & Engelson 1995).

    Asks about the songs on whose quadrant the members split most evenly, however confident
    each member is; songs every member calls the same quadrant score 0."""
    p = _member_proba(member_proba)
    n_songs = p.shape[1]
    # one bincount over (song, quadrant) cells counts every song's votes at once
    cells = votes(p) + N_CLASSES * np.arange(n_songs)
    counts = np.bincount(cells.ravel(), minlength=N_CLASSES * n_songs).reshape(n_songs, N_CLASSES)
    return _entropy_of_rows(counts / p.shape[0])


def member_kl(member_proba) -> np.ndarray:
    """KL divergence of each member's probabilities from the committee mean, members x songs
    (nats; a quadrant a member gives probability 0 adds nothing)."""
    p = _member_proba(member_proba)
    mean = p.mean(axis=0)
    given = p > 0  # where a member gives 0 the term is 0 (ratio 1); elsewhere the mean is > 0
    ratio = np.where(given, p, 1.0) / np.where(given, mean, 1.0)
    return (p * np.log(ratio)).sum(axis=2)


def kl_max(member_proba) -> np.ndarray:
    """The largest KL divergence of any member from the consensus (McCallum & Nigam 1998).

    Asks about the songs on which at least one member strongly disagrees with the rest: one
    dissenting member is enough."""
    return member_kl(member_proba).max(axis=0)


def kl_mean(member_proba) -> np.ndarray:
    """The mean KL divergence of the members from the consensus ("consensus KL"; equal to the
    consensus entropy minus the members' mean entropy, i.e. the members' disagreement alone).

    Asks about the songs the members disagree on, not those all of them find ambiguous alike."""
    return member_kl(member_proba).mean(axis=0)


# --- uncertainty of the consensus -------------------------------------------------------------
def margin(member_proba) -> np.ndarray:
    """1 - (top - second) probability of the committee's mean (Scheffer et al. 2001).

    Asks about the songs the committee cannot decide between two quadrants for; the other
    two quadrants' share does not matter."""
    ordered = np.sort(cons.machine_consensus(_member_proba(member_proba)), axis=1)
    return 1.0 - (ordered[:, -1] - ordered[:, -2])


def least_confident(member_proba) -> np.ndarray:
    """1 - the probability of the committee's predicted quadrant (Lewis & Gale 1994).

    Asks about the songs whose best guess is weakest."""
    return 1.0 - cons.machine_consensus(_member_proba(member_proba)).max(axis=1)


# --- regression members -----------------------------------------------------------------------
def max_std(member_av) -> np.ndarray:
    """Sum over arousal and valence of the regression members' standard deviation (population,
    ddof=0), from their (arousal, valence) per song, regressors x songs x 2 (Committee.song_av).

    Asks about the songs whose arousal or valence the regression members place furthest apart."""
    av = np.asarray(member_av, dtype=float)
    if av.ndim != 3 or av.shape[2] != 2 or av.shape[0] < 1:
        raise MERError(f"regression predictions: expected an array of regression members x songs x 2 "
                       f"(arousal, valence), got shape {av.shape}; max-std needs a committee with "
                       f"arousal/valence members (sgd-av, xgb-av)")
    return av.std(axis=0).sum(axis=1)


# --- similarity between songs -----------------------------------------------------------------
def _distance_block(rows: np.ndarray, others: np.ndarray, metric: str, others_sq: np.ndarray) -> np.ndarray:
    """Distances between every row of `rows` and of `others` (len(rows) x len(others));
    others_sq: each row of `others` squared and summed (computed once by the caller).

    euclidean by |a|^2 + |b|^2 - 2ab (one matrix product, as scikit-learn computes it), pairs
    closer than 1/1000 of their norms from their differences; cosine: 1 - the dot product of
    unit vectors (_unit; a zero vector has cosine similarity 0 with everything), clipped to
    [0, 2] as scikit-learn does."""
    if metric == "euclidean":
        rows_sq = (rows * rows).sum(axis=1)
        squared = rows @ others.T  # then |a|^2 + |b|^2 - 2ab in place
        squared *= -2.0
        squared += rows_sq[:, None]
        squared += others_sq[None, :]
        # near-identical songs: the expansion cancels to rounding noise (~1e-8 of a distance,
        # where scikit-learn leaves it); those few pairs are computed from their differences
        close_i, close_j = np.nonzero(squared <= 1e-6 * (rows_sq[:, None] + others_sq.max(initial=0.0)))
        if len(close_i):
            squared[close_i, close_j] = ((rows[close_i] - others[close_j]) ** 2).sum(axis=1)
        np.maximum(squared, 0.0, out=squared)
        return np.sqrt(squared, out=squared)
    distances = rows @ others.T  # rows and others: unit vectors (_unit); then 1 - cos in place
    np.subtract(1.0, distances, out=distances)
    return np.clip(distances, 0.0, 2.0, out=distances)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)  # a zero vector stays zero


def information_density(features, metric: str = "euclidean") -> np.ndarray:
    """Each song's mean similarity to every song given (itself included), similarity =
    1 / (1 + distance), as modAL's information_density.

    As a weight it asks about songs typical of the pool before outliers (Settles & Craven 2008):
    an outlier teaches the committee about one song, a typical song about many."""
    x = _features(features)
    metric = _metric(metric)
    if metric == "cosine":
        x = _unit(x)  # once, not per block
    squared = (x * x).sum(axis=1)
    out = np.empty(len(x))
    for start in range(0, len(x), _CHUNK_ROWS):
        block = x[start:start + _CHUNK_ROWS]
        distances = _distance_block(block, x, metric, squared)
        # a song's distance to itself is 0 exactly (rounding would leave ~1e-8), as in scikit-learn
        distances[np.arange(len(block)), np.arange(start, start + len(block))] = 0.0
        # 1 / (1 + d) in place: the block is the largest temporary there is
        distances += 1.0
        out[start:start + len(block)] = np.reciprocal(distances, out=distances).mean(axis=1)
    return out


def density_weighted(scores, features, metric: str = "euclidean", beta: float = 1.0) -> np.ndarray:
    """scores x information_density(features) ** beta: any strategy's scores, typical songs first
    among equally informative ones (scores must be >= 0, as every strategy here gives)."""
    scores = np.asarray(scores, dtype=float)
    x = _features(features, len(scores))
    return scores * information_density(x, metric) ** float(beta)


# --- ranked batch: uncertainty traded against diversity ---------------------------------------
def ranked_batch(uncertainty, features, labelled_features, q: int, metric: str = "euclidean"):
    """The q songs of a batch, one at a time (Cardoso et al. 2017, "Ranked batch-mode active
    learning"): each pick maximizes alpha * (1 - similarity to the nearest song already labelled
    or already chosen) + (1 - alpha) * uncertainty, alpha = songs still unchosen / (those +
    songs labelled or chosen), similarity = 1 / (1 + distance). Ties: the first song.

    With nothing labelled yet the first pick is the most uncertain song (Cardoso et al. start
    from the most representative one, which needs every pairwise distance of the pool).
    Returns (indices of the chosen songs in order, the score each had when chosen).

    Asks the listener for informative songs that are unlike each other and unlike what they
    already answered, so a round does not spend their time on ten near-identical songs."""
    uncertainty = np.asarray(uncertainty, dtype=float)
    x = _features(features, len(uncertainty))
    labelled = np.zeros((0, x.shape[1])) if labelled_features is None else np.asarray(labelled_features, float)
    if labelled.size == 0:
        labelled = np.zeros((0, x.shape[1]))
    labelled = _features(labelled, None, "labelled song features")
    if labelled.shape[1] != x.shape[1]:
        raise MERError(f"labelled song features: expected {x.shape[1]} columns like the pool's, "
                       f"got {labelled.shape[1]}")
    metric = _metric(metric)
    if int(q) < 1:
        raise MERError(f"number of queries: expected a positive number, got {q}")
    if metric == "cosine":
        x, labelled = _unit(x), _unit(labelled)
    squared = (x * x).sum(axis=1)
    # distance of every song to its nearest labelled or chosen song (inf: none yet)
    nearest = np.full(len(x), np.inf)
    for start in range(0, len(labelled), _CHUNK_ROWS):
        block = labelled[start:start + _CHUNK_ROWS]
        nearest = np.minimum(nearest, _distance_block(block, x, metric, squared).min(axis=0))
    available = np.ones(len(x), dtype=bool)
    n_known = len(labelled)
    chosen, chosen_scores = [], []
    for _ in range(min(int(q), len(x))):
        n_left = int(available.sum())
        if n_known == 0:
            score = uncertainty.copy()
        else:
            alpha = n_left / (n_left + n_known)
            score = alpha * (1.0 - 1.0 / (1.0 + nearest)) + (1.0 - alpha) * uncertainty
        score[~available] = -np.inf
        pick = int(np.argmax(score))
        chosen.append(pick)
        chosen_scores.append(float(score[pick]))
        available[pick] = False
        n_known += 1
        nearest = np.minimum(nearest, _distance_block(x[pick:pick + 1], x, metric, squared)[0])
    return np.asarray(chosen, dtype=int), np.asarray(chosen_scores)


# --- the registry -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Strategy:
    name: str
    score: Callable | None  # member_proba -> scores (None: a batch strategy or max-std)
    summary: str
    needs: frozenset = field(default_factory=frozenset)  # "features", "av"
    batch: bool = False  # chooses the batch itself (ranked batch) instead of the top q scores


STRATEGIES = {s.name: s for s in [
    Strategy("consensus-entropy", consensus_entropy, "entropy of the committee's mean (today's mc; default)"),
    Strategy("vote-entropy", vote_entropy, "entropy of the members' votes"),
    Strategy("kl-max", kl_max, "largest KL divergence of a member from the consensus"),
    Strategy("kl-mean", kl_mean, "mean KL divergence of the members from the consensus"),
    Strategy("margin", margin, "1 - (top - second) probability of the committee's mean"),
    Strategy("least-confident", least_confident, "1 - top probability of the committee's mean"),
    Strategy("ranked-batch", None, "consensus entropy / log 4 traded against diversity from labelled "
             "and already-chosen songs (euclidean)", frozenset({"features"}), batch=True),
    Strategy("max-std", None, "spread of the arousal/valence regression members' predictions",
             frozenset({"av"})),
]}


def strategy_names() -> list[str]:
    """Every valid --strategy value: the strategies, and each score strategy with a density weight."""
    names = list(STRATEGIES)
    for name in STRATEGIES:
        if not STRATEGIES[name].batch:
            names += [name + suffix for suffix in DENSITY_SUFFIXES]
    return names


def parse_strategy(name: str) -> tuple[Strategy, str | None]:
    """(strategy, density metric or None) of a --strategy value; an unknown name is refused
    with the list of valid ones."""
    text = str(name)
    metric = None
    for suffix, suffix_metric in DENSITY_SUFFIXES.items():
        if text.endswith(suffix):
            text, metric = text[: -len(suffix)], suffix_metric
            break
    strategy = STRATEGIES.get(text)
    if strategy is None or (metric is not None and strategy.batch):
        scored = [n for n, s in STRATEGIES.items() if not s.batch]
        raise MERError(f"--strategy: expected one of {', '.join(STRATEGIES)}, or one of "
                       f"{', '.join(scored)} followed by {' or '.join(DENSITY_SUFFIXES)}, got {name!r}")
    return strategy, metric


def needs(name: str) -> frozenset:
    """What a --strategy value needs besides the committee's probabilities."""
    strategy, metric = parse_strategy(name)
    return strategy.needs | (frozenset({"features"}) if metric else frozenset())


def scores_for(name: str, member_proba, features=None, member_av=None) -> np.ndarray:
    """One score per song for a score strategy (with its density weight, if named)."""
    strategy, metric = parse_strategy(name)
    if strategy.batch:
        raise MERError(f"query strategy {name!r} chooses a batch; use choose()")
    if strategy.name == "max-std":
        scores = max_std(member_av)
    else:
        scores = strategy.score(member_proba)
    if metric is not None:
        scores = density_weighted(scores, features, metric)
    return scores


def choose(name: str, song_ids, q: int, member_proba, features=None, labelled_features=None,
           member_av=None, asked=(), balanced: bool = False):
    """(the q songs to ask, {song: score}) for a strategy among `song_ids` not in `asked`.

    Score strategies rank with consensus.select_queries (NaN last, ties by song id, balanced
    quotas if asked for). Ranked batch picks among the songs not asked; it chooses its batch
    for diversity itself, so it is refused for a balanced user."""
    strategy, _ = parse_strategy(name)
    song_ids = np.asarray(song_ids)
    if not strategy.batch:
        scores = scores_for(name, member_proba, features, member_av)
        predicted = cons.machine_consensus(member_proba).argmax(axis=1) if balanced else None
        chosen = cons.select_queries(song_ids, scores, q, asked=asked, balanced=balanced, predicted=predicted)
        score_of = dict(zip(song_ids.tolist(), np.asarray(scores, dtype=float).tolist()))
        return chosen, {s: score_of[s] for s in chosen}
    if balanced:
        raise MERError(f"query strategy {name!r} chooses a diverse batch itself; it cannot be combined "
                       f"with balanced quotas (this user was created with --balanced)")
    asked = set(asked)
    keep = np.array([s not in asked for s in song_ids.tolist()], dtype=bool)
    # sorted by song id, so that ties go to the lowest id as in every other ranking
    order = np.flatnonzero(keep)[np.argsort(song_ids[keep], kind="stable")]
    uncertainty = consensus_entropy(_member_proba(member_proba)[:, order]) / np.log(N_CLASSES)
    x = _features(features, len(song_ids))
    picks, pick_scores = ranked_batch(uncertainty, x[order], labelled_features, q)
    chosen = song_ids[order[picks]].tolist()
    return chosen, dict(zip(chosen, pick_scores.tolist()))
