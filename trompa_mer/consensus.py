"""Consensus entropy: human and machine consensus over the four quadrants, and query selection.

A query strategy here is a small function from (song ids, scores) to the songs to ask, in the
spirit of modAL's query strategies: ranking is separated from bookkeeping (which songs were
already asked), which lives with the user state.
"""
from __future__ import annotations

import numpy as np

from .errors import MERError
from .quadrants import N_CLASSES, QUADRANTS

MODES = ("mc", "hc", "mix", "rand")


def human_consensus(annotations: "pd.DataFrame", exclude_user=None) -> "pd.DataFrame":
    """Per song, the relative frequency of Q1..Q4 among the listeners other than `exclude_user`.

    Returns a table indexed by song with columns Q1..Q4 (unrounded; round only for display)
    and `n_listeners`. Songs that only `exclude_user` annotated do not appear.
    """
    import pandas as pd  # here, not at the top: the ranking step never needs pandas

    table = annotations
    if exclude_user is not None:
        table = table[table["user"] != str(exclude_user)]
    if table.empty:
        return pd.DataFrame(columns=[*QUADRANTS, "n_listeners"], index=pd.Index([], name="song"))
    counts = pd.crosstab(table["song"], table["quadrant"]).reindex(columns=range(N_CLASSES), fill_value=0)
    n = counts.sum(axis=1)
    freqs = counts.div(n, axis=0)
    freqs.columns = list(QUADRANTS)
    freqs["n_listeners"] = n.astype(int)
    freqs.index.name = "song"
    return freqs


def entropy(probabilities) -> np.ndarray:
    """Shannon entropy (nats) of each row of a (n, 4) probability array; NaN rows stay NaN."""
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 2 or p.shape[1] != N_CLASSES:
        raise ValueError(f"expected an (n, {N_CLASSES}) probability array, got shape {p.shape}")
    # scipy.stats.entropy's own steps (normalize, entr, sum) without importing scipy.stats,
    # which alone took ~0.6 s of every step's start-up; same operations, same bits
    from scipy.special import entr

    with np.errstate(invalid="ignore"):  # an all-zero row: 0/0, NaN as scipy gives
        out = entr(p / p.sum(axis=1, keepdims=True)).sum(axis=1)
    out[np.isnan(p).any(axis=1)] = np.nan
    return out


def machine_consensus(member_song_proba) -> np.ndarray:
    """Mean over committee members of song probabilities: (members, songs, 4) -> (songs, 4)."""
    return np.asarray(member_song_proba, dtype=float).mean(axis=0)


def rank_by_score(song_ids, scores, rng: np.random.Generator | None = None) -> list:
    """Song ids by descending score; NaN scores rank last; ties broken by song id (stable)."""
    song_ids = np.asarray(song_ids)
    scores = np.asarray(scores, dtype=float)
    filled = np.where(np.isnan(scores), -np.inf, scores)
    order = np.lexsort((song_ids, -filled))
    return song_ids[order].tolist()


def select_queries(song_ids, scores, q: int, asked=(), balanced: bool = False,
                   predicted=None) -> list:
    """The `q` highest-scoring songs not in `asked`.

    balanced: take the top ceil(q/4) per predicted quadrant (then fill from the overall ranking
    if a quadrant runs short), so a listener is not asked only one kind of song.
    """
    if q < 1:
        raise MERError(f"number of queries: expected a positive number, got {q}")
    asked = set(asked)
    song_ids = np.asarray(song_ids)
    keep = np.array([s not in asked for s in song_ids], dtype=bool)
    ranking = rank_by_score(song_ids[keep], np.asarray(scores, dtype=float)[keep])
    if not balanced:
        return ranking[:q]
    if predicted is None:
        raise ValueError("balanced selection needs the predicted quadrant of every song")
    predicted_of = dict(zip(song_ids.tolist(), np.asarray(predicted).tolist()))
    per_class = int(np.ceil(q / N_CLASSES))
    chosen, taken = [], {c: 0 for c in range(N_CLASSES)}
    for song in ranking:
        c = predicted_of[song]
        if taken[c] < per_class:
            chosen.append(song)
            taken[c] += 1
        if len(chosen) == q:
            return chosen
    chosen_set = set(chosen)
    for song in ranking:
        if len(chosen) == q:
            break
        if song not in chosen_set:
            chosen.append(song)
    return chosen


def mode_scores(mode: str, song_ids, machine_proba=None, human_freqs: "pd.DataFrame | None" = None,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """Score every song for a query mode; higher = more informative.

    mc: entropy of the machine consensus; hc: entropy of the human consensus (songs without
    other listeners score NaN and rank last); mix: the higher of the two (each song once);
    rand: uniform random scores from `rng`.
    """
    song_ids = list(song_ids)
    if mode not in MODES:
        raise MERError(f"query mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "rand":
        rng = rng if rng is not None else np.random.default_rng()
        return rng.random(len(song_ids))
    mc = hc = None
    if mode in ("mc", "mix"):
        if machine_proba is None:
            raise ValueError("mc/mix modes need the committee's song probabilities")
        mc = entropy(machine_proba)
    if mode in ("hc", "mix"):
        if human_freqs is None:
            raise ValueError("hc/mix modes need the human consensus")
        hc = entropy(human_freqs.reindex(song_ids)[list(QUADRANTS)].to_numpy(dtype=float))
    if mode == "mc":
        return mc
    if mode == "hc":
        return hc
    return np.fmax(mc, hc)  # fmax: a song without other listeners keeps its machine entropy
