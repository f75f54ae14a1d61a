"""One user's simulation: the committee under simulation, the rows of one user x mode and the
user's reference points, and the F1 they are scored with."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit
from sklearn.preprocessing import StandardScaler

from ..committee import Committee, Songs
from ..consensus import human_consensus, machine_consensus, mode_scores, select_queries
from ..errors import MERError
from ..quadrants import N_CLASSES, QUADRANTS
from .config import ExperimentConfig
from .data import (FeatureTable, majority_any, pretraining_labels, rows_for_songs, seed_sequence,
                   user_split)

COMMITTEE = "committee"  # algorithm name of the (audio) committee's rows
FULL = "full"  # audio committee and crowd-aware members weighted equally, when those run
COUNT_COLUMNS = [f"n_{q}" for q in QUADRANTS]
RESULT_COLUMNS = ["user", "repeat", "mode", "update", "config", "queries", "algorithm", "iteration",
                  "n_annotations", "f1_weighted", "f1_macro", *COUNT_COLUMNS,
                  "n_pool", "n_test", "n_test_crowd"]


# --- the committee under simulation --------------------------------------------------------
# The simulator runs the package's Committee. Two things it does its own way, as the recorded
# experiment tables were computed: each listener's rows are standardized once with sklearn's
# StandardScaler.transform (float32 arithmetic; Committee.transform computes in float64) and
# handed to the members as prepared inputs (Songs.prepared), so members are scored one by one;
# and the crowd members' rows are rebuilt after each answer (ListenerVotes).
CROWD_KIND = "crowd+features"


def standardize(committee: Committee, X) -> np.ndarray:
    return committee.scaler.transform(X).astype(np.float32)


def simulatable(committee: Committee) -> Committee:
    """`committee` if the simulator can run it: members that read feature rows (and crowd
    members), not audio."""
    if committee.of_kind("audio"):
        raise MERError("committee: the simulator runs feature members only (no audio members)")
    return committee


def _songs(X_scaled, offsets, crowd_input=None) -> Songs:
    prepared = {"features": X_scaled}
    if crowd_input is not None:
        prepared[CROWD_KIND] = crowd_input
    return Songs.from_offsets(None, offsets, list(range(len(offsets) - 1)), prepared=prepared)


def _new_member(algorithm, member_params):
    from ..members import make_member  # the committee helper's member registry

    return make_member(algorithm, **dict(member_params.get(algorithm, {})))


def pretrain_committee(features: FeatureTable, labels: pd.Series, algorithms, member_params,
                       n_splits: int = 5, test_size: float = 0.2, seed: int = 1987) -> Committee:
    """Members trained like deam_classifier: GroupShuffleSplit by song, member k on split k.

    The scaler is fitted on all training songs' rows (the committee's one scaler); member k sees
    the training part of split k.
    """
    songs = [s for s in labels.index if features.has(s)]
    if len(songs) < 5:
        raise MERError(f"pre-training: only {len(songs)} labeled songs with features, expected at least 5")
    X, y = rows_for_songs(features, songs, labels)
    _, offsets = features.gather(songs)
    groups = np.repeat(np.arange(len(songs)), np.diff(offsets))
    scaler = StandardScaler().fit(X)
    Xs = scaler.transform(X).astype(np.float32)
    splitter = GroupShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)
    members = []
    for algorithm in algorithms:
        for k, (train, _) in enumerate(splitter.split(Xs, y, groups)):
            members.append((f"{algorithm}_{k}", _new_member(algorithm, member_params).fit(Xs[train], y[train])))
    return Committee(members, scaler, features.feature_names)


# --- one user ------------------------------------------------------------------------------
@dataclass
class Context:
    """Everything a job needs; shipped once to each worker."""

    config: ExperimentConfig
    annotations: pd.DataFrame
    features: FeatureTable
    committee: Committee | None = None
    key: str = ""


def f1_scores(y_true, proba) -> tuple[float, float]:
    """(weighted F1, macro F1) of the argmax predictions, as sklearn's f1_score computes them
    (labels present in truth or prediction, zero_division=0).

    Written out because f1_score's input validation costs ~25 ms per call and the benchmark
    makes ~100,000 calls; tests check it against sklearn.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(proba).argmax(axis=1)
    cm = np.bincount(y_true * N_CLASSES + y_pred, minlength=N_CLASSES ** 2).reshape(N_CLASSES, N_CLASSES)
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros(N_CLASSES), where=denom > 0)
    present = denom > 0
    macro = float(f1[present].mean()) if present.any() else 0.0
    weighted = float((f1 * support).sum() / support.sum()) if support.sum() else 0.0
    return weighted, macro


class _UserData:
    """A user's labels, crowd table and scaled feature rows (pool + test) for one repeat."""

    def __init__(self, ctx: Context, user, committee: Committee | None):
        ann = ctx.annotations
        mine = ann[(ann["user"] == user) & ann["song"].map(ctx.features.has)]
        self.labels = dict(zip(mine["song"], mine["quadrant"].astype(int)))
        self.songs = sorted(self.labels)
        # the simulated user's own labels never reach the human consensus
        self.crowd = human_consensus(ann, exclude_user=user)
        others = ann[ann["user"] != user]
        self.crowd_default = int(others["quadrant"].mode().min()) if len(others) else 0
        X, self.offsets = ctx.features.gather(self.songs)
        self.X_raw = X
        self.position = {s: i for i, s in enumerate(self.songs)}
        self.X_scaled = standardize(committee, X) if committee is not None else None
        self.song_input = None
        self.votes = None
        if committee is not None and committee.of_kind(CROWD_KIND):
            from ..crowd import ListenerVotes, crowd_features, uses_listener_weights

            lengths = np.diff(self.offsets)[:, None]
            self.audio = np.add.reduceat(self.X_scaled, self.offsets[:-1], axis=0) / lengths
            # crowd features of the user's songs: the user's own labels are left out
            self.song_input = np.hstack([crowd_features(ann, self.songs, exclude_users=[user]), self.audio])
            if uses_listener_weights(ctx.config.crowd_variant):
                self.votes = ListenerVotes(ann, self.songs, user)

    def crowd_input(self, asked):
        """The crowd-aware members' input rows of every song after the answers to `asked`."""
        if self.votes is None or not asked:
            return self.song_input
        answered = [self.position[s] for s in asked]
        block = self.votes.crowd_block(answered, [self.labels[s] for s in asked])
        return np.hstack([block, self.audio])


def pretrain_for_user(ctx: Context, user) -> Committee:
    """The leave-user-out committee of one user (plus its crowd-aware members if asked)."""
    cfg = ctx.config
    if ctx.committee is not None:
        committee = ctx.committee
    else:
        labels = pretraining_labels(ctx.annotations, user, ctx.features)
        committee = pretrain_committee(ctx.features, labels, cfg.algorithms, cfg.member_params,
                                       cfg.n_splits, cfg.pretrain_test_size, cfg.seed)
    if not cfg.crowd_member:
        return committee
    from ..crowd import pretrain_crowd_members, variant_options

    features = ctx.features
    scaled = standardize(committee, features.X)
    lengths = np.diff(features.offsets)[:, None]
    audio = np.add.reduceat(scaled, features.offsets[:-1], axis=0) / lengths
    song_audio = dict(zip(features.song_ids.tolist(), audio))
    crowd = pretrain_crowd_members(ctx.annotations, song_audio, user, cfg.n_splits, cfg.pretrain_test_size, cfg.seed,
                                   **variant_options(cfg.crowd_variant))
    return Committee([*committee.members, *[(f"crowd_{k}", m) for k, m in enumerate(crowd)]], committee.scaler,
                     committee.feature_names, committee.manifest)


def _song_rows(data: "_UserData", songs):
    idx = [data.position[s] for s in songs]
    parts = [np.arange(data.offsets[i], data.offsets[i + 1]) for i in idx]
    rows = np.concatenate(parts) if parts else np.zeros(0, dtype=int)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return rows, offsets


def audio_members(committee: Committee) -> list[int]:
    """The members that read the songs' features only (the crowd-aware ones also read other
    listeners): the "committee" rows of the results, and what mc/mix queries follow."""
    crowd = set(committee.of_kind(CROWD_KIND))
    return [k for k in range(len(committee.members)) if k not in crowd]


def _scores_by_algorithm(committee: Committee, proba: np.ndarray, y_true) -> dict:
    """F1 per algorithm (mean of its members' probabilities) and for the whole committee."""
    algorithms = committee.algorithms()
    out = {}
    for algorithm in dict.fromkeys(algorithms):
        sel = [k for k, a in enumerate(algorithms) if a == algorithm]
        out[algorithm] = f1_scores(y_true, machine_consensus(proba[sel]))
    # "committee" stays the audio committee; "full" weighs the two sources equally (a plain mean
    # over members would give the 15 audio members three times the 5 crowd members' say)
    audio_index = audio_members(committee)
    audio = machine_consensus(proba[audio_index])
    out[COMMITTEE] = f1_scores(y_true, audio)
    crowd_index = committee.of_kind(CROWD_KIND)
    if crowd_index:
        out[FULL] = f1_scores(y_true, 0.5 * audio + 0.5 * machine_consensus(proba[crowd_index]))
    return out


def simulate_user_mode(ctx: Context, user, mode: str, pretrained: Committee | None = None,
                       query_members=None) -> pd.DataFrame:
    """Every repeat x update x (q, e) simulation of one user in one query mode.

    query_members: indices of the members whose mean ranks mc/mix and balanced queries
    (default: the audio members, as the recorded experiments ran)."""
    cfg = ctx.config
    if pretrained is None:
        pretrained = pretrain_for_user(ctx, user)
    data = _UserData(ctx, user, pretrained)
    all_rows, all_offsets = _song_rows(data, data.songs)
    audio = audio_members(pretrained) if query_members is None else list(query_members)
    records = []
    for repeat in range(cfg.repeats):
        pool, test = user_split(data.songs, cfg.seed, user, repeat, cfg.test_size)
        pool_idx = np.asarray([data.position[s] for s in pool])
        test_idx = np.asarray([data.position[s] for s in test])
        y_test = np.asarray([data.labels[s] for s in test])
        n_crowd = int(sum(s in data.crowd.index for s in test))
        for update in cfg.updates:
            for config_name, q, e in cfg.configs():
                # not seeded by the update strategy: in rand mode batch and cumulative see the same queries
                rng = np.random.default_rng(seed_sequence(cfg.seed, "rand", user, repeat, mode, config_name))
                committee = pretrained.copy()
                asked: list = []
                current_input = data.song_input  # the crowd members' rows after the answers so far
                base = {"user": user, "repeat": repeat, "mode": mode, "update": update,
                        "config": config_name, "queries": q, "n_pool": len(pool),
                        "n_test": len(test), "n_test_crowd": n_crowd}
                for iteration in range(0, e + 1):
                    if iteration > 0:
                        asked_set = set(asked)
                        keep = np.array([s not in asked_set for s in pool])
                        remaining = [s for s, k in zip(pool, keep) if k]
                        if not remaining:
                            break
                        machine = machine_consensus(proba[audio][:, pool_idx[keep]])
                        scores = mode_scores(mode, remaining, machine_proba=machine,
                                             human_freqs=data.crowd, rng=rng)
                        chosen = select_queries(remaining, scores, q, asked=asked, balanced=cfg.balanced,
                                                predicted=machine.argmax(axis=1))
                        asked.extend(chosen)
                        if update == "batch":
                            batch = chosen
                        else:
                            committee = pretrained.copy()
                            batch = asked
                        rows, offsets = _song_rows(data, batch)
                        current_input = data.crowd_input(asked)  # once per round: update and predict
                        song_input = None
                        if data.song_input is not None:
                            song_input = current_input[[data.position[s] for s in batch]]
                        committee.update(_songs(data.X_scaled[rows], offsets, song_input),
                                         [data.labels[s] for s in batch])
                    # one prediction of every song of the user serves the test F1 and the next query
                    proba = committee.song_proba(_songs(data.X_scaled[all_rows], all_offsets, current_input))
                    counts = np.bincount([data.labels[s] for s in asked], minlength=N_CLASSES)
                    for algorithm, (fw, fm) in _scores_by_algorithm(committee, proba[:, test_idx], y_test).items():
                        records.append({**base, "algorithm": algorithm, "iteration": iteration,
                                        "n_annotations": len(asked), "f1_weighted": fw, "f1_macro": fm,
                                        **dict(zip(COUNT_COLUMNS, counts.tolist()))})
    frame = pd.DataFrame.from_records(records)
    return frame.reindex(columns=RESULT_COLUMNS)


def reference_rows(ctx: Context, user) -> pd.DataFrame:
    """The crowd baseline and the own-labels model per repeat, on each repeat's test songs."""
    cfg = ctx.config
    data = _UserData(ctx, user, None)
    crowd_label = majority_any(data.crowd)
    records = []
    for repeat in range(cfg.repeats):
        pool, test = user_split(data.songs, cfg.seed, user, repeat, cfg.test_size)
        y_test = np.asarray([data.labels[s] for s in test])
        n_crowd = int(sum(s in data.crowd.index for s in test))
        base = {"user": user, "repeat": repeat, "update": "", "config": "", "queries": 0,
                "iteration": 0, "n_pool": len(pool), "n_test": len(test), "n_test_crowd": n_crowd}
        predicted = np.asarray([crowd_label.get(s, data.crowd_default) for s in test])
        proba = np.eye(N_CLASSES)[predicted]
        fw, fm = f1_scores(y_test, proba)
        counts = dict(zip(COUNT_COLUMNS, [0] * N_CLASSES))
        records.append({**base, "mode": "crowd", "algorithm": "crowd", "n_annotations": 0,
                        "f1_weighted": fw, "f1_macro": fm, **counts})
        # own: members trained only on this user's pool labels, with a scaler of those songs
        X_pool, y_pool = rows_for_songs(ctx.features, pool, data.labels)
        scaler = StandardScaler().fit(X_pool)
        members = [(a, _new_member(a, cfg.member_params).fit(scaler.transform(X_pool).astype(np.float32), y_pool))
                   for a in cfg.algorithms]
        own = Committee(members, scaler, ctx.features.feature_names)
        X_test, offsets = ctx.features.gather(test)
        song_proba = own.song_proba(_songs(standardize(own, X_test), offsets))
        pool_counts = np.bincount([data.labels[s] for s in pool], minlength=N_CLASSES)
        for k, algorithm in enumerate([a for a, _ in members] + [COMMITTEE]):
            p = song_proba.mean(axis=0) if algorithm == COMMITTEE else song_proba[k]
            fw, fm = f1_scores(y_test, p)
            records.append({**base, "mode": "own", "algorithm": algorithm, "n_annotations": len(pool),
                            "f1_weighted": fw, "f1_macro": fm,
                            **dict(zip(COUNT_COLUMNS, pool_counts.tolist()))})
    return pd.DataFrame.from_records(records).reindex(columns=RESULT_COLUMNS)
